package worker

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"strings"

	"g6/conf"
	"g6/inspect"
)

// inspector is how an inspected listen address (accept_proxy, or a rule
// with sni) reads a connection and picks its rule. Addresses without one
// take the fast path: the listener's one rule, nothing read first.
type inspector struct {
	routes   []route // the rules with sni, in config order
	fallback *route  // the rule without sni; nil if none
	// owner counts what is refused before a rule took it: the fallback,
	// else the first rule listening here (shared.RuleSlot.InspectRefusals).
	owner   *rule
	timeout int64  // inspect_timeout, ns, for each of the two looks
	accept  string // accept_proxy; "" = no PROXY header is read
	sources []netip.Prefix
	hello   bool // some rule routes by sni: read a ClientHello
}

// route is one rule listening on an inspected address.
type route struct {
	rule    *rule
	timeout int64 // the idle timeout of the rule's listen entry
	sni     []string
	alpn    []string
}

// listenUse is one rule's entry for a listen address.
type listenUse struct {
	rule *rule
	cr   *conf.Rule
	l    conf.Listen
}

// newListener builds the listener template of one address from the rules
// listening there (validated: one rule, or rules told apart by sni). tlsc
// is its TLS configuration (nil: plain); a TLS address is inspected: its
// ClientHello picks the rule and goes to the handshake.
func newListener(uses []listenUse, tlsc *tls.Config) (listener, error) {
	first := uses[0]
	ln := listener{addr: first.l.Address, rule: first.rule, timeout: int64(first.l.Timeout), opts: listenSockopts(first.l)}
	inspected := first.l.AcceptProxy != "" || tlsc != nil
	for _, u := range uses {
		inspected = inspected || len(u.cr.SNI) > 0
	}
	if tlsc != nil {
		ln.tls, ln.tlsLimit = tlsc, int64(first.l.TLS.HandshakeTimeout)
	}
	if !inspected {
		return ln, nil
	}
	lk := &inspector{timeout: int64(first.l.InspectTimeout), accept: first.l.AcceptProxy, owner: first.rule}
	if lk.timeout <= 0 {
		lk.timeout = int64(conf.DefaultInspectTimeout)
	}
	var err error
	if lk.sources, err = conf.ParseSources(first.l.ProxySources); err != nil {
		return listener{}, fmt.Errorf("worker: listen %s: %w", ln.addr, err)
	}
	for _, u := range uses {
		rt := route{rule: u.rule, timeout: int64(u.l.Timeout), sni: u.cr.SNI, alpn: u.cr.ALPN}
		if len(rt.sni) == 0 {
			lk.fallback, lk.owner = &rt, u.rule
			continue
		}
		lk.routes = append(lk.routes, rt)
		lk.hello = true
	}
	lk.hello = lk.hello || tlsc != nil
	ln.rule, ln.inspector = lk.owner, lk
	return ln, nil
}

// trusted reports whether ip may send a PROXY header.
func (lk *inspector) trusted(ip netip.Addr) bool {
	for _, p := range lk.sources {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// choose picks the rule for a ClientHello: the first rule with an exact
// sni entry for its name, then the first with a matching wildcard, each
// only if its alpn (if any) meets the offer; else the fallback (nil if
// there is none).
func (lk *inspector) choose(h *inspect.Hello) *route {
	if h.SNI == "" {
		return lk.fallback
	}
	for _, wild := range []bool{false, true} {
		for i := range lk.routes {
			if rt := &lk.routes[i]; rt.names(h.SNI, wild) && rt.offered(h.ALPN) {
				return rt
			}
		}
	}
	return lk.fallback
}

// names reports whether one of the route's exact (or, wild, wildcard)
// sni entries matches name.
func (rt *route) names(name string, wild bool) bool {
	for _, p := range rt.sni {
		if strings.HasPrefix(p, "*.") == wild && inspect.MatchSNI(p, name) {
			return true
		}
	}
	return false
}

// offered reports whether the client offered a protocol of the route's
// alpn list (always, without one).
func (rt *route) offered(offer []string) bool {
	if len(rt.alpn) == 0 {
		return true
	}
	for _, p := range offer {
		for _, want := range rt.alpn {
			if p == want {
				return true
			}
		}
	}
	return false
}
