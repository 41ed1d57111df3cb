package resolve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Address is one address a name or service yields.
type Address struct {
	Addr     netip.AddrPort
	Priority uint16 // SRV only; 0 for A/AAAA
	Weight   uint16 // SRV only
	TTL      time.Duration
}

// ErrNXDomain says the name does not exist.
var ErrNXDomain = errors.New("no such name")

// Resolver queries a fixed list of DNS servers ("IP:PORT").
type Resolver struct {
	Servers []string
	Timeout time.Duration // per query and server; 0 = 2 s
}

// PartialError is returned with the addresses of a name when some of its
// queries failed and others answered with addresses: a server that answers
// A but refuses AAAA (or times out on it) does not make the name fail.
type PartialError struct {
	Failed []string // each failed query's error
}

func (e *PartialError) Error() string {
	return strings.Join(e.Failed, "; ") + " (the other answers are used)"
}

// partial adds err, a PartialError or not, to *p.
func partial(p **PartialError, err error) {
	if *p == nil {
		*p = &PartialError{}
	}
	var pe *PartialError
	if errors.As(err, &pe) {
		(*p).Failed = append((*p).Failed, pe.Failed...)
		return
	}
	(*p).Failed = append((*p).Failed, err.Error())
}

// Host returns every A and AAAA address of name, each with port. If one
// type's query fails and the other's yields addresses, those come back
// with a *PartialError; NXDOMAIN for either is the name's end.
func (r *Resolver) Host(ctx context.Context, name string, port uint16) ([]Address, error) {
	var out []Address
	var failed *PartialError
	var first error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		msg, err := r.query(ctx, name, t)
		if errors.Is(err, ErrNXDomain) {
			return nil, err
		}
		if err != nil {
			first = cmp.Or(first, err)
			partial(&failed, err)
			continue
		}
		out = append(out, addresses(msg.Answer, name, port)...)
	}
	sortAddrs(out)
	switch {
	case failed == nil:
		return out, nil
	case len(out) == 0:
		return nil, first
	}
	return out, failed
}

// Service returns the addresses of every target of the SRV records of
// name, with each record's port, priority and weight.
func (r *Resolver) Service(ctx context.Context, name string) ([]Address, error) {
	msg, err := r.query(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	var out []Address
	var failed *PartialError
	for _, rr := range msg.Answer {
		srv, ok := rr.(*dns.SRV)
		if !ok {
			continue
		}
		ttl := time.Duration(srv.Hdr.Ttl) * time.Second
		addrs := addresses(msg.Extra, srv.Target, srv.Port)
		if len(addrs) == 0 {
			var pe *PartialError
			if addrs, err = r.Host(ctx, srv.Target, srv.Port); errors.As(err, &pe) {
				partial(&failed, fmt.Errorf("target %s: %w", srv.Target, err))
			} else if err != nil {
				return nil, fmt.Errorf("resolve: %s: target %s: %w", name, srv.Target, err)
			}
		}
		for _, a := range addrs {
			a.Priority, a.Weight, a.TTL = srv.Priority, srv.Weight, min(a.TTL, ttl)
			out = append(out, a)
		}
	}
	sortAddrs(out)
	if failed != nil {
		return out, failed
	}
	return out, nil
}

// addresses picks the A/AAAA records of name out of rrs.
func addresses(rrs []dns.RR, name string, port uint16) []Address {
	var out []Address
	for _, rr := range rrs {
		if !strings.EqualFold(rr.Header().Name, dns.Fqdn(name)) {
			continue
		}
		ttl := time.Duration(rr.Header().Ttl) * time.Second
		switch v := rr.(type) {
		case *dns.A:
			if ip, ok := netip.AddrFromSlice(v.A.To4()); ok {
				out = append(out, Address{Addr: netip.AddrPortFrom(ip, port), TTL: ttl})
			}
		case *dns.AAAA:
			if ip, ok := netip.AddrFromSlice(v.AAAA); ok {
				out = append(out, Address{Addr: netip.AddrPortFrom(ip.Unmap(), port), TTL: ttl})
			}
		}
	}
	return out
}

func sortAddrs(a []Address) {
	sort.Slice(a, func(i, j int) bool { return a[i].Addr.Compare(a[j].Addr) < 0 })
}

// query asks each server in turn until one answers (NOERROR or NXDOMAIN).
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	var last error = errors.New("no DNS server configured")
	for _, srv := range r.Servers {
		msg, err := exchange(ctx, m, srv, timeout)
		switch {
		case err != nil:
			last = fmt.Errorf("%s: %w", srv, err)
			continue
		case msg.Rcode == dns.RcodeNameError:
			return nil, fmt.Errorf("resolve: %s: %w", name, ErrNXDomain)
		case msg.Rcode != dns.RcodeSuccess:
			last = fmt.Errorf("%s: %s", srv, dns.RcodeToString[msg.Rcode])
			continue
		}
		return msg, nil
	}
	return nil, fmt.Errorf("resolve: %s %s: %w", name, dns.TypeToString[qtype], last)
}

// exchange is one query over UDP, again over TCP if truncated.
func exchange(ctx context.Context, m *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: timeout}
	msg, _, err := c.ExchangeContext(ctx, m, server)
	if err == nil && msg.Truncated {
		c.Net = "tcp"
		msg, _, err = c.ExchangeContext(ctx, m, server)
	}
	return msg, err
}
