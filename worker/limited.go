package worker

import (
	"time"

	"golang.org/x/sys/unix"
)

// limitedLog lets one line of a kind through per second and counts the
// rest, so a condition that repeats per connection (descriptors exhausted,
// no local ports) cannot flood the log: the next line says how many were
// left out.
type limitedLog struct {
	next    int64
	dropped int
}

func (w *Worker) warnLimited(l *limitedLog, msg string, args ...any) {
	if w.now < l.next {
		l.dropped++
		return
	}
	if l.dropped > 0 {
		args = append(args, "repeated", l.dropped)
	}
	l.next, l.dropped = w.now+int64(time.Second), 0
	w.log.Warn(msg, args...)
}

// acceptPause is how long the listeners stay out of the epoll set after
// the worker ran out of descriptors or memory for a connection. They are
// level-triggered and stay readable while clients queue, so polling them
// meanwhile would spin; the clients wait in the accept queue (their
// handshakes are done) instead.
const acceptPause = 100 * time.Millisecond

// resourceShortage reports whether a socket or accept error means the
// process or host is out of descriptors or buffer memory for now.
func resourceShortage(e unix.Errno) bool {
	switch e {
	case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
		return true
	}
	return false
}

// notListening reports whether accept failed because the socket is no
// longer a listening one: the master shut it down (an address a reload
// removed), which a worker may see before its drain order.
func notListening(e unix.Errno) bool {
	return e == unix.EINVAL || e == unix.EBADF || e == unix.ENOTSOCK
}

// pauseAccept takes every listener out of the epoll set for acceptPause.
func (w *Worker) pauseAccept() {
	if w.acceptResume != 0 || w.draining {
		return
	}
	for _, ln := range w.listeners {
		if !ln.dead {
			w.poll.del(ln.fd)
		}
	}
	w.acceptResume = w.now + int64(acceptPause)
}

// resumeAccept puts the listeners back once the pause is over.
func (w *Worker) resumeAccept() {
	if w.acceptResume == 0 || w.now < w.acceptResume {
		return
	}
	w.acceptResume = 0
	if w.draining {
		return
	}
	for _, ln := range w.listeners {
		if ln.dead {
			continue
		}
		if err := w.poll.add(ln.fd, unix.EPOLLIN); err != nil {
			w.log.Error("epoll add listener", "listen", ln.addr, "err", err)
		}
	}
}
