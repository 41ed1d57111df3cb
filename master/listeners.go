package master

import (
	"fmt"
	"net/netip"

	"g6/conf"

	"golang.org/x/sys/unix"
)

// listenSockets binds n SO_REUSEPORT sockets on addr, non-blocking and
// close-on-exec. On error every socket made so far is closed.
func listenSockets(addr string, n, backlog int) ([]int, error) {
	ap, err := conf.ParseHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("master: listen %w", err)
	}
	var fds []int
	for i := 0; i < n; i++ {
		fd, err := listenSocket(ap, backlog)
		if err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("master: cannot listen on %s: %w", addr, err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

func listenSocket(ap netip.AddrPort, backlog int) (int, error) {
	var sa unix.Sockaddr
	fam := unix.AF_INET
	if ap.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		fam = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	opts := [][2]int{{unix.SOL_SOCKET, unix.SO_REUSEADDR}, {unix.SOL_SOCKET, unix.SO_REUSEPORT}}
	if fam == unix.AF_INET6 {
		opts = append(opts, [2]int{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY})
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o[0], o[1], 1); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
