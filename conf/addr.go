package conf

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ParseHostPort parses a listen or server address: a literal IPv4 or IPv6
// address and a port 1-65535 in plain decimal. Hostnames, octal or
// shorthand IPv4, ports with leading zeros and ports that G6 silently
// wrapped (docs/g6-differences.md B23) are all rejected. The admin commands parse
// their IP PORT arguments with ParseIPPort, so both read addresses alike.
func ParseHostPort(s string) (netip.AddrPort, error) {
	notIPPort := fmt.Errorf("address %q is not IP:PORT (IPv6 as [::1]:PORT)", s)
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, notIPPort
	}
	host, port := s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	} else if strings.Contains(host, ":") {
		return netip.AddrPort{}, notIPPort
	}
	ip, err := parseIP(host)
	if err != nil {
		if errors.Is(err, errZone) {
			return netip.AddrPort{}, fmt.Errorf("address %q: %w", s, err)
		}
		return netip.AddrPort{}, notIPPort
	}
	p, err := parsePort(port)
	switch {
	case err == nil:
		return netip.AddrPortFrom(ip, p), nil
	case port == "0":
		return netip.AddrPort{}, fmt.Errorf("address %q: port must be 1-65535", s)
	case len(port) > 1 && port[0] == '0' && strings.Trim(port, "0123456789") == "":
		return netip.AddrPort{}, fmt.Errorf("address %q: port must be written without leading zeros", s)
	}
	return netip.AddrPort{}, notIPPort
}

// ParseIPPort parses an IP address (IPv6 without brackets) and a port
// given apart, as the admin commands take them, by the same rules as
// ParseHostPort.
func ParseIPPort(ip, port string) (netip.AddrPort, error) {
	addr, err := parseIP(ip)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := parsePort(port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(addr, p), nil
}

var errZone = errors.New("zones are not supported")

// parseIP takes a literal address (IPv4-mapped IPv6 becomes IPv4).
func parseIP(s string) (netip.Addr, error) {
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if addr.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q: %w", s, errZone)
	}
	return addr.Unmap(), nil
}

// AddrKey is the one spelling of an address that g6 keys things by (the
// master's sockets, a worker's listeners, shared slots): the IP as
// netip prints it, IPv4-mapped IPv6 unmapped, and the port. Master and workers
// must agree on it or a worker cannot find its sockets. Text that does not
// parse is its own key.
func AddrKey(addr string) string {
	if rest, ok := strings.CutPrefix(addr, udpPrefix); ok {
		return udpPrefix + AddrKey(rest)
	}
	ap, err := ParseHostPort(addr)
	if err != nil {
		return addr
	}
	return ap.String()
}

// udpPrefix marks a UDP listen address in a ListenKey.
const udpPrefix = "udp/"

// ListenKey is the key of a rule's listen address: its AddrKey for TCP,
// prefixed "udp/" for UDP, since a TCP and a UDP socket may share
// IP:PORT. The master's sockets, the addresses a worker is handed and the
// fds a USR2 successor inherits are named by it.
func ListenKey(protocol, addr string) string {
	if protocol == ProtocolUDP {
		return udpPrefix + AddrKey(addr)
	}
	return AddrKey(addr)
}

// SplitListenKey returns a ListenKey's protocol and address.
func SplitListenKey(key string) (protocol, addr string) {
	if rest, ok := strings.CutPrefix(key, udpPrefix); ok {
		return ProtocolUDP, rest
	}
	return ProtocolTCP, key
}

// ServerKey is the shared slot key of a rule's server.
func ServerKey(rule, addr string) string { return rule + " " + AddrKey(addr) }

// ClientKey is the shared slot key of a rule's client pattern.
func ClientKey(rule, pattern string) string { return rule + " " + pattern }

// RuleTotalKey is the client slot key of a rule's max_connections: after
// its patterns', and no pattern can be spelled so.
func RuleTotalKey(rule string) string { return ClientKey(rule, "(all clients)") }

// parsePort takes 1-65535 in plain decimal: no sign, no leading zeros.
func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil || p == 0 || s[0] < '1' || s[0] > '9' {
		return 0, fmt.Errorf("%q is not a port (1-65535, no leading zeros)", s)
	}
	return uint16(p), nil
}

// Pattern is a client address pattern "IP:PORT" where either part may use
// the globs "*" (any run, including empty) and "?" (exactly one character),
// or whose IP part is a CIDR ("10.0.0.0/8:*"). IPv6 patterns are
// bracketed: "[::1]:*", "[fe80::*]:*", "[2001:db8::/32]:*".
type Pattern struct {
	Text   string // as written, shown by admin commands
	IP     string
	Port   string
	Prefix netip.Prefix // the IP part when it is a CIDR; invalid otherwise
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
	if bad := strings.TrimLeft(port, "0123456789*?"); bad != "" {
		return Pattern{}, fmt.Errorf("client pattern %q: unexpected %q in port part", s, bad[:1])
	}
	if strings.Contains(ip, "/") {
		prefix, err := parseCIDR(ip)
		if err != nil {
			return Pattern{}, fmt.Errorf("client pattern %q: %w", s, err)
		}
		return Pattern{Text: s, IP: strings.ToLower(ip), Port: port, Prefix: prefix}, nil
	}
	if bad := strings.TrimLeft(strings.ToLower(ip), "0123456789abcdef.:*?"); bad != "" {
		return Pattern{}, fmt.Errorf("client pattern %q: unexpected %q in IP part", s, bad[:1])
	}
	return Pattern{Text: s, IP: strings.ToLower(ip), Port: port}, nil
}

// parseCIDR reads the CIDR of a pattern or a proxy_sources entry: masked,
// IPv4-mapped IPv6 taken as IPv4 (as peers are), no zone.
func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix needs at least /96", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Match reports whether the client matches the pattern: its address, and
// the same IP and port as text. The caller formats the peer into byte
// slices so that matching allocates nothing on the accept path.
func (p *Pattern) Match(addr netip.Addr, ip, port []byte) bool {
	ipOK := p.IP == "*" || (p.Prefix.IsValid() && p.Prefix.Contains(addr)) || (!p.Prefix.IsValid() && Glob(p.IP, ip))
	return ipOK && (p.Port == "*" || Glob(p.Port, port))
}

// Glob matches s against pattern with "*" and "?", backtracking correctly
// (G6's matcher failed "*1" against "11", docs/g6-differences.md B22). An empty pattern
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
