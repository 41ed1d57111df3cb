package worker

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"sync/atomic"

	"g6/balance"
	"g6/conf"
	"g6/shared"

	"golang.org/x/sys/unix"
)

// rule is a balancing rule as one worker runs it. Its servers are the
// shared region's members of the rule, read again whenever the rule slot's
// Members counter moves (refresh).
type rule struct {
	id      string
	slotIdx int
	slot    *shared.RuleSlot
	clients []client
	total   *client   // max_connections of the rule, all clients together; nil = none
	servers []*server // primaries in Order, then backups in Order
	primary ruleView  // servers[:n]
	backup  ruleView  // servers[n:]
	members uint64    // the Members value servers was read at
	ramping bool      // some server has a slow start
	sel     balance.Selector
	// backupSel orders the backups on a cursor of this worker's own, so
	// that trying the backups does not move the rule's shared cursor.
	backupSel    balance.Selector
	backupCursor atomic.Uint64
	tier         ruleView               // a session's backups, viewed without allocating
	scratch      []int                  // backup order, before it is appended to a session's order
	demoted      []int                  // slow start: servers passed over this time
	origin       map[uint64]*tls.Config // the config's server TLS settings, by profile
}

// server is one backend of a rule, with its slot in the shared region. Its
// weight and limit are read from the slot at every selection.
type server struct {
	addr    netip.AddrPort
	text    string
	family  int
	rsa     unix.RawSockaddrAny
	rsaLen  uint32
	slotIdx int
	slot    *shared.ServerSlot
	key     uint64
	proxy   string // PROXY protocol version, "" for none
	opts    sockopts
	sources []source // bound to before connecting, in turn; none = the kernel's choice
	next    int      // this worker's turn among sources
	// transparent: connect from the client's address (IP_TRANSPARENT).
	transparent bool
	// tls: g6 speaks TLS to the server (originate.go); tlsUnknown: its
	// slot names settings this worker's config does not have (a newer
	// generation's, seen in the moment before this one stops accepting):
	// the server is passed over.
	tls        *tls.Config
	tlsUnknown bool
}

// source is a source address in the kernel's form, port 0.
type source struct {
	rsa unix.RawSockaddrAny
	len uint32
}

// nextSource returns the source for the server's next connection, or nil.
func (srv *server) nextSource() *source {
	if len(srv.sources) == 0 {
		return nil
	}
	src := &srv.sources[srv.next%len(srv.sources)]
	srv.next++
	return src
}

// client is a client pattern with its limits and shared slot.
type client struct {
	pattern conf.Pattern
	slot    int
	limits  shared.Limits
	limited bool
	deny    bool
	rated   bool        // max_rate or max_rate_total
	perIP   shared.Rate // max_rate
	total   shared.Rate // max_rate_total
}

// gcra is a conf.Rate as the shared buckets take it.
func gcra(r conf.Rate) shared.Rate {
	if !r.On() {
		return shared.Rate{}
	}
	return shared.Rate{Interval: r.Interval(), Tolerance: (r.Burst() - 1) * r.Interval()}
}

// ruleView is a tier of a rule's servers as the balancer sees them
// (balance.View).
type ruleView struct {
	servers []*server
}

func (v *ruleView) Len() int           { return len(v.servers) }
func (v *ruleView) Active(i int) int64 { return v.servers[i].slot.Active.Load() }
func (v *ruleView) Weight(i int) int   { return int(v.servers[i].slot.Weight.Load()) }
func (v *ruleView) RT(i int) int64     { return v.servers[i].slot.RTAvg.Load() }
func (v *ruleView) Key(i int) uint64   { return v.servers[i].key }

func buildRule(cr *conf.Rule, region *shared.Region, ruleSlot int, clientSlots []int, origin map[uint64]*tls.Config) (*rule, error) {
	r := &rule{id: cr.ID, slotIdx: ruleSlot, slot: region.Rule(ruleSlot), members: ^uint64(0), origin: origin}
	for i, c := range cr.Clients {
		l := shared.Limits{MaxConnections: c.MaxConnections, MaxIP: c.MaxIP, MaxConnectionsPerIP: c.MaxConnectionsPerIP}
		r.clients = append(r.clients, client{pattern: c.Pattern, slot: clientSlots[i], limits: l,
			limited: l != shared.Limits{} && !c.Deny, deny: c.Deny,
			rated: (c.MaxRate.On() || c.MaxRateTotal.On()) && !c.Deny, perIP: gcra(c.MaxRate), total: gcra(c.MaxRateTotal)})
	}
	if cr.MaxConnections > 0 {
		r.total = &client{slot: clientSlots[len(cr.Clients)], limits: shared.Limits{MaxConnections: cr.MaxConnections}, limited: true}
	}
	sel, err := balance.New(cr.Algorithm, &r.slot.Cursor, cr.HashBalanceFactor)
	if err != nil {
		return nil, fmt.Errorf("worker: rule %q: %w", cr.ID, err)
	}
	r.sel = sel
	if r.backupSel, err = balance.New(cr.Algorithm, &r.backupCursor, cr.HashBalanceFactor); err != nil {
		return nil, err
	}
	r.refresh(region)
	return r, nil
}

// refresh reads the rule's servers from the region if the master changed
// them. It allocates, but only after a change.
func (r *rule) refresh(region *shared.Region) {
	v := r.slot.Members.Load()
	if v == r.members {
		return
	}
	r.members = v
	want := int64(r.slotIdx + 1)
	var list []*server
	ramping := false
	for i := 0; i < region.NumServers(); i++ {
		sl := region.Server(i)
		if sl.Member.Load() != want {
			continue
		}
		list = append(list, newServer(i, sl, r.origin))
		ramping = ramping || sl.SlowStart.Load() > 0
	}
	sort.SliceStable(list, func(a, b int) bool {
		ba, bb := list[a].slot.Settings.Load()&shared.SetBackup, list[b].slot.Settings.Load()&shared.SetBackup
		if ba != bb {
			return ba < bb
		}
		return list[a].slot.Order.Load() < list[b].slot.Order.Load()
	})
	n := 0
	for n < len(list) && list[n].slot.Settings.Load()&shared.SetBackup == 0 {
		n++
	}
	r.servers, r.ramping = list, ramping
	r.primary, r.backup = ruleView{servers: list[:n]}, ruleView{servers: list[n:]}
	if cap(r.scratch) < len(list) {
		r.scratch = make([]int, 0, len(list))
		r.demoted = make([]int, 0, len(list))
	}
}

func newServer(i int, sl *shared.ServerSlot, origin map[uint64]*tls.Config) *server {
	ap := sl.AddrPort()
	rsa, rsaLen := rawSockaddr(family(ap), ap.Addr().AsSlice(), ap.Port())
	srv := &server{addr: ap, text: ap.String(), family: family(ap), rsa: rsa, rsaLen: rsaLen,
		slotIdx: i, slot: sl, key: balance.KeyOf(ap.String()), opts: slotSockopts(sl)}
	for j := range min(int(sl.NSources.Load()), shared.MaxSources) {
		ip := sl.Source(j)
		if family(netip.AddrPortFrom(ip, 0)) != srv.family {
			continue // conf refuses it; a slot read while rewritten might hold it
		}
		rsa, n := rawSockaddr(srv.family, ip.AsSlice(), 0)
		srv.sources = append(srv.sources, source{rsa: rsa, len: n})
	}
	srv.transparent = sl.Settings.Load()&shared.SetTransparent != 0
	switch set := sl.Settings.Load(); {
	case set&shared.SetProxyV1 != 0:
		srv.proxy = "v1"
	case set&shared.SetProxyV2 != 0:
		srv.proxy = "v2"
	}
	if p := sl.TLSProfile.Load(); p != 0 {
		if c := origin[p]; c != nil {
			srv.tls = forServer(c, srv)
		} else {
			srv.tlsUnknown = true
		}
	}
	return srv
}

// order appends to dst[:0] the indexes into r.servers of the primaries to
// try for one connection, in the selector's order; servers in slow start
// are passed over in proportion to how far they have ramped.
func (r *rule) order(now int64, ip []byte, dst []int) []int {
	return r.slowStart(now, r.sel.Order(&r.primary, ip, dst), 0)
}

// backupOrder appends the backups of servers (a session's list, whose
// first nPrimary are primaries) the same way, once no primary took the
// connection.
func (r *rule) backupOrder(now int64, ip []byte, servers []*server, nPrimary int, dst []int) []int {
	r.tier.servers = servers[nPrimary:]
	r.scratch = r.backupSel.Order(&r.tier, ip, r.scratch)
	r.tier.servers = nil
	base := len(dst)
	for _, i := range r.scratch {
		dst = append(dst, i+nPrimary)
	}
	return r.slowStart(now, dst, base)
}

// slowStart moves the servers of dst[from:] that are ramping up behind the
// others, each with a chance of one minus its share.
func (r *rule) slowStart(now int64, dst []int, from int) []int {
	if !r.ramping {
		return dst
	}
	demoted := r.demoted[:0]
	k := from
	for _, i := range dst[from:] {
		if share := r.servers[i].slot.Share(now); share < shared.FullShare && rand.Int64N(shared.FullShare) >= share {
			demoted = append(demoted, i)
			continue
		}
		dst[k] = i
		k++
	}
	copy(dst[k:], demoted)
	r.demoted = demoted
	return dst
}

func family(ap netip.AddrPort) int {
	if ap.Addr().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// match returns the first client entry matching the peer, or nil.
func (r *rule) match(addr netip.Addr, ip, port []byte) *client {
	for i := range r.clients {
		if r.clients[i].pattern.Match(addr, ip, port) {
			return &r.clients[i]
		}
	}
	return nil
}
