package conf

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// MaxSources bounds a server's source addresses (they live in its shared
// slot, which holds shared.MaxSources). With IP_BIND_ADDRESS_NO_PORT each
// source gives a backend its own ~28k ports, so six take one backend past
// 150,000 connections from g6.
const MaxSources = 6

// Sources is a source entry: one IP, or a list of them.
type Sources []string

// UnmarshalTOML takes "10.0.2.1" or ["10.0.2.1", "10.0.2.2"].
func (s *Sources) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		*s = Sources{x}
		return nil
	case []any:
		out := make(Sources, 0, len(x))
		for _, e := range x {
			str, ok := e.(string)
			if !ok {
				return fmt.Errorf("source must be an IP or a list of IPs, not a list holding %T", e)
			}
			out = append(out, str)
		}
		*s = out
		return nil
	}
	return fmt.Errorf("source must be an IP or a list of IPs, not %T", v)
}

// isLocalAddr says whether this host has ip, by binding a socket to it
// (port 0 and IP_BIND_ADDRESS_NO_PORT, so no port is taken): a config
// names a source this host lacks at load, not at the first connection.
func isLocalAddr(ip netip.Addr) error {
	fam, sa := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Addr: ip.As16()})
	if ip.Is4() {
		fam, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: ip.As4()}
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	if err := unix.Bind(fd, sa); err != nil {
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("this host has no address %s", ip)
		}
		return err
	}
	return nil
}

// checkSources checks a server's source addresses: IPs of the server's
// family that this host has, at most MaxSources, none twice.
func checkSources(server netip.AddrPort, sources []string) error {
	if len(sources) > MaxSources {
		return fmt.Errorf("source: at most %d addresses, not %d", MaxSources, len(sources))
	}
	seen := map[netip.Addr]bool{}
	for _, s := range sources {
		ip, err := parseIP(s)
		if err != nil {
			return fmt.Errorf("source %w", err)
		}
		if server.IsValid() && ip.Is4() != server.Addr().Is4() {
			return fmt.Errorf("source %s cannot reach %s: another address family", ip, server)
		}
		if seen[ip] {
			return fmt.Errorf("source %s is listed twice", ip)
		}
		seen[ip] = true
		if err := isLocalAddr(ip); err != nil {
			return fmt.Errorf("source %s: %w", s, err)
		}
	}
	return nil
}

// checkTransparent says whether this process may connect from a client's
// address (IP_TRANSPARENT, which needs CAP_NET_ADMIN or CAP_NET_RAW: the
// kernel takes either), by setting it on a
// socket of the family: refused at load rather than at each connection.
func checkTransparent(v6 bool) error {
	fam, level, opt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_TRANSPARENT
	if v6 {
		fam, level, opt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_TRANSPARENT
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
		return fmt.Errorf("transparent = true needs CAP_NET_ADMIN or CAP_NET_RAW (setting IP_TRANSPARENT: %w); see transparent mode in docs/configuration.md", err)
	}
	return nil
}
