package master

import (
	"fmt"
	"net/netip"

	"g6/conf"

	"golang.org/x/sys/unix"
)

// ensureSockets binds n SO_REUSEPORT sockets for every address in addrs that
// has none yet. An address that already has sockets keeps them (and their
// number), so a reload or upgrade never changes the reuseport group under a
// half-open connection. It returns the addresses it bound, for rollback.
func (m *Master) ensureSockets(addrs []string, n, backlog int) ([]string, error) {
	var bound []string
	for _, addr := range addrs {
		key := conf.AddrKey(addr)
		if len(m.sockets[key]) > 0 {
			continue
		}
		fds, err := listenSockets(addr, n, backlog)
		if err != nil {
			m.dropSockets(bound)
			return nil, err
		}
		m.sockets[key] = fds
		bound = append(bound, key)
	}
	return bound, nil
}

// dropSockets closes the master's sockets of the given addresses.
func (m *Master) dropSockets(keys []string) {
	for _, k := range keys {
		if m.steer != nil {
			m.steer.Forget(k)
		}
		closeAll(m.sockets[k])
		delete(m.sockets, k)
	}
}

// pickSockets returns the sockets of one address that worker slot i of n
// serves: every socket j with j%n == i, or socket i%len when there are fewer
// sockets than workers (sockets handed down by G6 are not in a reuseport
// group, so workers share them).
func pickSockets(fds []int, i, n int) []int {
	if len(fds) < n {
		return []int{fds[i%len(fds)]}
	}
	var out []int
	for j := i; j < len(fds); j += n {
		out = append(out, fds[j])
	}
	return out
}

// listenSockets binds n SO_REUSEPORT sockets on addr, non-blocking and
// close-on-exec. On error every socket made so far is closed.
func listenSockets(addr string, n, backlog int) ([]int, error) {
	ap, err := conf.ParseHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("master: listen: %w", err)
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
	// TCP_NODELAY on the listener is inherited by every accepted socket,
	// which saves workers a setsockopt per connection.
	opts := [][2]int{{unix.SOL_SOCKET, unix.SO_REUSEADDR}, {unix.SOL_SOCKET, unix.SO_REUSEPORT},
		{unix.IPPROTO_TCP, unix.TCP_NODELAY}}
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

// socketAddr is the canonical local address of a listening socket.
func socketAddr(fd int) (string, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "", err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String(), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port)).String(), nil
	}
	return "", fmt.Errorf("fd %d is not an inet socket", fd)
}

// adopt prepares an inherited listening socket for use: close-on-exec (so
// workers get only what they are handed) and non-blocking.
func adopt(fd int) error {
	unix.CloseOnExec(fd)
	return unix.SetNonblock(fd, true)
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
