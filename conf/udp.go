package conf

import (
	"fmt"
	"slices"
)

// Protocols a rule carries.
const (
	ProtocolTCP = "tcp"
	ProtocolUDP = "udp"
)

// UDP sessions (issue #36, work in progress: the worker does not carry
// them yet, and the master refuses a config with a UDP rule).
const (
	// DefaultUDPTimeout is a UDP session's idle time when its listen
	// entry sets none: a datagram service has no FIN to end a session.
	DefaultUDPTimeout = Duration(30e9)
	// DefaultMaxSessions bounds a worker's UDP session table.
	DefaultMaxSessions = 100_000
)

// protocol checks a rule's protocol and, on a UDP rule, that no key only
// TCP has a meaning for is set.
func (v *validator) protocol(owner string, i int, r *Rule) {
	switch r.Protocol {
	case ProtocolTCP:
		if r.Responses != 0 || slices.ContainsFunc(r.Listen, func(l Listen) bool { return l.Responses != 0 }) {
			v.errs.add(v.file, v.line("rule", i, "responses"), "%s: responses is for UDP; this rule is protocol = \"tcp\"", owner)
		}
		return
	case ProtocolUDP:
	default:
		v.errs.add(v.file, v.line("rule", i, "protocol"), "%s: protocol must be %q or %q, not %q", owner, ProtocolTCP, ProtocolUDP, r.Protocol)
		return
	}
	for _, key := range r.tcpOnlyKeys() {
		v.errs.add(v.file, r.Line, "%s: %s is for TCP; this rule is protocol = \"udp\"", owner, key)
	}
	if hc := r.HealthCheck; hc != nil && hc.Type != CheckTCP && hc.Type != CheckDNS {
		v.errs.add(v.file, v.line("rule", i, "health_check"), "%s: a UDP rule's health_check is type \"tcp\" (send and expect a datagram) or \"dns\", not %q", owner, hc.Type)
	}
	if r.Responses < 0 {
		v.errs.add(v.file, v.line("rule", i, "responses"), "%s: responses must be 0 or more", owner)
	}
}

// tcpOnlyKeys lists the keys set on r (its listen entries, its servers)
// that only TCP has a meaning for.
func (r *Rule) tcpOnlyKeys() []string {
	var out []string
	add := func(key string, set bool) {
		if set {
			out = append(out, key)
		}
	}
	add("sni", len(r.SNI) > 0)
	add("alpn", len(r.ALPN) > 0)
	for _, l := range r.Listen {
		add(fmt.Sprintf("listen %s: tls", l.Address), l.TLS != nil)
		add(fmt.Sprintf("listen %s: accept_proxy", l.Address), l.AcceptProxy != "")
		add(fmt.Sprintf("listen %s: keepalive", l.Address), l.Keepalive != Keepalive{})
		add(fmt.Sprintf("listen %s: quickack", l.Address), l.QuickAck)
	}
	for _, s := range append(r.Servers, r.ServerDefaults) {
		label := "server " + s.Address
		if s.Address == "" {
			label = "server_defaults"
		}
		add(label+": tls", s.TLS != nil)
		add(label+": proxy_protocol", s.ProxyProtocol != "")
		add(label+": keepalive", s.Keepalive != Keepalive{})
		add(label+": quickack", s.QuickAck)
	}
	return out
}
