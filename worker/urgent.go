package worker

import "golang.org/x/sys/unix"

// TCP urgent data (telnet's Synch, FTP's ABOR, rlogin) is forwarded inline:
// its bytes stay in the stream, in order; only the urgency is not passed on.
// Two kernel rules shape this. A read stops short at the urgent mark, so a
// short read no longer means the queue is empty; and splice never passes the
// mark (it reports EAGAIN with bytes still queued), so a direction that has
// seen urgent data copies from then on, once its pipe is empty (move). Nothing is paid until a socket
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
