package main

import (
	"context"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"

	"g6/internal/testenv"
)

// chaos sends HUP, USR2 or kill -9 to a random worker every interval and
// records when workers were killed.
type chaos struct {
	mu                sync.Mutex
	kills             []time.Time
	hup, usr2, nkill  int
	fullHUP, fullUSR2 int   // in the full-rate phase
	fullLog           int64 // the master log's size when that phase began
}

// fullFrom marks the start of the full-rate phase at log offset off.
func (ch *chaos) fullFrom(off int64) {
	ch.mu.Lock()
	ch.fullLog = off
	ch.mu.Unlock()
}

// loop acts every interval until ctx ends; with upgrades only (the
// full-rate phase) it alternates USR2 and HUP and kills nothing.
func (ch *chaos) loop(ctx context.Context, s *soak, every time.Duration, upgradesOnly bool, wg *sync.WaitGroup) {
	defer wg.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pid := s.masterPid()
		if pid == 0 {
			continue
		}
		if upgradesOnly {
			sig := syscall.SIGUSR2
			ch.mu.Lock()
			if ch.fullUSR2 > ch.fullHUP {
				sig = syscall.SIGHUP
				ch.fullHUP++
			} else {
				ch.fullUSR2++
			}
			ch.mu.Unlock()
			syscall.Kill(pid, sig)
			continue
		}
		switch r := rand.IntN(10); {
		case r < 4:
			ch.killWorker(pid)
		case r < 7:
			syscall.Kill(pid, syscall.SIGHUP)
			ch.mu.Lock()
			ch.hup++
			ch.mu.Unlock()
		default:
			syscall.Kill(pid, syscall.SIGUSR2)
			ch.mu.Lock()
			ch.usr2++
			ch.mu.Unlock()
		}
	}
}

// killWorker kills one worker of the master (of any generation).
func (ch *chaos) killWorker(master int) {
	ws := testenv.Children(master)
	if len(ws) == 0 {
		return
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.kills = append(ch.kills, time.Now())
	ch.nkill++
	syscall.Kill(ws[rand.IntN(len(ws))], syscall.SIGKILL)
}

// explains reports whether a worker was killed while o was open.
func (ch *chaos) explains(o outcome) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for _, k := range ch.kills {
		if !k.Before(o.start.Add(-50*time.Millisecond)) && !k.After(o.end.Add(50*time.Millisecond)) {
			return true
		}
	}
	return false
}
