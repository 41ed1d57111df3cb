package worker

import (
	"golang.org/x/sys/unix"
)

// onEndpointEvent records readiness and moves what can be moved.
// onEvent handles readiness of a session's socket.
func (ep *endpoint) onEvent(w *Worker, ev uint32) { w.onEndpointEvent(ep, ev) }

func (w *Worker) onEndpointEvent(ep *endpoint, ev uint32) {
	s := ep.s
	if ev&unix.EPOLLPRI != 0 {
		w.onUrgent(ep) // before any read, in every state
	}
	switch s.state {
	case stateInspecting:
		w.onInspectEvent(s, ev)
		return
	case stateHandshaking:
		if ev&unix.EPOLLERR != 0 {
			w.end(s)
			return
		}
		ep.canRead = ep.canRead || ev&(evRead|unix.EPOLLHUP) != 0
		ep.hup = ep.hup || ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0
		ep.canWrite = ep.canWrite || ev&evWrite != 0
		w.handshake(s)
		return
	case stateConnecting, stateOriginating:
		switch {
		case ep == &s.back && s.state == stateConnecting:
			w.onConnectEvent(s, ev)
		case ep == &s.back:
			w.onOriginEvent(s, ev)
		case ev&unix.EPOLLERR != 0:
			w.end(s) // the client reset while we were connecting
		default:
			s.front.canRead = s.front.canRead || ev&evRead != 0
			s.front.hup = s.front.hup || ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0
			s.front.canWrite = s.front.canWrite || ev&evWrite != 0
		}
		return
	case stateEstablished:
	case stateFlushing:
		w.onFlushEvent(ep, ev)
		return
	default:
		return
	}
	if ev&unix.EPOLLERR != 0 {
		abort(ep.peer)
		w.end(s)
		return
	}
	if ev&(evRead|unix.EPOLLHUP) != 0 {
		ep.canRead = true
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		ep.hup = true
	}
	if ev&(evWrite|unix.EPOLLHUP) != 0 {
		ep.canWrite = true
	}
	s.active = w.now
	w.pump(s)
}

// pump moves bytes both ways until each direction would block, then ends the
// session if both directions are finished.
func (w *Worker) pump(s *session) {
	if !w.move(s, &s.front, &s.back) || !w.move(s, &s.back, &s.front) {
		w.end(s)
		return
	}
	if s.front.rdEOF && s.back.rdEOF && s.front.pend == nil && s.back.pend == nil && empty(s.front.pipe) && empty(s.back.pipe) &&
		(s.paired == nil || s.paired.dir == [2]uint8{dirUser, dirUser}) {
		w.finish(s)
		return
	}
	if w.sockmap != nil && s.turns >= pairAfter && s.paired == nil {
		w.maybePair(s)
	}
}

func empty(p *pipe) bool {
	return p == nil || p.n == 0
}

// move copies src → dst; false means the session failed.
func (w *Worker) move(s *session, src, dst *endpoint) bool {
	if s.tls != nil {
		if t := s.tlsOf(src); t != nil {
			return w.moveFromTLS(s, src, dst, t)
		}
		if t := s.tlsOf(dst); t != nil {
			return w.moveToTLS(s, src, dst, t)
		}
	}
	if s.paired != nil && s.paired.dir[dirOf(s, src)] != dirUser {
		return w.moveKernel(s, src, dst)
	}
	if src.urgent && dst.pipe != nil {
		// Back to copying (urgent.go): the pipe's bytes go first.
		if empty, ok := w.emptyPipe(dst); !empty {
			return ok
		}
		w.putPipe(dst)
	}
	if dst.pipe == nil && dst.pend == nil && src.bytes >= w.spliceAfter && src.canRead && !dst.noSplice {
		// A bulk stream from now on (a pipe is taken only when bytes are
		// waiting, so splice = "always" does not hold pipes for idle
		// sessions); without a pipe (fd limit) keep copying.
		dst.pipe = w.getPipe()
		dst.noSplice = dst.pipe == nil
	}
	if dst.pipe != nil {
		return w.moveSplice(s, src, dst)
	}
	if dst.pend != nil {
		if !dst.canWrite {
			return true
		}
		if err := w.flush(dst); err != nil {
			return false
		}
		if dst.pend != nil {
			return true
		}
	}
	for src.canRead && !src.rdEOF && dst.pend == nil {
		n, e := sysRead(src.fd, w.scratch)
		switch {
		case e == unix.EAGAIN:
			src.canRead = false
			if s.paired != nil && w.queuedIn(s, src) {
				w.pollLater(s, src)
			}
		case e != 0:
			abort(dst)
			return false
		case n == 0 && s.paired != nil && w.queuedIn(s, src):
			src.canRead = false // not the end yet (accel.go)
			w.pollLater(s, src)
		case n == 0:
			w.sawEOF(s, src)
		default:
			w.received(s, src, n)
			if n < len(w.scratch) && s.paired == nil {
				readShort(src) // not on a psock queue, where a short read proves nothing
			}
			if !w.send(dst, w.scratch[:n]) {
				return false
			}
		}
	}
	return w.passEOF(src, dst, dst.pend == nil)
}

// received accounts for n bytes read from src.
func (w *Worker) received(s *session, src *endpoint, n int) {
	src.bytes += int64(n)
	w.timing(s, src)
	if fromSrv := src == &s.back; fromSrv != s.fromSrv {
		s.fromSrv = fromSrv
		if fromSrv && s.turns < pairAfter {
			s.turns++
		}
	}
}

// readShort notes that a read returned less than it asked for: the socket's
// queue was empty, and edge-triggered epoll reports the next arrival, so the
// read that would only say EAGAIN is skipped (two syscalls per request
// saved). Not after a hang-up was seen: the EOF is already queued and no new
// edge would announce it; nor once urgent data was seen (urgent.go). Only
// for read(2): a short splice(2) may have been cut by the pipe's slots (one
// per buffer, however small), with bytes still queued and no edge to come.
func readShort(src *endpoint) {
	if !src.hup && !src.urgent {
		src.canRead = false
	}
}

// sawEOF records the end of src's stream and, first time, who closed.
func (w *Worker) sawEOF(s *session, src *endpoint) {
	src.rdEOF = true
	w.closedBy(s, src)
}

// passEOF shuts down dst's write side once src has ended and everything for
// dst is written (drained); false on a socket error. When the other
// direction is done too, the session is about to close and close() sends
// the FIN, so the shutdown is skipped.
func (w *Worker) passEOF(src, dst *endpoint, drained bool) bool {
	if !src.rdEOF || !drained || dst.wrShut {
		return true
	}
	dst.wrShut = true
	if dst.rdEOF && src.pend == nil && empty(src.pipe) {
		dst.closeSends = true
		return true
	}
	if e := sysShutdownWrite(dst.fd); e != 0 && e != unix.ENOTCONN {
		abort(src)
		return false
	}
	return true
}

// timing feeds the response-time average: from the server's connect (or the
// client's latest bytes) to the server's first byte back.
func (w *Worker) timing(s *session, src *endpoint) {
	if src == &s.front {
		if !s.rtDone {
			s.rtStart = w.now
		}
		return
	}
	if !s.rtDone {
		// One sample per session, the server's first answer: the RT
		// algorithm's moving average and the first-byte histogram.
		s.rtDone = true
		rt := max(w.now-s.rtStart, 1)
		s.server.slot.ObserveRT(rt)
		s.server.slot.FirstByte.Observe(rt)
		if s.server.slot.EjectStreak.Load() != 0 { // a load, not a store, on the usual path
			s.server.slot.EjectStreak.Store(0)
		}
	}
}

// send writes b to dst, keeping what does not fit in dst.pend.
func (w *Worker) send(dst *endpoint, b []byte) bool {
	m := 0
	if dst.canWrite {
		n, e := sysWrite(dst.fd, b)
		switch {
		case e == unix.EAGAIN:
		case e != 0:
			abort(dst.peer)
			return false
		default:
			m = n
		}
	}
	if m < len(b) {
		dst.canWrite = false
		dst.pend = append(w.getBuf(), b[m:]...)
		dst.off = 0
	}
	return true
}

// flush writes dst.pend; it stays non-nil while bytes remain.
func (w *Worker) flush(dst *endpoint) error {
	for dst.off < len(dst.pend) {
		n, e := sysWrite(dst.fd, dst.pend[dst.off:])
		if e == unix.EAGAIN {
			dst.canWrite = false
			return nil
		}
		if e != 0 {
			abort(dst.peer)
			return e
		}
		dst.off += n
	}
	w.putBuf(dst)
	return nil
}

// bufSize is the scratch and pending buffer size.
const bufSize = 64 << 10

func (w *Worker) getBuf() []byte {
	if n := len(w.bufs); n > 0 {
		b := w.bufs[n-1]
		w.bufs = w.bufs[:n-1]
		return b[:0]
	}
	return make([]byte, 0, bufSize)
}

// putBuf returns an endpoint's pending buffer to the pool.
func (w *Worker) putBuf(ep *endpoint) {
	if ep.pend == nil {
		return
	}
	w.keepBuf(ep.pend)
	ep.pend, ep.off = nil, 0
}

// keepPooled is how many of each reusable thing (pending-tail buffers,
// pipes, look states) a worker keeps; the rest go to the GC, so idle
// memory shrinks after a burst.
const keepPooled = 64

// keepBuf returns a buffer from getBuf to the pool (keepPooled at most).
func (w *Worker) keepBuf(b []byte) {
	if len(w.bufs) < keepPooled && cap(b) == bufSize { // not one grown by a handoff's unsent bytes
		w.bufs = append(w.bufs, b[:0])
	}
}

// closedBy records which side closed first, for the access log.
func (w *Worker) closedBy(s *session, src *endpoint) {
	if s.reason != endUnknown {
		return
	}
	if src == &s.front {
		s.reason = endClientClose
	} else {
		s.reason = endServerClose
	}
}

// abort makes closing ep send a reset instead of a FIN (SO_LINGER 0). It is
// called when the other side of the session failed (reset, timed out):
// passing that on as a reset keeps a truncated stream from looking
// complete, as a FIN would make it.
func abort(ep *endpoint) {
	ep.aborted = true
	if ep.fd >= 0 {
		sysSetLinger0(ep.fd)
	}
}
