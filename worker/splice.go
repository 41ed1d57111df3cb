package worker

import (
	"math"

	"g6/conf"

	"golang.org/x/sys/unix"
)

// Splice: once a direction has carried w.spliceAfter bytes (256 KiB with
// the default splice = "auto", 0 with "always", never with "off") it is a bulk
// stream, and its bytes move socket → pipe → socket inside the kernel
// instead of being copied through the scratch buffer. Small request/response
// traffic never pays for a pipe. A pipe holds the destination's pending
// bytes the way pend does for buffered directions; pipes are pooled, and a
// pipe that still holds data when its session ends is closed, not pooled.

const (
	spliceAuto  = 256 << 10
	spliceChunk = 1 << 20
	pipeSize    = 1 << 20
	spliceFlags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK
)

// spliceThreshold maps the config's splice mode to the bytes a direction
// carries before it switches to splice.
func spliceThreshold(mode string) int64 {
	switch mode {
	case conf.SpliceAlways:
		return 0
	case conf.SpliceOff:
		return math.MaxInt64
	}
	return spliceAuto
}

type pipe struct {
	r, w int
	n    int // bytes in the pipe
}

func (w *Worker) getPipe() *pipe {
	if n := len(w.pipes); n > 0 {
		p := w.pipes[n-1]
		w.pipes = w.pipes[:n-1]
		return p
	}
	var fds [2]int
	if unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC) != nil {
		return nil
	}
	unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, pipeSize) // best effort
	return &pipe{r: fds[0], w: fds[1]}
}

func (w *Worker) putPipe(ep *endpoint) {
	p := ep.pipe
	if p == nil {
		return
	}
	ep.pipe = nil
	if p.n == 0 && len(w.pipes) < keepPooled {
		w.pipes = append(w.pipes, p)
		return
	}
	sysClose(p.r)
	sysClose(p.w)
}

func sysSplice(in, out, n int) (int, unix.Errno) {
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), spliceFlags)
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

// moveSplice is move for a direction in splice mode.
func (w *Worker) moveSplice(s *session, src, dst *endpoint) bool {
	if empty, ok := w.emptyPipe(dst); !empty {
		return ok
	}
	p := dst.pipe
	for src.canRead && !src.rdEOF && p.n == 0 {
		n, e := sysSplice(src.fd, p.w, spliceChunk)
		switch {
		case e == unix.EAGAIN:
			src.canRead = false
		case e != 0:
			abort(dst)
			return false
		case n == 0:
			w.sawEOF(s, src)
		default:
			w.received(s, src, n) // read on until EAGAIN (see readShort)
			p.n = n
			if dst.canWrite && !w.drainPipe(dst) {
				return false
			}
		}
	}
	return w.passEOF(src, dst, p.n == 0)
}

// emptyPipe writes what dst's pipe holds into dst if dst can take it: empty
// says the pipe has nothing left, ok is false on a socket error.
func (w *Worker) emptyPipe(dst *endpoint) (empty, ok bool) {
	if dst.pipe.n == 0 {
		return true, true
	}
	if !dst.canWrite {
		return false, true
	}
	if !w.drainPipe(dst) {
		return false, false
	}
	return dst.pipe.n == 0, true
}

// drainPipe moves what the pipe holds into dst; false on a socket error.
func (w *Worker) drainPipe(dst *endpoint) bool {
	p := dst.pipe
	for p.n > 0 {
		n, e := sysSplice(p.r, dst.fd, p.n)
		switch {
		case e == unix.EAGAIN:
			dst.canWrite = false
			return true
		case e != 0:
			abort(dst.peer)
			return false
		}
		p.n -= n
	}
	return true
}
