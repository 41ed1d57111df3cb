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

// listenSockets binds n SO_REUSEPORT sockets on key (a conf.ListenKey:
// TCP or UDP), non-blocking and close-on-exec. On error every socket made
// so far is closed.
func listenSockets(key string, n, backlog int) ([]int, error) {
	proto, addr := conf.SplitListenKey(key)
	ap, err := conf.ParseHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("master: listen: %w", err)
	}
	var fds []int
	for i := 0; i < n; i++ {
		fd, err := listenSocket(ap, proto, backlog)
		if err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("master: cannot listen on %s: %w", addr, err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

func listenSocket(ap netip.AddrPort, proto string, backlog int) (int, error) {
	var sa unix.Sockaddr
	fam := unix.AF_INET
	if ap.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		fam = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	if proto == conf.ProtocolUDP {
		return udpSocket(fam, sa)
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	// TCP_NODELAY on the listener is inherited by every accepted socket,
	// which saves workers a setsockopt per connection.
	if err := setListenOpts(fd, fam, [2]int{unix.IPPROTO_TCP, unix.TCP_NODELAY}); err != nil {
		unix.Close(fd)
		return -1, err
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

// socketAddr is the listen key (conf.ListenKey) of a listening socket.
func socketAddr(fd int) (string, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "", err
	}
	var ap netip.AddrPort
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		ap = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		ap = netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	default:
		return "", fmt.Errorf("fd %d is not an inet socket", fd)
	}
	proto := conf.ProtocolTCP
	if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err == nil && typ == unix.SOCK_DGRAM {
		proto = conf.ProtocolUDP
	}
	return conf.ListenKey(proto, ap.String()), nil
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

// udpSocket binds one SO_REUSEPORT UDP socket of a worker slot. The kernel
// spreads datagrams over a reuseport group by the four-tuple, so one
// client's datagrams reach one worker. Its receive buffer is raised (to
// what net.core.rmem_max allows) so that a burst, or the moment a socket
// changes hands in a reload, waits in the kernel instead of being dropped:
// past net.core.rmem_max / wmem_max if the master may (CAP_NET_ADMIN,
// SO_RCVBUFFORCE), else up to them.
func udpSocket(fam int, sa unix.Sockaddr) (int, error) {
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := setListenOpts(fd, fam); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, udpBuffer) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, udpBuffer)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, udpBuffer) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, udpBuffer)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// udpBuffer is the buffer size asked for on a UDP listen socket.
const udpBuffer = 4 << 20

// setListenOpts turns on what every listen socket has (SO_REUSEADDR,
// SO_REUSEPORT, IPV6_V6ONLY on IPv6) and the extra options (level, name).
func setListenOpts(fd, fam int, extra ...[2]int) error {
	opts := append([][2]int{{unix.SOL_SOCKET, unix.SO_REUSEADDR}, {unix.SOL_SOCKET, unix.SO_REUSEPORT}}, extra...)
	if fam == unix.AF_INET6 {
		opts = append(opts, [2]int{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY})
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o[0], o[1], 1); err != nil {
			return err
		}
	}
	return nil
}
