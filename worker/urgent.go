package worker

import "golang.org/x/sys/unix"

// TCP urgent data (telnet's Synch, FTP's ABOR, rlogin) is forwarded inline:
// its bytes stay in the stream, in order; only the urgency is not passed on.
// Two kernel rules shape this. A read stops short at the urgent mark, so a
// short read no longer means the queue is empty; and splice never passes the
// mark (it reports EAGAIN with bytes still queued), so a direction that has
// seen urgent data copies from then on. Nothing is paid until a socket
// reports EPOLLPRI: SO_OOBINLINE is set then, before the byte is read (the
// kernel checks it at read time).

// onUrgent prepares ep, which has urgent data queued, to read it inline.
func (w *Worker) onUrgent(ep *endpoint) {
	if ep.urgent {
		return
	}
	ep.urgent = true
	ep.peer.noSplice = true // the direction ep → peer copies from now on
	sysSetInt(ep.fd, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1)
}

// leaveSplice moves dst's direction back to copying once its source has
// seen urgent data: the pipe is emptied into dst first, so bytes keep their
// order. done is false while the pipe still holds bytes dst cannot take
// yet; failed is true on a socket error.
func (w *Worker) leaveSplice(dst *endpoint) (done, failed bool) {
	if dst.pipe.n > 0 {
		if !dst.canWrite {
			return false, false
		}
		if !w.drainPipe(dst) {
			return false, true
		}
		if dst.pipe.n > 0 {
			return false, false
		}
	}
	w.putPipe(dst)
	dst.noSplice = true
	return true, false
}
