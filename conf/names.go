package conf

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Name is a server entry written as a DNS name: every A and AAAA address
// of Host with Port, or (SRV) every address of every target of the SRV
// records of Host, with each record's port, weight and priority. The
// master resolves it; the servers it yields are Server values with From
// set to Entry.
type Name struct {
	Entry string // as written: "db.internal:5432" or "_postgres._tcp.db.internal"
	Host  string
	Port  uint16 // 0 for SRV
	SRV   bool
	// At is the entry's place among the rule's servers: its addresses come
	// right before Servers[At] (MS takes the first server as master).
	At     int
	Server Server // the entry's options; Address empty
	// WeightSet says the entry (or server_defaults) wrote a weight, which
	// then overrides an SRV record's.
	WeightSet bool
}

// Resolver defaults and bounds.
const (
	DefaultResolveInterval = Duration(5 * time.Second)
	DefaultResolveHold     = Duration(30 * time.Second)
	MinResolveInterval     = Duration(time.Second)
)

// nameEstimate is how many addresses ServerSlots' default counts a name
// entry as.
const nameEstimate = 16

// ParseNameEntry splits "HOST:PORT", HOST a DNS name (not an address), and
// checks both.
func ParseNameEntry(s string) (host string, port uint16, err error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("server %q is neither IP:PORT nor NAME:PORT", s)
	}
	host, ps := s[:i], s[i+1:]
	if port, err = parsePort(ps); err != nil {
		return "", 0, fmt.Errorf("server %q: port must be 1-65535 in plain decimal", s)
	}
	if err := CheckHostname(host); err != nil {
		return "", 0, fmt.Errorf("server %q: %w", s, err)
	}
	return host, port, nil
}

// CheckHostname checks a name by RFC 1123: dot-separated labels of 1-63
// letters, digits and hyphens, not starting or ending with a hyphen, 253
// characters at most (a trailing dot allowed), and not all digits (that is
// a mistyped address).
func CheckHostname(name string) error {
	if err := checkLabels(name, 0); err != nil {
		return err
	}
	if _, err := netip.ParseAddr(name); err == nil || strings.Trim(name, "0123456789.") == "" {
		return fmt.Errorf("%q is an address, not a name (write IP:PORT)", name)
	}
	return nil
}

// CheckSRVName checks an SRV entry: _service._tcp. and a hostname. g6
// balances TCP, so the protocol label must be _tcp.
func CheckSRVName(name string) error {
	parts := strings.SplitN(name, ".", 3)
	if len(parts) < 3 || len(parts[0]) < 2 || parts[0][0] != '_' || !strings.EqualFold(parts[1], "_tcp") {
		return fmt.Errorf("srv %q must be _SERVICE._tcp.NAME", name)
	}
	if err := checkLabels(parts[0][1:], 0); err != nil {
		return fmt.Errorf("srv %q: service: %w", name, err)
	}
	if err := checkLabels(parts[2], len(parts[0])+len(parts[1])+2); err != nil {
		return fmt.Errorf("srv %q: %w", name, err)
	}
	return nil
}

// checkLabels checks name's labels; prefix is how many characters come
// before it in the full name.
func checkLabels(name string, prefix int) error {
	trimmed := strings.TrimSuffix(name, ".")
	switch {
	case trimmed == "":
		return fmt.Errorf("empty name")
	case prefix+len(trimmed) > 253:
		return fmt.Errorf("name longer than 253 characters")
	}
	for _, l := range strings.Split(trimmed, ".") {
		switch {
		case l == "":
			return fmt.Errorf("%q has an empty label", name)
		case len(l) > 63:
			return fmt.Errorf("%q has a label longer than 63 characters", name)
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Errorf("%q: a label may not start or end with '-'", name)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q: %q is not a letter, digit or '-'", name, c)
			}
		}
	}
	return nil
}

// isNameEntry reports whether a server entry names a host rather than an
// address: its host part has a letter and is no IPv6 literal. Anything
// else stays an address, so a mistyped one keeps the address error.
func isNameEntry(s string) bool {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return false
	}
	host := s[:i]
	return !strings.ContainsAny(host, "[]:") && strings.IndexFunc(host, isLetter) >= 0
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }

// ParseResolver reads a resolvers entry: IP:PORT, or an IP for port 53.
func ParseResolver(s string) (netip.AddrPort, error) {
	if ip, err := parseIP(s); err == nil {
		return netip.AddrPortFrom(ip, 53), nil
	}
	ap, err := ParseHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolver %q is not IP or IP:PORT", s)
	}
	return ap, nil
}

// Name returns the rule's name entry written entry, or nil.
func (r *Rule) Name(entry string) *Name {
	for i := range r.Names {
		if r.Names[i].Entry == entry {
			return &r.Names[i]
		}
	}
	return nil
}

// HasNameEntry reports whether some rule has the name entry written entry.
func (c *Config) HasNameEntry(entry string) bool {
	for i := range c.Rules {
		if c.Rules[i].Name(entry) != nil {
			return true
		}
	}
	return false
}

// NameEntries lists every name entry of the config once, in order.
func (c *Config) NameEntries() []Name {
	var out []Name
	seen := map[string]bool{}
	for _, r := range c.Rules {
		for _, n := range r.Names {
			if !seen[n.Entry] {
				seen[n.Entry] = true
				out = append(out, n)
			}
		}
	}
	return out
}
