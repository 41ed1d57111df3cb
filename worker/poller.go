package worker

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	evRead  = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLPRI
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

// wait returns ready events; an interrupted wait returns none. The wait is
// a raw system call even when it blocks: the worker's one goroutine is the
// only one with work (GOMAXPROCS=1, no timers or channels), so there is
// nothing for the scheduler to run meanwhile, and the runtime's syscall
// bookkeeping (sysmon retaking the P, futex hand-offs on every wake-up) cost
// more than it bought. A GC that needs the P waits at most msec.
func (p *poller) wait(msec int) ([]unix.EpollEvent, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.fd), uintptr(unsafe.Pointer(&p.events[0])),
		uintptr(len(p.events)), uintptr(msec), 0, 0)
	switch e {
	case 0:
		return p.events[:r], nil
	case unix.EINTR:
		return nil, nil
	}
	return nil, fmt.Errorf("worker: epoll_wait: %w", e)
}
