package pool

import (
	"fmt"
	"net/netip"
	"time"

	"g6/shared"
)

// Add puts a server into a rule at runtime. weight and maxConns nil keep
// the rule's server_defaults.
func (t *Table) Add(rule string, addr netip.AddrPort, weight *int, maxConns *int64, backup bool) (Entry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := findRule(t.cfg, rule)
	if r == nil {
		return Entry{}, fmt.Errorf("%w %q", errUnknownRule, rule)
	}
	key := addr.String()
	if _, ok := t.find(rule, key); ok {
		return Entry{}, fmt.Errorf("rule %q already has server %s", rule, key)
	}
	st := t.state.clone()
	if s := findServer(r, key); s != nil {
		// A config server removed earlier comes back.
		o := st.get(rule, key, entryText(*s))
		o.Removed = false
		if backup != s.Backup {
			return Entry{}, fmt.Errorf("server %s is in the config of rule %q with backup = %t; edit the config to change that", key, rule, s.Backup)
		}
		setValues(o, weight, maxConns)
	} else {
		o := st.get(rule, key, "")
		*o = Override{Rule: rule, Address: key, Added: true, Backup: backup}
		setValues(o, weight, maxConns)
	}
	if err := t.commit(st); err != nil {
		return Entry{}, err
	}
	e, _ := t.find(rule, key)
	return e, nil
}

func setValues(o *Override, weight *int, maxConns *int64) {
	if weight != nil {
		w := *weight
		o.Weight = &w
	}
	if maxConns != nil {
		n := *maxConns
		o.MaxConns = &n
	}
}

// Del takes a server out of a rule: no new connection goes to it; its
// slot keeps counting the sessions left.
func (t *Table) Del(rule string, addr netip.AddrPort) (Entry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if findRule(t.cfg, rule) == nil {
		return Entry{}, fmt.Errorf("%w %q", errUnknownRule, rule)
	}
	key := addr.String()
	e, ok := t.find(rule, key)
	if !ok {
		return Entry{}, fmt.Errorf("rule %q has no server %s", rule, key)
	}
	st := t.state.clone()
	if s := findServer(findRule(t.cfg, rule), key); s != nil {
		st.get(rule, key, entryText(*s)).Removed = true
	} else {
		st.find(rule, key).Added = false
		st.find(rule, key).Weight, st.find(rule, key).MaxConns = nil, nil
		st.prune()
	}
	if err := t.commit(st); err != nil {
		return Entry{}, err
	}
	t.gone = append(t.gone, e)
	return e, nil
}

// SetWeight sets the weight of addr in rule, or in every rule holding it
// (rule "").
func (t *Table) SetWeight(rule string, addr netip.AddrPort, w int) ([]Entry, error) {
	return t.set(rule, addr, func(o *Override) { o.Weight = &w })
}

// SetMaxConns sets the per-server limit of addr in every rule holding it.
func (t *Table) SetMaxConns(addr netip.AddrPort, n int64) ([]Entry, error) {
	return t.set("", addr, func(o *Override) { o.MaxConns = &n })
}

func (t *Table) set(rule string, addr netip.AddrPort, change func(*Override)) ([]Entry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	held, err := t.holding(rule, addr)
	if err != nil {
		return nil, err
	}
	st := t.state.clone()
	for _, e := range held {
		change(st.get(e.Rule, e.Server.Address, t.base(e)))
	}
	if err := t.commit(st); err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(held))
	for _, e := range held {
		ne, _ := t.find(e.Rule, e.Server.Address)
		out = append(out, ne)
	}
	return out, nil
}

// Disable takes addr out in every rule until `until` (region clock;
// shared.Forever for no end).
func (t *Table) Disable(addr netip.AddrPort, until int64) ([]Entry, error) {
	return t.mark(addr, func(sl *shared.ServerSlot, o *Override, now int64, wall time.Time) {
		sl.Disable(until)
		o.Disabled = monoToWall(until, now, wall)
	})
}

// Enable ends a disable, a drain and a moratorium of addr in every rule.
func (t *Table) Enable(addr netip.AddrPort) ([]Entry, error) {
	return t.mark(addr, func(sl *shared.ServerSlot, o *Override, now int64, _ time.Time) {
		sl.Enable(now)
		o.Disabled, o.Draining = 0, 0
	})
}

// Drain stops new connections to addr in every rule; sessions still open
// at until are closed (shared.Forever: never).
func (t *Table) Drain(addr netip.AddrPort, until int64) ([]Entry, error) {
	return t.mark(addr, func(sl *shared.ServerSlot, o *Override, now int64, wall time.Time) {
		sl.Drain(until)
		o.Draining = monoToWall(until, now, wall)
	})
}

// mark changes the state of addr's slots and records it in the overlay.
func (t *Table) mark(addr netip.AddrPort, change func(*shared.ServerSlot, *Override, int64, time.Time)) ([]Entry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	held, err := t.holding("", addr)
	if err != nil {
		return nil, err
	}
	st := t.state.clone()
	now, wall := shared.Now(), time.Now()
	for _, e := range held {
		change(t.region.Server(e.Slot), st.get(e.Rule, e.Server.Address, t.base(e)), now, wall)
	}
	st.prune()
	if t.path != "" {
		if err := SaveState(t.path, st); err != nil {
			return nil, err
		}
	}
	t.state = st
	return held, nil
}

// Holding returns the entries of addr in rule, or in every rule (rule "").
func (t *Table) Holding(rule string, addr netip.AddrPort) ([]Entry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.holding(rule, addr)
}

func (t *Table) holding(rule string, addr netip.AddrPort) ([]Entry, error) {
	if rule != "" && findRule(t.cfg, rule) == nil {
		return nil, fmt.Errorf("%w %q", errUnknownRule, rule)
	}
	key := addr.String()
	var out []Entry
	for _, es := range t.entries {
		for _, e := range es {
			if e.Server.Address == key && (rule == "" || e.Rule == rule) {
				out = append(out, e)
			}
		}
	}
	if len(out) == 0 {
		if rule != "" {
			return nil, fmt.Errorf("rule %q has no server %s", rule, key)
		}
		return nil, fmt.Errorf("%w %s", errNoServer, key)
	}
	return out, nil
}

func (t *Table) find(rule, key string) (Entry, bool) {
	for _, es := range t.entries {
		for _, e := range es {
			if e.Rule == rule && e.Server.Address == key {
				return e, true
			}
		}
	}
	return Entry{}, false
}

// base is the config entry an override of e is made against.
func (t *Table) base(e Entry) string {
	if s := findServer(findRule(t.cfg, e.Rule), e.Server.Address); s != nil {
		return entryText(*s)
	}
	return ""
}

// commit publishes st and saves it; if saving fails, the previous state is
// published again, so a change is in the region and the file, or in
// neither.
func (t *Table) commit(st State) error {
	st.prune()
	prev := t.state
	if err := t.publish(t.cfg, t.ruleSlots, st); err != nil {
		return err
	}
	if t.path == "" {
		return nil
	}
	if err := SaveState(t.path, st); err != nil {
		t.publish(t.cfg, t.ruleSlots, prev)
		return err
	}
	return nil
}

func monoToWall(mono, now int64, wall time.Time) int64 {
	if mono == shared.Forever {
		return Forever
	}
	return wall.UnixNano() + (mono - now)
}
