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
	defer t.changing()()
	r := findRule(t.view, rule)
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
	if err := t.commit(st, okey{rule, key}); err != nil {
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
	defer t.changing()()
	if findRule(t.view, rule) == nil {
		return Entry{}, fmt.Errorf("%w %q", errUnknownRule, rule)
	}
	key := addr.String()
	e, ok := t.find(rule, key)
	if !ok {
		return Entry{}, fmt.Errorf("rule %q has no server %s", rule, key)
	}
	st := t.state.clone()
	if s := findServer(findRule(t.view, rule), key); s != nil {
		st.get(rule, key, entryText(*s)).Removed = true
	} else {
		o := st.find(rule, key)
		o.Added, o.Weight, o.MaxConns = false, nil, nil
		st.prune()
	}
	if err := t.commit(st, okey{rule, key}); err != nil {
		return Entry{}, err
	}
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
	defer t.changing()()
	held, err := t.holding(rule, addr)
	if err != nil {
		return nil, err
	}
	st := t.state.clone()
	var keys []okey
	for _, e := range held {
		change(st.get(e.Rule, e.Server.Address, t.base(e)))
		keys = append(keys, okey{e.Rule, e.Server.Address})
	}
	if err := t.commit(st, keys...); err != nil {
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
	return t.mark(addr, func(o *Override, now int64, wall time.Time) {
		o.Disabled = monoToWall(until, now, wall)
	}, func(sl *shared.ServerSlot, _ int64) { sl.Disable(until) })
}

// Enable ends a disable, a drain and a moratorium of addr in every rule.
func (t *Table) Enable(addr netip.AddrPort) ([]Entry, error) {
	return t.mark(addr, func(o *Override, _ int64, _ time.Time) {
		o.Disabled, o.Draining = 0, 0
	}, func(sl *shared.ServerSlot, now int64) { sl.Enable(now) })
}

// Drain stops new connections to addr in every rule; sessions still open
// at until are closed (shared.Forever: never).
func (t *Table) Drain(addr netip.AddrPort, until int64) ([]Entry, error) {
	return t.mark(addr, func(o *Override, now int64, wall time.Time) {
		o.Draining = monoToWall(until, now, wall)
	}, func(sl *shared.ServerSlot, _ int64) { sl.Drain(until) })
}

// mark records a state change of addr in the overlay, persists it (fleet,
// state file), and only then applies it to addr's slots.
func (t *Table) mark(addr netip.AddrPort, change func(*Override, int64, time.Time), apply func(*shared.ServerSlot, int64)) ([]Entry, error) {
	defer t.changing()()
	held, err := t.holding("", addr)
	if err != nil {
		return nil, err
	}
	st := t.state.clone()
	now, wall := shared.Now(), time.Now()
	var keys []okey
	for _, e := range held {
		change(st.get(e.Rule, e.Server.Address, t.base(e)), now, wall)
		keys = append(keys, okey{e.Rule, e.Server.Address})
	}
	st.prune()
	if err := t.persist(st, keys); err != nil {
		return nil, err
	}
	for _, e := range held {
		apply(t.region.Server(e.Slot), now)
	}
	t.state = st
	return held, nil
}

// key names one override: rule and server address.
type okey struct{ rule, addr string }

// persist writes the state file (if any), then hands the overrides of
// keys in st to the fleet (if any). An error means neither took it (the
// fleet refused, or the file could not be written before the fleet was
// asked). Called with both locks held; the data lock is let go while the
// fleet's store answers (the change lock keeps other changes out).
func (t *Table) persist(st State, keys []okey) error {
	if t.path != "" {
		if err := SaveState(t.path, st); err != nil {
			return err
		}
	}
	if t.sink == nil {
		return nil
	}
	out := make([]Override, 0, len(keys))
	for _, k := range keys {
		if o := st.find(k.rule, k.addr); o != nil {
			o.By = t.self
			out = append(out, *o)
		} else {
			out = append(out, Override{Rule: k.rule, Address: k.addr}) // none left: the fleet deletes it
		}
	}
	t.mu.Unlock()
	err := t.sink(out)
	t.mu.Lock()
	if err != nil {
		if t.path != "" {
			SaveState(t.path, t.state)
		}
		return err
	}
	return nil
}

// Holding returns the entries of addr in rule, or in every rule (rule "").
func (t *Table) Holding(rule string, addr netip.AddrPort) ([]Entry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.holding(rule, addr)
}

func (t *Table) holding(rule string, addr netip.AddrPort) ([]Entry, error) {
	if rule != "" && findRule(t.view, rule) == nil {
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
	if s := findServer(findRule(t.view, e.Rule), e.Server.Address); s != nil {
		return entryText(*s)
	}
	return ""
}

// commit publishes st and persists the overrides of keys; if persisting
// fails, the previous state is published again, so a change is in the
// region and the store, or in neither.
func (t *Table) commit(st State, keys ...okey) error {
	st.prune()
	prev := t.state
	if err := t.publish(t.cfg, t.ruleSlots, st); err != nil {
		return err
	}
	if err := t.persist(st, keys); err != nil {
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
