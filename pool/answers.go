package pool

import (
	"errors"
	"fmt"
	"slices"

	"g6/conf"
	"g6/resolve"
)

// Answer is the last servers a name entry (conf.Name.Entry) resolved to.
type Answer struct {
	Entry   string           `json:"entry"`
	Servers []resolve.Server `json:"servers"`
}

// SetAnswer makes servers what the name entry yields (nil: nothing, as
// after its hold ran out) in every rule that lists it, and publishes the
// result like add server and del server would: a server that leaves
// takes no new connection and keeps its sessions. An answer equal to the
// last one changes nothing (changed false). Answers are saved with the
// overlay (state file, upgrade hand-over), not sent to the fleet: each
// node resolves.
func (t *Table) SetAnswer(entry string, servers []resolve.Server) (changed bool, err error) {
	defer t.changing()()
	st := t.state.clone()
	i := slices.IndexFunc(st.Answers, func(a Answer) bool { return a.Entry == entry })
	if i >= 0 && slices.Equal(st.Answers[i].Servers, servers) || i < 0 && len(servers) == 0 {
		return false, nil
	}
	if t.cfg != nil && !t.cfg.HasNameEntry(entry) {
		return false, nil // a lookup that finished after a reload dropped the entry
	}
	switch {
	case len(servers) == 0:
		st.Answers = slices.Delete(st.Answers, i, i+1)
	case i < 0:
		st.Answers = append(st.Answers, Answer{Entry: entry, Servers: slices.Clone(servers)})
	default:
		st.Answers[i].Servers = slices.Clone(servers)
	}
	if t.cfg == nil {
		t.state = st
	} else {
		reconcile(&st, expand(t.cfg, st.Answers))
		if err := t.publish(t.cfg, t.ruleSlots, st); err != nil {
			return false, err
		}
	}
	if t.path != "" {
		return true, SaveState(t.path, t.state)
	}
	return true, nil
}

// Answer returns the servers the name entry last resolved to.
func (t *Table) Answer(entry string) []resolve.Server {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.state.Answers {
		if a.Entry == entry {
			return slices.Clone(a.Servers)
		}
	}
	return nil
}

// expand returns cfg with every name entry replaced by the servers its
// answer yields, in the entry's place, each with the entry's options and
// From set: an SRV record's weight unless the entry set one, and backup
// for an SRV record above the lowest priority. An address a rule already
// has (a literal server or an earlier entry's) is not added again. cfg
// itself is not changed.
func expand(cfg *conf.Config, answers []Answer) *conf.Config {
	if len(answers) == 0 {
		return cfg
	}
	byEntry := make(map[string][]resolve.Server, len(answers))
	for _, a := range answers {
		byEntry[a.Entry] = a.Servers
	}
	out := *cfg
	out.Rules = slices.Clone(cfg.Rules)
	for ri := range out.Rules {
		r := &out.Rules[ri]
		if len(r.Names) == 0 {
			continue
		}
		seen := map[string]bool{}
		for _, s := range r.Servers {
			seen[conf.AddrKey(s.Address)] = true
		}
		servers := make([]conf.Server, 0, len(r.Servers)+len(r.Names))
		ni := 0
		for i := 0; i <= len(r.Servers); i++ {
			for ; ni < len(r.Names) && r.Names[ni].At <= i; ni++ {
				n := &r.Names[ni]
				for _, rs := range byEntry[n.Entry] {
					key := rs.Addr.String()
					if seen[key] {
						continue
					}
					seen[key] = true
					servers = append(servers, resolved(n, rs))
				}
			}
			if i < len(r.Servers) {
				servers = append(servers, r.Servers[i])
			}
		}
		r.Servers = servers
	}
	return &out
}

// resolved is the server one answer of n yields.
func resolved(n *conf.Name, rs resolve.Server) conf.Server {
	s := n.Server
	s.Address, s.From = rs.Addr.String(), n.Entry
	if rs.Weight > 0 && !n.WeightSet {
		s.Weight = rs.Weight
	}
	s.Backup = s.Backup || rs.Backup
	return s
}

// PruneAnswers drops the answers of entries the published config does not
// have. The master calls it once a config serves: a reload that fails and
// publishes the running config again must still find them.
func (t *Table) PruneAnswers() error {
	defer t.changing()()
	if t.cfg == nil {
		return nil
	}
	n := len(t.state.Answers)
	t.state.Answers = slices.DeleteFunc(t.state.Answers, func(a Answer) bool { return !t.cfg.HasNameEntry(a.Entry) })
	if t.path != "" && len(t.state.Answers) != n {
		return SaveState(t.path, t.state)
	}
	return nil
}

// check validates an answer read from a state file.
func (a *Answer) check() error {
	if a.Entry == "" {
		return errors.New("no entry")
	}
	for i, s := range a.Servers {
		switch {
		case !s.Addr.IsValid() || s.Addr.Port() == 0:
			return fmt.Errorf("%s: server %d has no address", a.Entry, i+1)
		case s.Weight < 0 || s.Weight > conf.MaxWeight:
			return fmt.Errorf("%s: weight %d is not 0-%d", a.Entry, s.Weight, conf.MaxWeight)
		}
	}
	return nil
}
