package worker

import (
	"time"

	"g6/accel"

	"golang.org/x/sys/unix"
)

// Kernel forwarding (accel = "sockmap", package accel). A session whose
// client has come back for more after an answer (pairAfter turns: a
// keep-alive session, not a one-shot one, which pairing would only slow
// down) and that holds no bytes of its own is paired: from then on the
// kernel moves each direction and the worker hears of the session only
// for a FIN, an error, urgent data, a timer, or bytes the program passed to
// it (a spilled direction).
//
// Each direction is dirKernel, then dirDrain when its source ended or
// spilled, until the destination has taken every byte the kernel moved
// for it (accel.Written less the base taken at pairing reaches Moved),
// checked at once and then on a timer backing off from 1 ms to 50 ms; then
// dirUser, the ordinary copy path (never splice: a paired socket's bytes
// are on its psock queue, which splice does not read), and the FIN or the
// spilled bytes go on. Paired sessions are not handed over on HUP or USR2
// (their sockets cannot leave the map without dropping what is queued on
// it): they drain in the old worker.

// pairAfter is how many answers (server bytes after client bytes) a
// session has had when its next request pairs it.
const pairAfter = 1

// axCapacity is how many sockets a worker can pair at once.
const axCapacity = 65536

const (
	checkFirst = int64(time.Millisecond)
	checkMax   = int64(50 * time.Millisecond)
)

// Direction states of a paired session, by source: 0 = client → server.
const (
	dirKernel = iota
	dirDrain
	dirUser
)

// accelState is what a paired session keeps (pooled: the fast path's
// session only has the pointer).
type accelState struct {
	pair      accel.Pair
	dir       [2]uint8
	base      [2]int64 // accel.Written of each direction's destination at pairing
	folded    [2]int64 // Moved already added to each source's bytes
	checkAt   int64    // next drain check; 0 = none due
	checkWait int64
}

// dirOf is src's direction index.
func dirOf(s *session, src *endpoint) int {
	if src == &s.c {
		return 0
	}
	return 1
}

// maybePair pairs s if it qualifies: established, paired never before, a
// keep-alive session, no bytes held here, nothing ended or urgent.
func (w *Worker) maybePair(s *session) {
	if s.ax != nil || s.turns < pairAfter || s.state != stateEstablished || s.noPair ||
		s.c.pend != nil || s.b.pend != nil || s.c.pipe != nil || s.b.pipe != nil ||
		s.c.rdEOF || s.b.rdEOF || s.c.wrShut || s.b.wrShut || s.c.urgent || s.b.urgent {
		return
	}
	s.noPair = true // one try
	var base [2]int64
	var err error
	if base[0], err = accel.Written(s.b.fd); err != nil {
		return
	}
	if base[1], err = accel.Written(s.c.fd); err != nil {
		return
	}
	pr, spilled, err := w.ax.Pair(s.c.fd, s.b.fd, [2]uint64{accel.Window, accel.Window})
	if err != nil && !spilled {
		w.warnLimited(&w.pairFailed, "session not paired; it goes on in user space", "rule", s.rule.id, "err", err)
		return
	}
	a := w.getAccel()
	a.pair, a.base = pr, base
	s.ax = a
	// Whatever comes to the worker from now on is on a psock queue; and
	// it reads a paired socket only when epoll says so again (Pair ran
	// the program over what was queued).
	s.c.noSplice, s.b.noSplice = true, true
	s.c.canRead, s.b.canRead = false, false
	if spilled {
		a.dir = [2]uint8{dirUser, dirUser}
	}
}

// moveKernel is move for a direction that is not dirUser.
func (w *Worker) moveKernel(s *session, src, dst *endpoint) bool {
	d := dirOf(s, src)
	if s.ax.dir[d] == dirDrain || !src.canRead {
		return true
	}
	// The kernel stops redirecting src before the worker reads it: a read
	// on a paired socket may take bytes the program has not seen yet
	// (tcp_bpf falls back to the receive queue), and none that come later
	// may overtake them.
	w.ax.Spill(s.ax.pair.Slot[d])
	for src.canRead {
		n, e := sysRead(src.fd, w.scratch)
		switch {
		case e == unix.EAGAIN:
			src.canRead = false
		case e != 0:
			abort(dst)
			return false
		case n == 0:
			w.sawEOF(s, src)
			w.startCheck(s, d)
			// Drained already: the FIN goes on now, on the copy path.
			return s.ax.dir[d] != dirUser || w.move(s, src, dst)
		default:
			// Spilled: these bytes wait until dst has every one the
			// kernel moved.
			w.received(s, src, n)
			dst.pend = append(w.getBuf(), w.scratch[:n]...)
			dst.off = 0
			w.startCheck(s, d)
			return s.ax.dir[d] != dirUser || w.move(s, src, dst)
		}
	}
	return true
}

// startCheck moves direction d to dirDrain and checks it at once.
func (w *Worker) startCheck(s *session, d int) {
	s.ax.dir[d] = dirDrain
	s.ax.checkWait = checkFirst
	w.drainCheck(s)
}

// drainCheck hands each draining direction whose destination has taken
// every moved byte to the copy path, and looks again later for the others.
func (w *Worker) drainCheck(s *session) {
	a := s.ax
	waiting := false
	for d := range 2 {
		if a.dir[d] != dirDrain {
			continue
		}
		dst := &s.b
		if d == 1 {
			dst = &s.c
		}
		n, err := accel.Written(dst.fd)
		if err != nil || n-a.base[d] >= w.ax.Moved(a.pair.Slot[d]) {
			a.dir[d] = dirUser // an error shows on the copy path
			continue
		}
		waiting = true
	}
	a.checkAt = 0
	if waiting {
		a.checkAt = w.now + a.checkWait
		a.checkWait = min(2*a.checkWait, checkMax)
		w.timers.push(timerEntry{at: a.checkAt, s: s, gen: s.gen})
	}
}

// accelTimer runs at s's timer: a due drain check, and the last time the
// kernel moved bytes counts as activity for the idle timeout.
func (w *Worker) accelTimer(s *session) {
	a := s.ax
	for _, slot := range a.pair.Slot {
		if t := w.ax.Last(slot); t > s.active {
			s.active = t
		}
	}
	if a.checkAt != 0 && a.checkAt <= w.now {
		w.drainCheck(s)
		w.pump(s)
	}
}

// refreshBudgets lets each kernel direction run Window past what its
// destination has taken, when it comes near its budget (every sweep).
func (w *Worker) refreshBudgets(s *session) {
	a := s.ax
	for d := range 2 {
		if a.dir[d] != dirKernel {
			continue
		}
		slot := a.pair.Slot[d]
		if uint64(w.ax.Moved(slot))+accel.Window/2 < w.ax.Budget(slot) {
			continue
		}
		dst := &s.b
		if d == 1 {
			dst = &s.c
		}
		if n, err := accel.Written(dst.fd); err == nil {
			w.ax.SetBudget(slot, uint64(n-a.base[d])+accel.Window)
		}
	}
}

// foldAccel adds what the kernel moved since the last call to each
// source's byte count.
func (w *Worker) foldAccel(s *session) {
	a := s.ax
	for d, ep := range [2]*endpoint{&s.c, &s.b} {
		m := w.ax.Moved(a.pair.Slot[d])
		ep.bytes += m - a.folded[d]
		a.folded[d] = m
	}
}

// unpair forgets s's pair; its slots are reused once its sockets are
// closed (reap).
func (w *Worker) unpair(s *session) {
	w.foldAccel(s)
	w.ax.Unpair(s.ax.pair)
	w.axFreed = append(w.axFreed, s.ax.pair)
	*s.ax = accelState{}
	w.axPool = append(w.axPool, s.ax)
	s.ax = nil
}

func (w *Worker) getAccel() *accelState {
	if n := len(w.axPool); n > 0 {
		a := w.axPool[n-1]
		w.axPool = w.axPool[:n-1]
		return a
	}
	return &accelState{}
}

// path says how s's bytes move, for show sessions.
func (s *session) path() string {
	switch {
	case s.ax != nil && (s.ax.dir[0] == dirKernel || s.ax.dir[1] == dirKernel):
		return "sockmap"
	case s.c.pipe != nil || s.b.pipe != nil:
		return "splice"
	}
	return "copy"
}
