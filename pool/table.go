package pool

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"g6/conf"
	"g6/shared"
)

// Sources of a server or of one of its values, as show servers prints them.
const (
	SourceConfig = "config"
	SourceAdmin  = "admin" // this node's admin port
	SourceFleet  = "fleet" // another node's, through the fleet store
	SourceDNS    = "dns"   // a name entry's answer
)

// Entry is one effective server of a rule.
type Entry struct {
	Rule         string
	Server       conf.Server // effective values; Address in conf.AddrKey form
	Slot         int
	Origin       string // who put the server in the rule: SourceConfig, SourceAdmin, SourceFleet or SourceDNS
	WeightFrom   string
	MaxConnsFrom string
	Agent        string // the state its agent last said ("" = no agent, or none said)
}

// Table is the master's view of every rule's servers. change serialises
// the changes (runtime commands, the fleet's, answers, publishes); mu
// guards the data and is held only briefly, never across the fleet
// store's round trip (persist), so readers (show, the console, the
// master's snapshot) never wait on the network.
type Table struct {
	change    sync.Mutex
	mu        sync.Mutex
	region    *shared.Region
	cfg       *conf.Config // as loaded: name entries unresolved
	view      *conf.Config // cfg with its name entries' answers in place (expand)
	ruleSlots []int
	state     State
	entries   [][]Entry // by rule, in Order
	gone      []Entry   // removed at runtime; shown while sessions are open
	path      string    // state file, "" = none
	published bool
	restore   bool // apply the overlay's disable and drain deadlines at the first Publish
	// sink, when set, must take every runtime change (the fleet store),
	// or it is undone (commit); an override with nothing in it means
	// "none".
	sink func([]Override) error
	self string // this node's name in the fleet: overrides it makes carry it
	// agents is what each server's agent last said, by conf.ServerKey.
	agents map[string]Agent
}

// changing takes the change lock and the data lock; the returned func
// releases both.
func (t *Table) changing() func() {
	t.change.Lock()
	t.mu.Lock()
	return func() {
		t.mu.Unlock()
		t.change.Unlock()
	}
}

// SetSink makes every later change go through sink first (nil = none);
// node is this node's name, which the changes it makes carry.
func (t *Table) SetSink(sink func([]Override) error, node string) {
	defer t.changing()()
	t.sink, t.self = sink, node
}

// ApplyFleet takes overrides decided elsewhere (the fleet store): with all,
// they are the whole overlay; otherwise each replaces the override of its
// rule and server (an empty one removes it). The servers are published and
// the disable and drain deadlines written into the slots.
func (t *Table) ApplyFleet(list []Override, all bool) error {
	defer t.changing()()
	st := t.state.clone()
	if all {
		st.Overrides = nil
	}
	touched := map[okey]bool{}
	for _, o := range list {
		k := okey{o.Rule, o.Address}
		touched[k] = true
		st.Overrides = slices.DeleteFunc(st.Overrides, func(x Override) bool { return x.Rule == k.rule && x.Address == k.addr })
		if !o.Empty() {
			st.Overrides = append(st.Overrides, o)
		}
	}
	if err := t.publish(t.cfg, t.ruleSlots, st); err != nil {
		return err
	}
	now, wall := shared.Now(), time.Now()
	for _, es := range t.entries {
		for _, e := range es {
			if all || touched[okey{e.Rule, e.Server.Address}] {
				applyMarks(t.region.Server(e.Slot), t.state.find(e.Rule, e.Server.Address), now, wall)
			}
		}
	}
	if t.path != "" {
		return SaveState(t.path, t.state)
	}
	return nil
}

// applyMarks makes a slot's disable and drain those of o (nil: neither).
func applyMarks(sl *shared.ServerSlot, o *Override, now int64, wall time.Time) {
	var disabled, draining int64
	if o != nil {
		disabled, draining = o.Disabled, o.Draining
	}
	if disabled != 0 {
		sl.Disable(wallToMono(disabled, now, wall))
	} else {
		sl.EndDisable(now)
	}
	if draining != 0 {
		sl.Drain(wallToMono(draining, now, wall))
	} else {
		sl.EndDrain(now)
	}
}

// New makes a table over region with a starting overlay. restore says the
// region is new, so the overlay's disable and drain deadlines must be
// written into it.
func New(region *shared.Region, state State, restore bool) *Table {
	state.Version = stateVersion
	return &Table{region: region, state: state, restore: restore}
}

// SetStateFile makes every later change be saved to path ("" = none). A
// path new to the table gets the current overlay at once, so a state_file
// added by a reload holds the changes made before it.
func (t *Table) SetStateFile(path string) error {
	defer t.changing()()
	if path == t.path {
		return nil
	}
	t.path = path
	if path == "" {
		return nil
	}
	return SaveState(path, t.state)
}

// State returns a copy of the overlay (for an upgrade's hand-over).
func (t *Table) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state.clone()
}

// Publish makes cfg's servers, with the overlay on top, the rules'
// servers in the region (ruleSlots: each rule's slot). On an error
// (the region has no free server slot) nothing changed.
func (t *Table) Publish(cfg *conf.Config, ruleSlots []int) error {
	defer t.changing()()
	st := t.state.clone()
	reconcile(&st, expand(cfg, st.Answers))
	return t.publish(cfg, ruleSlots, st)
}

// Entries returns the effective servers by rule and the removed ones
// that still carry sessions.
func (t *Table) Entries() ([][]Entry, []Entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var gone []Entry
	for _, e := range t.gone {
		if t.region.Server(e.Slot).Active.Load() > 0 && t.region.Server(e.Slot).Member.Load() == 0 {
			gone = append(gone, e)
		}
	}
	t.gone = gone
	return t.entries, gone
}

// Current returns the config last published, its name entries resolved,
// and its effective servers.
func (t *Table) Current() (*conf.Config, [][]Entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.view, t.entries
}

// publish writes st's effective servers and, once they are in, makes st
// the table's. The servers that left a rule are kept in gone.
func (t *Table) publish(cfg *conf.Config, ruleSlots []int, st State) error {
	view := expand(cfg, st.Answers)
	entries := effective(view, &st, t.self, t.agents)
	var keys []string
	for i, r := range cfg.Rules {
		for _, e := range entries[i] {
			keys = append(keys, conf.ServerKey(r.ID, e.Server.Address))
		}
	}
	slots, err := t.region.AssignServers(keys)
	if err != nil {
		return fmt.Errorf("pool: %w (the region holds %d server slots: raise max_servers, which takes a restart)", err, t.region.NumServers())
	}
	if len(t.agents) > 0 { // a server that left takes its agent's word with it
		present := make(map[string]bool, len(keys))
		for _, k := range keys {
			present[k] = true
		}
		for k := range t.agents {
			if !present[k] {
				delete(t.agents, k)
			}
		}
	}
	now := shared.Now()
	in := make(map[int]bool, len(slots))
	k := 0
	for i := range cfg.Rules {
		for j := range entries[i] {
			e := &entries[i][j]
			e.Slot = slots[k]
			k++
			in[e.Slot] = true
			var extra int64
			if o := cfg.Rules[i].Outlier; o != nil && o.RetransFactor > 0 {
				extra |= shared.SetTCPInfo
			}
			writeSlot(t.region.Server(e.Slot), e.Server, extra, ruleSlots[i], j, now, t.published)
			writeAgentFlag(t.region.Server(e.Slot), e)
		}
	}
	for i := 0; i < t.region.NumServers(); i++ {
		s := t.region.Server(i)
		if m := s.Member.Load(); m != 0 && !in[i] {
			s.Member.Store(0)
			t.region.Rule(int(m - 1)).Members.Add(1)
		}
	}
	for _, rs := range ruleSlots {
		t.region.Rule(rs).Members.Add(1)
	}
	if t.restore {
		t.restore = false
		restoreStates(t.region, view, entries, &st, now)
	}
	for _, es := range t.entries {
		for _, e := range es {
			if !in[e.Slot] {
				t.gone = slices.DeleteFunc(t.gone, func(g Entry) bool { return g.Slot == e.Slot })
				t.gone = append(t.gone, e)
			}
		}
	}
	t.cfg, t.view, t.ruleSlots, t.state, t.entries, t.published = cfg, view, ruleSlots, st, entries, true
	return nil
}

// writeSlot writes a server's settings (set: the rule's Set* bits), then
// its membership. A server
// that joins the rule after the first publish starts its slow start.
func writeSlot(sl *shared.ServerSlot, s conf.Server, set int64, ruleSlot, order int, now int64, later bool) {
	ap, _ := conf.ParseHostPort(s.Address)
	sl.SetAddr(ap)
	sl.Weight.Store(int64(s.Weight))
	sl.MaxConns.Store(s.MaxConnections)
	sl.Period.Store(int64(s.Heartbeat))
	sl.SlowStart.Store(int64(s.SlowStart))
	sl.IsolateAfter.Store(int64(s.IsolateAfter))
	if s.Backup {
		set |= shared.SetBackup
	}
	switch s.ProxyProtocol {
	case "v1":
		set |= shared.SetProxyV1
	case "v2":
		set |= shared.SetProxyV2
	}
	if s.QuickAck {
		set |= shared.SetQuickAck
	}
	if s.Transparent {
		set |= shared.SetTransparent
	}
	sl.Keepalive.Store(keepaliveOf(s.Keepalive))
	sl.SetSources(sourcesOf(s.Source))
	sl.TLSProfile.Store(s.TLS.Profile())
	sl.Settings.Store(set)
	sl.Order.Store(int64(order))
	if sl.Member.Load() != int64(ruleSlot+1) {
		if later {
			sl.UpSince.Store(now)
		}
		sl.Member.Store(int64(ruleSlot + 1))
	}
}

// restoreStates writes the overlay's disable and drain deadlines into a new
// region (a fresh start with a state file).
func restoreStates(region *shared.Region, cfg *conf.Config, entries [][]Entry, st *State, now int64) {
	wall := time.Now()
	for i, r := range cfg.Rules {
		for _, e := range entries[i] {
			o := st.find(r.ID, e.Server.Address)
			if o == nil {
				continue
			}
			sl := region.Server(e.Slot)
			if o.Disabled != 0 {
				sl.Disable(wallToMono(o.Disabled, now, wall))
			}
			if o.Draining != 0 {
				sl.Drain(wallToMono(o.Draining, now, wall))
			}
		}
	}
}

// reconcile drops the runtime changes the config has overtaken: those to
// a config entry that changed since, and the "added" of a server the
// config now lists.
func reconcile(st *State, cfg *conf.Config) {
	for i := range st.Overrides {
		o := &st.Overrides[i]
		r := findRule(cfg, o.Rule)
		if r == nil {
			continue
		}
		s := findServer(r, o.Address)
		if s == nil {
			if !o.Added {
				o.Removed, o.Weight, o.MaxConns = false, nil, nil
			}
			continue
		}
		if base := entryText(*s); o.Added || o.Base != base {
			o.Added, o.Backup, o.Removed, o.Weight, o.MaxConns, o.Base = false, false, false, nil, nil, base
		}
	}
	st.prune()
}

// effective merges cfg and st: config servers in order (less the removed
// ones, with runtime values), then the added ones in the order they came.
func effective(cfg *conf.Config, st *State, self string, agents map[string]Agent) [][]Entry {
	out := make([][]Entry, len(cfg.Rules))
	for i, r := range cfg.Rules {
		for _, s := range r.Servers {
			s.Address = conf.AddrKey(s.Address)
			e := Entry{Rule: r.ID, Server: s, Origin: SourceConfig, WeightFrom: SourceConfig, MaxConnsFrom: SourceConfig}
			if s.From != "" {
				e.Origin = SourceDNS
				if n := r.Name(s.From); n != nil && n.SRV && !n.WeightSet {
					e.WeightFrom = SourceDNS
				}
			}
			if o := st.find(r.ID, s.Address); o != nil {
				if o.Removed {
					continue
				}
				applyOverride(&e, o, self)
			}
			if a, ok := agents[conf.ServerKey(r.ID, s.Address)]; ok {
				applyAgent(&e, a)
			}
			out[i] = append(out[i], e)
		}
		for _, o := range st.Overrides {
			if o.Rule != r.ID || !o.Added {
				continue
			}
			s := r.ServerDefaults
			s.Address, s.Backup = o.Address, o.Backup
			e := Entry{Rule: r.ID, Server: s, Origin: source(&o, self), WeightFrom: SourceConfig, MaxConnsFrom: SourceConfig}
			applyOverride(&e, &o, self)
			if a, ok := agents[conf.ServerKey(r.ID, s.Address)]; ok {
				applyAgent(&e, a)
			}
			out[i] = append(out[i], e)
		}
	}
	return out
}

func applyOverride(e *Entry, o *Override, self string) {
	if o.Weight != nil {
		e.Server.Weight, e.WeightFrom = *o.Weight, source(o, self)
	}
	if o.MaxConns != nil {
		e.Server.MaxConnections, e.MaxConnsFrom = *o.MaxConns, source(o, self)
	}
}

// source is SourceAdmin for a change made on this node, SourceFleet for one
// made on another node of the fleet.
func source(o *Override, self string) string {
	if o.By != "" && o.By != self {
		return SourceFleet
	}
	return SourceAdmin
}

func findRule(cfg *conf.Config, id string) *conf.Rule {
	for i := range cfg.Rules {
		if cfg.Rules[i].ID == id {
			return &cfg.Rules[i]
		}
	}
	return nil
}

func findServer(r *conf.Rule, addr string) *conf.Server {
	for i := range r.Servers {
		if conf.AddrKey(r.Servers[i].Address) == addr {
			return &r.Servers[i]
		}
	}
	return nil
}

// errNoServer and the like are the admin's error texts.
var (
	errUnknownRule = errors.New("no such rule")
	errNoServer    = errors.New("no rule has server")
)

// keepaliveOf packs a server's keepalive for its slot.
func keepaliveOf(k conf.Keepalive) int64 {
	if !k.On() {
		return 0
	}
	return shared.PackKeepalive(int(k.Idle.D().Seconds()), int(k.Interval.D().Seconds()), k.Count)
}

// sourcesOf parses a server's checked source addresses for its slot.
func sourcesOf(list conf.Sources) []netip.Addr {
	var out []netip.Addr
	for _, s := range list {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}
