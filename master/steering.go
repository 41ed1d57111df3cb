package master

import (
	"errors"

	"g6/conf"
	"g6/steer"
)

// Worker steering (worker_steering = "least", package steer). The loop owns
// the steering table's live flags: a slot is live while its worker of the
// current generation is ready and answering pings, so only the current
// generation's workers are ever marked. Workers write their session counts
// themselves.

// lateEvent reports that a worker's ping is overdue (late) or answered
// after it was.
type lateEvent struct {
	w    *workerProc
	late bool
}

// wantSteering reports whether cfg's workers are steered, making the
// steering table on first use. Without BPF (no CAP_BPF, an old kernel)
// it logs why and the kernel's hash stays.
func (m *Master) wantSteering(cfg *conf.Config) bool {
	if cfg.Global.WorkerSteering != conf.SteerLeast {
		return false
	}
	if m.steer == nil {
		s, err := steer.New()
		if err != nil {
			m.log.Error("worker_steering = \"least\" is not available here; the kernel hashes new connections over the workers",
				"err", err, "needs", "CAP_BPF and CAP_NET_ADMIN")
			return false
		}
		m.steer = s
	}
	return true
}

// steerGeneration points every listen address of g, the generation that
// now serves, at its workers: the program for g's worker count, or
// (worker_steering = "hash") none, which also removes one a previous
// master or config attached. Slots of g's ready workers are live.
func (m *Master) steerGeneration(g *generation) {
	for _, addr := range g.addrs {
		key := conf.AddrKey(addr)
		fds := m.sockets[key]
		if proto, _ := conf.SplitListenKey(key); len(fds) == 0 || proto == conf.ProtocolUDP {
			continue // a UDP client's datagrams must all reach one worker: the kernel's four-tuple hash
		}
		if !g.steer {
			if m.steer != nil {
				m.steer.Forget(key)
			}
			steer.Detach(fds[0])
			continue
		}
		if err := m.steer.Attach(key, fds, g.nWork); err != nil {
			if errors.Is(err, steer.ErrNoGroup) {
				steer.Detach(fds[0])
			}
			m.log.Warn("new connections to this address are not steered", "listen", addr, "err", err)
		}
	}
	if m.steer == nil {
		return
	}
	for slot := range steer.MaxSlots {
		var w *workerProc
		if slot < len(g.workers) {
			w = g.workers[slot]
		}
		live := g.steer && w != nil && w.ready && !w.exited
		m.steer.SetLive(slot, live)
		if !live {
			m.steer.SetSessions(slot, 0)
		}
	}
}

// steerWorker marks w's slot live or not, if w serves the current
// generation's slot and that generation is steered.
func (m *Master) steerWorker(w *workerProc, live bool) {
	g := w.gen
	if m.steer == nil || !g.steer || g != m.cur || g.workers[w.slot] != w {
		return
	}
	if was := m.steer.Live(w.slot); was != live && w.ready {
		if live {
			m.log.Info("worker answers again; new connections go to it", "slot", w.slot, "pid", w.pid)
		} else if !w.exited {
			m.log.Warn("worker not answering; new connections go to the others", "slot", w.slot, "pid", w.pid)
		}
	}
	m.mu.Lock()
	w.away = !live
	m.mu.Unlock()
	m.steer.SetLive(w.slot, live)
	if !live && w.exited {
		m.steer.SetSessions(w.slot, 0)
	}
}

// onLate handles a watchdog's report.
func (m *Master) onLate(ev lateEvent) {
	if !ev.w.exited {
		m.steerWorker(ev.w, !ev.late)
	}
}

// steering is what show workers says of w: "hash", "least" or "away".
func (m *Master) steering(w *workerProc) string {
	switch {
	case !w.gen.steer:
		return conf.SteerHash
	case w.away:
		return "away"
	}
	return conf.SteerLeast
}

// adoptSteering takes the previous master's steering maps (USR2): its
// program holds the socket arrays, which no other array may then take.
func (m *Master) adoptSteering(fds *fdsIn) {
	state, ok := fds.take(fdSteer, "")
	if !ok {
		return
	}
	arrays := map[string]int{}
	for _, a := range fds.takeAll(fdSteerArray) {
		arrays[a.Name] = a.Fd
	}
	s, err := steer.Adopt(state, arrays, m.sockets)
	if err != nil {
		m.log.Error("upgrade: the previous master's worker steering not taken over", "err", err)
		return
	}
	m.steer = s
}
