package worker

import (
	"errors"

	"g6/ipc"

	"golang.org/x/sys/unix"
)

// stream is a non-blocking unix stream socket that carries ipc frames and,
// with them, fds (SCM_RIGHTS): the control channel to the master and the
// handoff channels between workers. Received fds wait in fds, in arrival
// order, until a message claims them (take); since the kernel delivers an
// fd with the bytes it was sent with, a message's fds have always arrived
// by the time the message is complete. Fds to send go with the next write,
// which is never later than the frame that names them.
type stream struct {
	fd     int
	dec    ipc.Decoder
	fds    []int  // received, not yet claimed
	out    []byte // frames not yet written
	rights []int  // fds to attach to the next write
	buf    []byte
	oob    []byte
	trunc  bool // the kernel dropped fds (MSG_CTRUNC): the fd order is lost
}

func newStream(fd int) stream {
	return stream{fd: fd, buf: make([]byte, 64<<10), oob: make([]byte, unix.CmsgSpace(4*253))}
}

var errStreamClosed = errors.New("channel closed")

// read takes in everything the socket holds; errStreamClosed at its end.
func (c *stream) read() error {
	for {
		n, oobn, flags, _, err := unix.Recvmsg(c.fd, c.buf, c.oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return nil
		}
		if err != nil {
			return err
		}
		if oobn > 0 {
			c.collect(c.oob[:oobn])
		}
		if flags&unix.MSG_CTRUNC != 0 {
			c.trunc = true
		}
		if n == 0 {
			return errStreamClosed
		}
		c.dec.Feed(c.buf[:n])
	}
}

// collect files the fds of a control message.
func (c *stream) collect(oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for i := range msgs {
		if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			c.fds = append(c.fds, fds...)
		}
	}
}

// take claims the next n received fds; false if they did not all arrive
// (the kernel dropped some), in which case none are claimed.
func (c *stream) take(n int) ([]int, bool) {
	if c.trunc || len(c.fds) < n {
		return nil, false
	}
	out := append([]int(nil), c.fds[:n]...)
	c.fds = c.fds[n:]
	return out, true
}

// queue adds a message, with fds to attach, and writes what it can.
func (c *stream) queue(m ipc.Message, fds ...int) error {
	b, err := ipc.Encode(m)
	if err != nil {
		return err
	}
	c.out = append(c.out, b...)
	c.rights = append(c.rights, fds...)
	return c.flush()
}

// flush writes queued frames until the socket is full (nil: EPOLLOUT
// brings the rest) or fails.
func (c *stream) flush() error {
	for len(c.out) > 0 {
		var oob []byte
		if len(c.rights) > 0 {
			oob = unix.UnixRights(c.rights...)
		}
		n, err := unix.SendmsgN(c.fd, c.out, oob, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return nil
		}
		if err != nil {
			return err
		}
		c.rights = nil
		c.out = c.out[n:]
	}
	c.out = nil
	return nil
}

// close closes the socket and every fd received and not claimed.
func (c *stream) close() {
	for _, fd := range c.fds {
		sysClose(fd)
	}
	c.fds = nil
	sysClose(c.fd)
	c.fd = -1
}
