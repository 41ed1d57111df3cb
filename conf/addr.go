package conf

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseHostPort parses a listen or server address: a literal IPv4 or IPv6
// address and a port 1-65535. Hostnames, octal or shorthand IPv4 and ports
// that G6 silently wrapped (G6-BEHAVIOUR B23) are all rejected.
func ParseHostPort(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q is not IP:PORT (IPv6 as [::1]:PORT)", s)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("address %q: port must be 1-65535", s)
	}
	if ap.Addr().Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("address %q: zones are not supported", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// Pattern is a client address pattern "IP:PORT" where either part may use
// the globs "*" (any run, including empty) and "?" (exactly one character).
// IPv6 patterns are bracketed: "[::1]:*", "[fe80::*]:*".
type Pattern struct {
	Text string // as written, shown by admin commands
	IP   string
	Port string
}

// ParsePattern splits and checks a client pattern.
func ParsePattern(s string) (Pattern, error) {
	var ip, port string
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]:")
		if end < 0 {
			return Pattern{}, fmt.Errorf("client pattern %q: want [IPv6]:PORT", s)
		}
		ip, port = s[1:end], s[end+2:]
	} else {
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			return Pattern{}, fmt.Errorf("client pattern %q: want IP:PORT (\"*:*\" for anyone)", s)
		}
		ip, port = s[:i], s[i+1:]
		if strings.Contains(ip, ":") {
			return Pattern{}, fmt.Errorf("client pattern %q: IPv6 patterns must be bracketed", s)
		}
	}
	if ip == "" || port == "" {
		return Pattern{}, fmt.Errorf("client pattern %q: IP and port parts must not be empty", s)
	}
	if bad := strings.TrimLeft(strings.ToLower(ip), "0123456789abcdef.:*?"); bad != "" {
		return Pattern{}, fmt.Errorf("client pattern %q: unexpected %q in IP part", s, bad[:1])
	}
	if bad := strings.TrimLeft(port, "0123456789*?"); bad != "" {
		return Pattern{}, fmt.Errorf("client pattern %q: unexpected %q in port part", s, bad[:1])
	}
	return Pattern{Text: s, IP: strings.ToLower(ip), Port: port}, nil
}

// Match reports whether the textual client IP and port match the pattern.
// The caller formats the peer into byte slices so that matching allocates
// nothing on the accept path.
func (p *Pattern) Match(ip, port []byte) bool {
	return (p.IP == "*" || Glob(p.IP, ip)) && (p.Port == "*" || Glob(p.Port, port))
}

// Glob matches s against pattern with "*" and "?", backtracking correctly
// (G6's matcher failed "*1" against "11", G6-BEHAVIOUR B22). An empty pattern
// matches only an empty subject.
func Glob(pattern string, s []byte) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
