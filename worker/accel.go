package worker

import (
	"time"

	"g6/accel"

	"golang.org/x/sys/unix"
)

// Kernel forwarding (accel = "sockmap", package accel). A keep-alive
// session (see pairAfter) that holds no bytes of its own is paired: from
// then on the kernel moves each direction and the worker hears of the
// session only for a FIN, an error, urgent data, a timer, or bytes the
// program passed to it (a spilled direction: by EPOLLIN, and at each
// sweep in case that never came, pokeSpilled).
//
// Each direction is dirKernel, then dirDrain when its source ended or
// spilled, until the destination has taken every byte the kernel moved
// for it (accel.Written less the base taken at pairing reaches Moved),
// checked at once and then on a timer backing off from 1 ms to 50 ms; then
// dirUser, the ordinary copy path (never splice: a paired socket's bytes
// are on its psock queue, which splice does not read), and the FIN or the
// spilled bytes go on. On HUP and USR2 a paired session is handed over as
// it is, the kernel forwarding all along: its sockets cannot leave the map
// without dropping what may be queued on it, so the batch carries the
// maps' fds and the new worker keeps those maps (axHanded) until the last
// session in them ends.

// Which sessions pair (pairing costs about ten syscalls, a user-space
// request and answer about six, and a spilled direction copies through the
// psock queue, never splice): those that
// have lived pairDelay and had pairAfter answers (keep-alive, not
// one-shot), and have carried less than pairBulk either way (bulk streams
// stay on splice).
const (
	pairAfter = 2
	pairDelay = int64(200 * time.Millisecond)
	pairBulk  = 256 << 10
)

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

// pairing is what a paired session keeps (pooled: the fast path's
// session only has the pointer).
type pairing struct {
	maps      *accel.Pairs // the maps it is paired in: this worker's, or those of the worker that handed it over
	pair      accel.Pair
	dir       [2]uint8
	poll      [2]bool  // read the source again at the next check (queuedIn)
	base      [2]int64 // Written of each direction's destination at pairing
	recvOff   [2]int64 // Received of each source at pairing less what the worker had read
	folded    [2]int64 // Moved already added to each source's bytes
	checkAt   int64    // next drain check or poll; 0 = none due
	checkWait int64
}

// dirOf is src's direction index.
func dirOf(s *session, src *endpoint) int {
	if src == &s.front {
		return 0
	}
	return 1
}

// ends are direction d's source and destination.
func (s *session) ends(d int) (src, dst *endpoint) {
	if d == 0 {
		return &s.front, &s.back
	}
	return &s.back, &s.front
}

// taken is how many of the bytes the kernel moved for direction d its
// destination has taken (entered its socket) since pairing.
func (w *Worker) taken(s *session, d int) (int64, error) {
	_, dst := s.ends(d)
	n, err := accel.Written(dst.fd)
	return n - s.paired.base[d], err
}

// quietKernelDirs leaves a kernel direction's source unread until epoll
// reports it (a handed or resumed session starts with both marked ready).
func (s *session) quietKernelDirs() {
	for d := range 2 {
		if s.paired.dir[d] == dirKernel {
			src, _ := s.ends(d)
			src.canRead = false
		}
	}
}

// maybePair pairs s if it qualifies (see pairAfter). Conditions that pass
// (bytes held here, too young) are looked at again; the others rule the
// session out for good.
func (w *Worker) maybePair(s *session) {
	switch {
	case s.paired != nil || s.noPair || w.pairingOff || s.state != stateEstablished || w.now-s.started < pairDelay:
		return
	case s.front.bytes >= pairBulk || s.back.bytes >= pairBulk || s.front.rdEOF || s.back.rdEOF ||
		s.front.wrShut || s.back.wrShut || s.front.urgent || s.back.urgent:
		s.noPair = true
		return
	case s.front.pend != nil || s.back.pend != nil || s.front.pipe != nil || s.back.pipe != nil:
		return
	}
	s.noPair = true // one try
	cc, err := accel.Count(s.front.fd)
	if err != nil {
		return
	}
	cb, err := accel.Count(s.back.fd)
	if err != nil {
		return
	}
	pr, spilled, err := w.sockmap.Pair(s.front.fd, s.back.fd, [2]uint64{accel.Window, accel.Window})
	if err != nil && !spilled {
		w.warnLimited(&w.pairFailed, "session not paired; it goes on in user space", "rule", s.rule.id, "err", err)
		return
	}
	a := w.getPairing()
	a.maps, a.pair = w.sockmap, pr
	w.sockmap.Users++
	a.base = [2]int64{cb.Written, cc.Written}
	a.recvOff = [2]int64{cc.Received - s.front.bytes, cb.Received - s.back.bytes}
	s.paired = a
	// Whatever comes to the worker from now on is on a psock queue.
	s.front.noSplice, s.back.noSplice = true, true
	if spilled {
		a.dir = [2]uint8{dirUser, dirUser}
		return
	}
	// The worker reads a paired socket only when epoll says so again (Pair
	// ran the program over what was queued).
	s.front.canRead, s.back.canRead = false, false
}

// moveKernel is move for a direction that is not dirUser.
func (w *Worker) moveKernel(s *session, src, dst *endpoint) bool {
	d := dirOf(s, src)
	if s.paired.dir[d] == dirDrain || !src.canRead {
		return true
	}
	// The kernel stops redirecting src before the worker reads it: a read
	// on a paired socket may take bytes the program has not seen yet
	// (tcp_bpf falls back to the receive queue), and none that come later
	// may overtake them.
	s.paired.maps.Spill(s.paired.pair.Slot[d])
	for src.canRead {
		n, e := sysRead(src.fd, w.scratch)
		switch {
		case e == unix.EAGAIN:
			src.canRead = false
			continue
		case e != 0:
			abort(dst)
			return false
		case n == 0 && w.queuedIn(s, src):
			// Not the end: bytes wait on the psock's backlog (they spilled
			// just now) and come later, read at the next check.
			src.canRead = false
			w.pollLater(s, src)
		case n == 0:
			w.sawEOF(s, src)
		default:
			// Spilled: these bytes wait until dst has every one the
			// kernel moved.
			w.received(s, src, n)
			dst.pend = append(w.getBuf(), w.scratch[:n]...)
			dst.off = 0
		}
		w.startCheck(s, d)
		// Drained already: the FIN or the bytes go on now, on the copy path.
		return s.paired.dir[d] != dirUser || w.move(s, src, dst)
	}
	return true
}

// startCheck moves direction d to dirDrain and checks it at once.
func (w *Worker) startCheck(s *session, d int) {
	s.paired.dir[d] = dirDrain
	s.paired.checkWait = checkFirst
	w.drainCheck(s)
}

// drainCheck hands each draining direction whose destination has taken
// every moved byte to the copy path, and looks again later for the others
// and for sources to read again (pollLater).
func (w *Worker) drainCheck(s *session) {
	a := s.paired
	waiting := false
	for d := range 2 {
		if a.dir[d] != dirDrain {
			continue
		}
		if n, err := w.taken(s, d); err != nil || n >= a.maps.Moved(a.pair.Slot[d]) {
			a.dir[d] = dirUser // an error shows on the copy path
			continue
		}
		waiting = true
	}
	a.checkAt = 0
	if waiting || a.poll != [2]bool{} {
		a.checkAt = w.now + a.checkWait
		a.checkWait = min(2*a.checkWait, checkMax)
		w.timers.push(timerEntry{at: a.checkAt, t: s, gen: s.gen})
	}
}

// accelTimer runs at s's timer: a due drain check, and the last time the
// kernel moved bytes counts as activity for the idle timeout.
func (w *Worker) accelTimer(s *session) {
	a := s.paired
	for _, slot := range a.pair.Slot {
		if t := a.maps.Last(slot); t > s.active {
			s.active = t
		}
	}
	if a.checkAt != 0 && a.checkAt <= w.now {
		for d := range 2 {
			if a.poll[d] {
				a.poll[d] = false
				src, _ := s.ends(d)
				src.canRead = true
			}
		}
		w.drainCheck(s)
		w.pump(s)
	}
}

// queuedIn reports whether src, a paired socket on the copy path, has
// bytes the worker has not read although a read just said EAGAIN or EOF:
// tcp_bpf's recvmsg reports EOF once the FIN came even while bytes wait
// on the psock's backlog for room on its own queue (they come later,
// without a new edge). Received less what the kernel moved and the worker
// read tells.
func (w *Worker) queuedIn(s *session, src *endpoint) bool {
	d := dirOf(s, src)
	c, err := accel.Count(src.fd)
	if err != nil {
		return false
	}
	a := s.paired
	read := src.bytes - a.folded[d] // what the worker read itself
	return c.Received-a.recvOff[d]-read-a.maps.Moved(a.pair.Slot[d]) > 0
}

// duplicated is how many more bytes direction d carried (moved by the
// kernel and read by the worker) than its source received: more than 0
// means the kernel ran its verdict twice over the same bytes, which a
// 6.18 kernel does now and then under sustained bulk.
func (w *Worker) duplicated(s *session, d int) int64 {
	src, _ := s.ends(d)
	c, err := accel.Count(src.fd)
	if err != nil {
		return 0
	}
	// Every byte it received was read by a worker or moved by the kernel
	// (those queued at pairing went through the verdict too), once.
	return src.bytes - c.Received
}

// kernelDuplicated says once that the kernel forwarded bytes twice and
// stops pairing sessions in this worker: the bytes are gone by then, so
// the worker takes no more risks with this kernel.
func (w *Worker) kernelDuplicated(s *session, n int64) {
	if w.pairingOff {
		return
	}
	w.pairingOff = true
	var u unix.Utsname
	unix.Uname(&u)
	w.log.Error("kernel forwarding duplicated bytes: the kernel's sockmap ran its verdict twice over the same data; no session is paired in this worker any more",
		"rule", s.rule.id, "client", s.peer, "bytes", n, "kernel", unix.ByteSliceToString(u.Release[:]))
}

// pollLater reads src again at the next check.
func (w *Worker) pollLater(s *session, src *endpoint) {
	a := s.paired
	a.poll[dirOf(s, src)] = true
	if a.checkAt == 0 {
		a.checkWait = checkFirst
		a.checkAt = w.now + checkFirst
		w.timers.push(timerEntry{at: a.checkAt, t: s, gen: s.gen})
	}
}

// refreshBudgets lets each kernel direction run Window past what its
// destination has taken, when it comes near its budget (every sweep).
func (w *Worker) refreshBudgets(s *session) {
	a := s.paired
	for d := range 2 {
		if a.dir[d] != dirKernel {
			continue
		}
		slot := a.pair.Slot[d]
		if uint64(a.maps.Moved(slot))+accel.Window/2 < a.maps.Budget(slot) {
			continue
		}
		if n, err := w.taken(s, d); err == nil {
			a.maps.SetBudget(slot, uint64(n)+accel.Window)
		}
	}
}

// pokeSpilled reads each direction the program spilled that epoll has not
// reported. The worker hears of spilled bytes by EPOLLIN on the source;
// once in about ten forced-accel runs a 512 MiB transfer stopped for good
// at one Window, the spill (budget passed long before a sweep raises it)
// apparently never reported. A read here finds them, or EAGAIN (one
// syscall a sweep while such a direction waits). false: s failed.
func (w *Worker) pokeSpilled(s *session) bool {
	a := s.paired
	for d := range 2 {
		if a.dir[d] != dirKernel || !a.maps.Spilled(a.pair.Slot[d]) {
			continue
		}
		src, dst := s.ends(d)
		src.canRead = true
		if !w.moveKernel(s, src, dst) {
			return false
		}
	}
	return true
}

// foldMoved adds what the kernel moved since the last call to each
// source's byte count.
func (w *Worker) foldMoved(s *session) {
	a := s.paired
	for d, ep := range [2]*endpoint{&s.front, &s.back} {
		m := a.maps.Moved(a.pair.Slot[d])
		ep.bytes += m - a.folded[d]
		a.folded[d] = m
	}
}

// unpair forgets s's pair; its slots are reused once its sockets are
// closed (reap).
func (w *Worker) unpair(s *session) {
	w.foldMoved(s)
	for d := range 2 {
		if n := w.duplicated(s, d); n > 0 {
			w.kernelDuplicated(s, n)
		}
	}
	a := s.paired
	a.maps.Unpair(a.pair)
	w.freedPairs = append(w.freedPairs, freedPair{a.maps, a.pair})
	w.dropPairing(s)
}

// dropPairing forgets s's pairing here (unpaired, or handed over with
// the session).
func (w *Worker) dropPairing(s *session) {
	s.paired.maps.Users--
	*s.paired = pairing{}
	w.pairingPool = append(w.pairingPool, s.paired)
	s.paired = nil
}

// freedPair is a pair whose slots are free once its sockets are closed.
type freedPair struct {
	maps *accel.Pairs
	pair accel.Pair
}

// releasePairs frees the slots of the pairs ended in this batch (their
// sockets are closed now) and closes handed maps nobody uses any more.
func (w *Worker) releasePairs() {
	for _, f := range w.freedPairs {
		f.maps.Free(f.pair)
		if f.maps != w.sockmap && f.maps.Users == 0 && !f.maps.Closed() {
			f.maps.Close()
		}
	}
	clear(w.freedPairs)
	w.freedPairs = w.freedPairs[:0]
}

func (w *Worker) getPairing() *pairing {
	if n := len(w.pairingPool); n > 0 {
		a := w.pairingPool[n-1]
		w.pairingPool = w.pairingPool[:n-1]
		return a
	}
	return &pairing{}
}

// path says how s's bytes move, for show sessions.
func (s *session) path() string {
	switch {
	case s.paired != nil && (s.paired.dir[0] == dirKernel || s.paired.dir[1] == dirKernel):
		return "sockmap"
	case s.front.pipe != nil || s.back.pipe != nil:
		return "splice"
	}
	return "copy"
}
