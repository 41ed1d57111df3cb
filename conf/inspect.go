package conf

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"g6/inspect"
)

// DefaultInspectTimeout bounds each look before routing (the PROXY
// header, then the ClientHello) when inspect_timeout is left out.
const DefaultInspectTimeout = Duration(5 * time.Second)

// CheckSNI checks one entry of a rule's sni list: a hostname, or "*."
// and a hostname, the star standing for exactly one label
// (inspect.MatchSNI matches them).
func CheckSNI(p string) error {
	name, wild := strings.CutPrefix(p, "*.")
	if strings.Contains(name, "*") {
		return fmt.Errorf("sni %q: only a leading \"*.\" may be a wildcard", p)
	}
	if strings.HasSuffix(name, ".") {
		return fmt.Errorf("sni %q: a TLS server name has no trailing dot", p)
	}
	if err := CheckHostname(name); err != nil {
		return fmt.Errorf("sni %q: %w", p, err)
	}
	if wild && !strings.Contains(name, ".") {
		return fmt.Errorf("sni %q: a wildcard needs at least two labels after it", p)
	}
	return nil
}

// checkALPN checks an alpn entry: a protocol id of 1-255 bytes (RFC 7301).
func checkALPN(p string) error {
	if len(p) == 0 || len(p) > 255 {
		return fmt.Errorf("alpn %q: a protocol id is 1-255 bytes", p)
	}
	return nil
}

// checkAcceptProxy checks an accept_proxy value ("" = off).
func checkAcceptProxy(v string) error {
	switch v {
	case "", inspect.AcceptV1, inspect.AcceptV2, inspect.AcceptAny:
		return nil
	}
	return fmt.Errorf("accept_proxy must be %q, %q or %q, not %q", inspect.AcceptV1, inspect.AcceptV2, inspect.AcceptAny, v)
}

// ParseSource reads a proxy_sources entry: a CIDR, or one IP (a /32 or
// /128). IPv4-mapped IPv6 is taken as IPv4, as peers are.
func ParseSource(s string) (netip.Prefix, error) {
	if ip, err := parseIP(s); err == nil {
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	if !strings.Contains(s, "/") {
		return netip.Prefix{}, fmt.Errorf("proxy_sources entry %q is not a CIDR or an IP", s)
	}
	p, err := parseCIDR(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("proxy_sources entry: %w", err)
	}
	return p, nil
}

// ParseSources parses a checked proxy_sources list.
func ParseSources(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := ParseSource(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// sameSocket reports whether two entries of one address agree on what is
// done with its connections before a rule is chosen: they share a socket.
func sameSocket(a, b Listen) bool {
	return a.InspectTimeout == b.InspectTimeout && a.AcceptProxy == b.AcceptProxy &&
		strings.Join(a.ProxySources, " ") == strings.Join(b.ProxySources, " ") &&
		a.Keepalive == b.Keepalive && a.QuickAck == b.QuickAck && reflect.DeepEqual(a.TLS, b.TLS)
}
