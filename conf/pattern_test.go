package conf

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// TestPatternMatch: globs and CIDRs against peers as the worker formats
// them (IPv4 unmapped).
func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern, peer string
		want          bool
	}{
		{"*:*", "192.0.2.1:5", true},
		{"10.0.0.*:*", "10.0.0.7:80", true},
		{"10.0.0.*:*", "10.0.1.7:80", false},
		{"10.0.0.0/8:*", "10.200.3.4:1", true},
		{"10.0.0.0/8:*", "11.0.0.1:1", false},
		{"10.1.2.3/8:*", "10.9.9.9:1", true}, // masked
		{"10.0.0.0/8:80", "10.0.0.1:80", true},
		{"10.0.0.0/8:80", "10.0.0.1:81", false},
		{"10.0.0.0/8:8?", "10.0.0.1:81", true},
		{"127.0.0.1/32:*", "127.0.0.1:9", true},
		{"127.0.0.1/32:*", "127.0.0.2:9", false},
		{"[2001:db8::/32]:*", "[2001:db8:1::5]:443", true},
		{"[2001:db8::/32]:*", "[2001:db9::5]:443", false},
		{"[::ffff:10.0.0.0/104]:*", "10.1.1.1:1", true}, // mapped: as IPv4
		{"0.0.0.0/0:*", "203.0.113.9:1", true},
		{"0.0.0.0/0:*", "[::1]:1", false},
		{"[::/0]:*", "[::1]:1", true},
		{"[::1]:*", "[::1]:1", true},
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.pattern)
		if err != nil {
			t.Errorf("%s: %v", tt.pattern, err)
			continue
		}
		ap := netip.MustParseAddrPort(tt.peer)
		addr := ap.Addr().Unmap()
		if got := p.Match(addr, []byte(addr.String()), []byte(strconv.Itoa(int(ap.Port())))); got != tt.want {
			t.Errorf("%s against %s: %t, want %t", tt.pattern, tt.peer, got, tt.want)
		}
	}
}

func TestPatternErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.0.0.0/33:*", `"10.0.0.0/33" is not a CIDR`},
		{"10.0.0.*/8:*", `"10.0.0.*/8" is not a CIDR`},
		{"[2001:db8::/129]:*", "is not a CIDR"},
		{"2001:db8::/32:*", "IPv6 patterns must be bracketed"},
		{"[::ffff:0:0/64]:*", "needs at least /96"},
		{"10.0.0.0/8:x", `unexpected "x" in port part`},
		{"10.0.0.0/8", "want IP:PORT"},
	}
	for _, tt := range tests {
		if _, err := ParsePattern(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestDenyEntry(t *testing.T) {
	src := strings.Replace(minimal, `clients = ["*:*"]`, `clients = [{ pattern = "10.0.0.66:*", deny = true }, "10.0.0.0/8:*", { pattern = "[2001:db8::/32]:*", max_connections = 5 }]`, 1)
	cfg, err := ParseTOML("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	cs := cfg.Rules[0].Clients
	if len(cs) != 3 || !cs[0].Deny || cs[1].Deny || cs[1].Pattern.Prefix.String() != "10.0.0.0/8" || cs[2].MaxConnections != 5 {
		t.Fatalf("clients %+v", cs)
	}
	bad := strings.Replace(minimal, `clients = ["*:*"]`, `clients = [{ pattern = "10.0.0.66:*", deny = "yes" }]`, 1)
	if _, err := ParseTOML("t.toml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "t.toml:5: rule.clients: deny must be true or false") {
		t.Fatalf("deny = \"yes\": %v", err)
	}
}

// FuzzPattern: a pattern that parses matches what it says: a CIDR pattern
// contains its own network address, and matching never panics.
func FuzzPattern(f *testing.F) {
	for _, s := range []string{"*:*", "10.0.0.0/8:*", "[2001:db8::/32]:8?", "10.0.0.*:80", "[::ffff:1.2.3.4/120]:*"} {
		f.Add(s, "10.1.2.3", uint16(80))
	}
	f.Fuzz(func(t *testing.T, s, ip string, port uint16) {
		p, err := ParsePattern(s)
		if err != nil {
			return
		}
		if p.Prefix.IsValid() && (p.Prefix != p.Prefix.Masked() || p.Prefix.Addr().Is4In6()) {
			t.Fatalf("%q: prefix %v", s, p.Prefix)
		}
		if p.Prefix.IsValid() && p.Port == "*" && !p.Match(p.Prefix.Addr(), []byte(p.Prefix.Addr().String()), []byte("1")) {
			t.Fatalf("%q does not match its own network %v", s, p.Prefix.Addr())
		}
		addr, _ := netip.ParseAddr(ip)
		p.Match(addr, []byte(ip), []byte(strconv.Itoa(int(port))))
	})
}
