package master

import (
	"time"

	"g6/conf"

	"golang.org/x/sys/unix"
)

// respawnReq asks the loop to restart one worker slot.
type respawnReq struct {
	g    *generation
	slot int
}

// respawnTimer delivers a delayed respawn to the master's loop.
type respawnTimer struct {
	m *Master
	r respawnReq
}

func (t respawnTimer) fire() { t.m.respawn <- t.r }

// onExit records a worker's end, releases its counts and, if its generation
// is the current one and the master is not stopping, respawns the slot on
// the same sockets.
func (m *Master) onExit(ev exitEvent) {
	w := ev.w
	m.mu.Lock()
	w.exited = true
	m.mu.Unlock()
	close(w.done)
	m.steerWorker(w, false)
	w.conn.Close()
	m.freeCounter(w.counter)
	g := w.gen
	if m.stopping || g.draining || g != m.cur || g.workers[w.slot] != w {
		m.log.Info("worker exited", "gen", g.id, "slot", w.slot, "pid", w.pid, "status", describeExit(ev.status))
		m.retireDrained()
		return
	}
	// A worker that had served is replaced at once. One that died before
	// reporting ready, or the tenth death of a slot within 10 s, is a crash
	// loop: it waits 100 ms, doubling up to 5 s.
	lived := time.Since(w.started)
	g.deaths[w.slot] = append(recent(g.deaths[w.slot], 10*time.Second), time.Now())
	delay := time.Duration(0)
	if !w.ready || len(g.deaths[w.slot]) >= 10 {
		delay = min(max(2*g.backoff[w.slot], 100*time.Millisecond), 5*time.Second)
	}
	g.backoff[w.slot] = delay
	m.mu.Lock()
	g.restarts[w.slot]++
	m.mu.Unlock()
	m.log.Error("worker died; respawning", "slot", w.slot, "pid", w.pid,
		"status", describeExit(ev.status), "lived", lived.Round(time.Millisecond), "delay", delay)
	m.scheduleRespawn(respawnReq{g: g, slot: w.slot}, delay)
}

// recent drops the times older than d.
func recent(ts []time.Time, d time.Duration) []time.Time {
	out := ts[:0]
	for _, t := range ts {
		if time.Since(t) < d {
			out = append(out, t)
		}
	}
	return out
}

func (m *Master) scheduleRespawn(r respawnReq, delay time.Duration) {
	if delay == 0 {
		m.respawn <- r
		return
	}
	time.AfterFunc(delay, respawnTimer{m: m, r: r}.fire)
}

func (m *Master) onRespawn(r respawnReq) {
	if m.stopping || r.g != m.cur || r.g.draining {
		return
	}
	if err := m.startSlot(r.g, r.slot); err != nil {
		m.log.Error("respawn failed", "slot", r.slot, "err", err)
		m.scheduleRespawn(r, time.Second)
	}
}

// onOverdue kills what is left of a generation past its drain deadline.
func (m *Master) onOverdue(g *generation) {
	if g.live() > 0 {
		m.log.Warn("drain deadline passed; closing the remaining sessions", "gen", g.id, "workers", g.live())
		m.killGeneration(g)
	}
}

// retireDrained forgets generations whose workers are all gone and closes
// the sockets that no serving generation listens on.
func (m *Master) retireDrained() {
	m.mu.Lock()
	kept := m.old[:0]
	for _, g := range m.old {
		if g.live() > 0 {
			kept = append(kept, g)
		} else {
			m.log.Info("generation drained", "gen", g.id)
		}
	}
	m.old = kept
	m.mu.Unlock()
	if !m.stopping {
		m.closeUnlistened()
	}
}

// closeUnlistened closes the sockets of addresses that no serving
// generation listens on. A draining generation's workers have closed their
// copies, so once the master closes its own the kernel refuses new
// connections at once instead of queueing them where nobody accepts.
//
// Not before this master serves, nor while a USR2 successor starts: the
// sockets are shared with the other master (SHUT_RD acts on the socket,
// not this process's descriptor), which may still listen there.
func (m *Master) closeUnlistened() {
	if m.cur == nil || m.upgrade != nil {
		return
	}
	used := map[string]bool{}
	for _, g := range m.generations() {
		if g.draining {
			continue
		}
		for _, a := range g.addrs {
			used[conf.AddrKey(a)] = true
		}
	}
	var unused []string
	for k := range m.sockets {
		if !used[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		m.log.Info("closing listen addresses no longer configured", "listen", unused)
		// A draining worker closes its copy only when it reads its drain
		// order; shutting the socket itself down refuses new connections
		// now, whoever still holds a copy.
		for _, k := range unused {
			for _, fd := range m.sockets[k] {
				unix.Shutdown(fd, unix.SHUT_RD)
			}
		}
		m.dropSockets(unused)
	}
}
