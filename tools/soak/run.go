package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"g6/internal/testenv"
)

// report is the one line a run ends with.
type report struct {
	d           time.Duration
	t           *tally
	ch          *chaos
	explained   int
	unexplained []outcome
	active      map[string]int64
	countErrs   []string
	isolated    []string // "server isolated" lines of the full-rate phase
}

// phases runs the steady phase (short sessions at rate, every chaos
// action) for steady, then the full-rate phase until ctx ends.
func phases(ctx context.Context, s *soak, steady time.Duration, rate int, every time.Duration, t *tally, ch *chaos, wg *sync.WaitGroup) {
	defer wg.Done()
	var inner sync.WaitGroup
	sctx, stop := context.WithTimeout(ctx, steady)
	inner.Add(2)
	go shortLoop(sctx, s.short, rate, t, &inner)
	go ch.loop(sctx, s, every, false, &inner)
	inner.Wait()
	stop()
	if ctx.Err() != nil {
		return
	}
	ch.fullFrom(s.logSize())
	start, before := time.Now(), t.count()
	inner.Add(2)
	go fullRateLoop(ctx, s.short, 8, t, &inner)
	go ch.loop(ctx, s, 500*time.Millisecond, true, &inner)
	inner.Wait()
	t.mu.Lock()
	t.fullSessions, t.fullTime = t.sessions-before, time.Since(start)
	t.mu.Unlock()
}

func (s *soak) run(d, full time.Duration, rate, streams int, every time.Duration) *report {
	t, ch := &tally{}, &chaos{}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var load, faults sync.WaitGroup
	load.Add(1)
	go phases(ctx, s, d-full, rate, every, t, ch, &load)
	for i := 0; i < streams; i++ {
		load.Add(1)
		slow := i%2 == 1
		size := 4 << 20
		if slow {
			size = 1 << 20
		}
		go streamLoop(ctx, s.stream, size, slow, t, &load)
	}
	<-ctx.Done()
	faults.Wait()
	load.Wait()
	rep := &report{d: d, t: t, ch: ch, isolated: s.isolated(ch.fullLog), unexplained: t.fullFailed}
	for _, o := range t.failed {
		if ch.explains(o) {
			rep.explained++
		} else {
			rep.unexplained = append(rep.unexplained, o)
		}
	}
	rep.active, rep.countErrs = s.finalCounts()
	return rep
}

// finalCounts waits for the sessions to end and reads every server's
// Active from the current master's region.
func (s *soak) finalCounts() (map[string]int64, []string) {
	var bad []string
	deadline := time.Now().Add(40 * time.Second) // a draining generation's sessions end within drain_timeout
	for {
		r, err := testenv.OpenRegion(s.masterPid())
		if err != nil {
			return nil, []string{err.Error()}
		}
		active := map[string]int64{}
		total := int64(0)
		for i := 0; i < r.NumServers(); i++ {
			srv := r.Server(i)
			if k := srv.KeyString(); k != "" {
				active[k] = srv.Active.Load()
				total += max(active[k], -active[k])
			}
		}
		bad = r.CheckCounts()
		r.Close()
		if (total == 0 && len(bad) == 0) || time.Now().After(deadline) {
			return active, bad
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *report) ok() bool {
	for _, a := range r.active {
		if a != 0 {
			return false
		}
	}
	return len(r.unexplained) == 0 && len(r.t.corrupt) == 0 && len(r.countErrs) == 0 && r.active != nil &&
		len(r.isolated) == 0
}

func (r *report) line() string {
	var keys []string
	for k := range r.active {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var act []string
	for _, k := range keys {
		act = append(act, fmt.Sprintf("%s=%d", strings.ReplaceAll(k, " ", "@"), r.active[k]))
	}
	t := r.t
	line := fmt.Sprintf("soak %v: sessions=%d streams=%d (fast %d, slow %d, %d MiB) failed=%d explained=%d unexplained=%d corrupt=%d chaos: hup=%d usr2=%d kill=%d; final active: %s",
		r.d, t.sessions, t.fast+t.slow, t.fast, t.slow, t.streamBytes>>20, len(t.failed), r.explained,
		len(r.unexplained), len(t.corrupt), r.ch.hup, r.ch.usr2, r.ch.nkill, strings.Join(act, " "))
	if t.fullTime > 0 {
		line += fmt.Sprintf("\n  full-rate phase %v: sessions=%d (%.0f/s) failed=%d, usr2=%d hup=%d, servers isolated=%d",
			t.fullTime.Round(time.Second), t.fullSessions, float64(t.fullSessions)/t.fullTime.Seconds(), len(t.fullFailed),
			r.ch.fullUSR2, r.ch.fullHUP, len(r.isolated))
	}
	for _, l := range r.isolated {
		line += "\n  isolated: " + l
	}
	for _, o := range append(r.unexplained, t.corrupt...) {
		line += fmt.Sprintf("\n  %s (open %s to %s)", o.what, o.start.Format("15:04:05.000"), o.end.Format("15:04:05.000"))
	}
	for _, e := range r.countErrs {
		line += "\n  counts: " + e
	}
	return line
}
