package worker

import (
	"fmt"
	"net/netip"

	"g6/balance"
	"g6/conf"
	"g6/shared"

	"golang.org/x/sys/unix"
)

// rule is a balancing rule as one worker runs it.
type rule struct {
	id      string
	slot    *shared.RuleSlot
	clients []client
	servers []*server
	sel     balance.Selector
	view    ruleView
}

// server is one backend of a rule, with its slot in the shared region.
type server struct {
	addr      netip.AddrPort
	text      string
	family    int
	rsa       unix.RawSockaddrAny
	rsaLen    uint32
	slot      *shared.ServerSlot
	maxConns  int64
	heartbeat bool
	weight    int
	key       uint64
	proxy     string // PROXY protocol version, "" for none
}

// client is a client pattern with its limits and shared slot.
type client struct {
	pattern conf.Pattern
	slot    int
	limits  shared.Limits
	limited bool
}

// ruleView is a rule's servers as the balancer sees them (balance.View).
type ruleView struct {
	servers []*server
}

func (v *ruleView) Len() int           { return len(v.servers) }
func (v *ruleView) Active(i int) int64 { return v.servers[i].slot.Active.Load() }
func (v *ruleView) Weight(i int) int   { return v.servers[i].weight }
func (v *ruleView) RT(i int) int64     { return v.servers[i].slot.RTAvg.Load() }
func (v *ruleView) Key(i int) uint64   { return v.servers[i].key }

func buildRule(cr *conf.Rule, region *shared.Region, ruleSlot int, serverSlots, clientSlots []int) (*rule, error) {
	r := &rule{id: cr.ID, slot: region.Rule(ruleSlot)}
	for i, c := range cr.Clients {
		l := shared.Limits{MaxConnections: c.MaxConnections, MaxIP: c.MaxIP, MaxConnectionsPerIP: c.MaxConnectionsPerIP}
		r.clients = append(r.clients, client{pattern: c.Pattern, slot: clientSlots[i], limits: l,
			limited: l != shared.Limits{}})
	}
	for i, cs := range cr.Servers {
		ap, err := conf.ParseHostPort(cs.Address)
		if err != nil {
			return nil, fmt.Errorf("worker: rule %q: %w", cr.ID, err)
		}
		ip := ap.Addr().AsSlice()
		rsa, rsaLen := rawSockaddr(family(ap), ip, ap.Port())
		r.servers = append(r.servers, &server{
			addr: ap, text: cs.Address, family: family(ap), rsa: rsa, rsaLen: rsaLen,
			slot: region.Server(serverSlots[i]), maxConns: cs.MaxConnections,
			heartbeat: cs.Heartbeat > 0, weight: max(cs.Weight, 1), key: balance.KeyOf(ap.String()),
			proxy: cs.ProxyProtocol,
		})
	}
	r.view = ruleView{servers: r.servers}
	sel, err := balance.New(cr.Algorithm, &region.Rule(ruleSlot).Cursor)
	if err != nil {
		return nil, fmt.Errorf("worker: rule %q: %w", cr.ID, err)
	}
	r.sel = sel
	return r, nil
}

func family(ap netip.AddrPort) int {
	if ap.Addr().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// match returns the first client entry matching the peer, or nil.
func (r *rule) match(ip, port []byte) *client {
	for i := range r.clients {
		if r.clients[i].pattern.Match(ip, port) {
			return &r.clients[i]
		}
	}
	return nil
}
