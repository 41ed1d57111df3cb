package worker

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	evRead  = unix.EPOLLIN | unix.EPOLLRDHUP
	evWrite = unix.EPOLLOUT
	evEdge  = unix.EPOLLET
	evBad   = unix.EPOLLERR | unix.EPOLLHUP
)

// poller wraps one epoll instance.
type poller struct {
	fd     int
	events []unix.EpollEvent
}

func newPoller(size int) (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("worker: epoll_create: %w", err)
	}
	return &poller{fd: fd, events: make([]unix.EpollEvent, size)}, nil
}

func (p *poller) add(fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if e := sysEpollCtl(p.fd, unix.EPOLL_CTL_ADD, fd, &ev); e != 0 {
		return e
	}
	return nil
}

func (p *poller) del(fd int) error {
	if e := sysEpollCtl(p.fd, unix.EPOLL_CTL_DEL, fd, &unix.EpollEvent{}); e != 0 {
		return e
	}
	return nil
}

// wait returns ready events; an interrupted wait returns none. Under load
// there is nearly always something ready, so it first polls without
// blocking through a raw system call (no scheduler hand-off, see sys.go) and
// only blocks, through the runtime, when nothing is.
func (p *poller) wait(msec int) ([]unix.EpollEvent, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.fd), uintptr(unsafe.Pointer(&p.events[0])),
		uintptr(len(p.events)), 0, 0, 0)
	if e == 0 && r > 0 {
		return p.events[:r], nil
	}
	if msec == 0 {
		return nil, nil
	}
	n, err := unix.EpollWait(p.fd, p.events, msec)
	if err == unix.EINTR {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("worker: epoll_wait: %w", err)
	}
	return p.events[:n], nil
}
