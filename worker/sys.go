package worker

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw system calls for the data path. Every one of them is non-blocking on
// our sockets, so they skip the runtime's entersyscall/exitsyscall: with one
// locked thread, the normal path woke sysmon and handed the P around on
// every call (futex and nanosleep storms measured with strace -c).
// epoll_pwait, which does block, is raw too (poller.go says why); the
// blocking read of the setup message at start is the only call through the
// normal path.

func sysRead(fd int, b []byte) (int, unix.Errno) {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		if e != unix.EINTR {
			return int(n), e
		}
	}
}

func sysWrite(fd int, b []byte) (int, unix.Errno) {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		if e != unix.EINTR {
			return int(n), e
		}
	}
}

func sysClose(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

func sysShutdownWrite(fd int) unix.Errno {
	_, _, e := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0)
	return e
}

func sysSetInt(fd, level, opt, v int) unix.Errno {
	val := int32(v)
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&val)), 4, 0)
	return e
}

// sysSetLinger0 sets SO_LINGER {on, 0 s}: close sends a reset.
func sysSetLinger0(fd int) unix.Errno {
	l := unix.Linger{Onoff: 1}
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_LINGER,
		uintptr(unsafe.Pointer(&l)), unsafe.Sizeof(l), 0)
	return e
}

func sysSoError(fd int) (int, unix.Errno) {
	var val int32
	l := uint32(4)
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_ERROR,
		uintptr(unsafe.Pointer(&val)), uintptr(unsafe.Pointer(&l)), 0)
	return int(val), e
}

func sysBind(fd int, sa *unix.RawSockaddrAny, salen uint32) unix.Errno {
	_, _, e := unix.RawSyscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(sa)), uintptr(salen))
	return e
}

func sysConnect(fd int, sa *unix.RawSockaddrAny, salen uint32) unix.Errno {
	for {
		_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(sa)), uintptr(salen))
		if e != unix.EINTR {
			return e
		}
	}
}

func sysSocket(family, typ int) (int, unix.Errno) {
	fd, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), uintptr(typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC), 0)
	return int(fd), e
}

func sysEpollCtl(epfd, op, fd int, ev *unix.EpollEvent) unix.Errno {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return e
}

// accept4 without x/sys/unix's Sockaddr allocation.
func accept4(fd int, rsa *unix.RawSockaddrAny) (int, unix.Errno) {
	l := uint32(unix.SizeofSockaddrAny)
	for {
		nfd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(rsa)),
			uintptr(unsafe.Pointer(&l)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		switch e {
		case unix.EINTR, unix.ECONNABORTED:
			continue
		}
		return int(nfd), e
	}
}

// rawSockaddr builds the kernel's form of a server address once.
func rawSockaddr(family int, ip []byte, port uint16) (unix.RawSockaddrAny, uint32) {
	var rsa unix.RawSockaddrAny
	if family == unix.AF_INET {
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		p.Family = unix.AF_INET
		p.Port = port<<8 | port>>8
		copy(p.Addr[:], ip)
		return rsa, unix.SizeofSockaddrInet4
	}
	p := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
	p.Family = unix.AF_INET6
	p.Port = port<<8 | port>>8
	copy(p.Addr[:], ip)
	return rsa, unix.SizeofSockaddrInet6
}
