package worker

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Flushing: when both directions of a session are done, the last bytes
// written to a socket may still sit in its kernel send queue (a slow
// reader that has already sent its FIN). Closing then would leave them to
// an orphaned socket in LAST-ACK, subject to the kernel's orphan limits, and
// the session would stop counting while its bytes are still on the way. So
// a session whose close would send the FIN itself (closeSends) stays in
// stateFlushing until those sockets' send queues are empty: it keeps its
// counts, shows in show sessions, and holds a drain open. The kernel tells
// no one when a send queue empties, so the loop looks again on write-space
// events and on a timer that backs off from 5 ms to 200 ms; an error, or a
// hang-up on a socket still being flushed, ends the session at once, and
// with an idle timeout so does a queue that has not shrunk for that long.

const (
	flushFirst = int64(5 * time.Millisecond)
	flushMax   = int64(200 * time.Millisecond)
)

// finish ends a session whose directions are both done, or starts
// flushing it.
func (w *Worker) finish(s *session) {
	q := unsentOf(&s.front) + unsentOf(&s.back)
	if q == 0 {
		w.end(s)
		return
	}
	s.state = stateFlushing
	s.unsent, s.active = int32(q), w.now
	s.flushWait = flushFirst
	s.flushAt = w.now + s.flushWait
	w.timers.push(timerEntry{at: s.flushAt, t: s, gen: s.gen})
}

// flushCheck looks at a flushing session's send queues again (timer).
func (w *Worker) flushCheck(s *session) {
	q := unsentOf(&s.front) + unsentOf(&s.back)
	switch {
	case q == 0:
		w.end(s)
		return
	case q < int(s.unsent):
		s.unsent, s.active = int32(q), w.now
		s.flushWait = flushFirst
	case s.idleTimeout() > 0 && w.now-s.active >= s.idleTimeout():
		w.log.Debug("idle timeout while flushing", "rule", s.rule.id, "client", s.peer, "unsent", q)
		w.endWith(s, endTimeout)
		return
	default:
		s.flushWait = min(2*s.flushWait, flushMax)
	}
	s.flushAt = w.now + s.flushWait
	w.timers.push(timerEntry{at: s.flushAt, t: s, gen: s.gen})
}

// onFlushEvent handles readiness of a flushing session's socket ep. A
// hang-up is the end only on a socket still being flushed: the other one
// was shut down both ways on purpose (FIN passed on, the peer's FIN read),
// and the kernel reports exactly that as EPOLLHUP.
func (w *Worker) onFlushEvent(ep *endpoint, ev uint32) {
	s := ep.s
	if ev&unix.EPOLLERR != 0 || ev&unix.EPOLLHUP != 0 && ep.closeSends {
		w.end(s) // reset by the peer: nothing more will be delivered
		return
	}
	if ev&unix.EPOLLOUT != 0 && unsentOf(&s.front)+unsentOf(&s.back) == 0 {
		w.end(s)
	}
}

// unsentOf is what the kernel still holds to send (or to see acknowledged)
// on a socket whose close would send the FIN; 0 for the others.
func unsentOf(ep *endpoint) int {
	if !ep.closeSends || ep.fd < 0 {
		return 0
	}
	var n int32
	_, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(ep.fd), unix.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return 0
	}
	return int(n)
}
