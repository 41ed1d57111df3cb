package master

import (
	"time"

	"g6/admin"
	"g6/shared"
)

// A rule is in panic when every server that could serve is isolated by
// moratorium alone: its workers then try those servers anyway, the longest
// isolated first (worker.nextTier), and the first to set the rule slot's
// PanicSince starts the episode. panics logs each episode once when it
// begins and once when it ends, which is when one of the rule's servers is
// usable again (a panic connect that succeeds readmits its server) or none
// is isolated any more (they were disabled, say), and clears PanicSince
// then.
type panics struct {
	logged map[int]int64 // rule slot → the PanicSince already logged
}

// check looks at every rule of snap once (the per-second sampler).
func (p *panics) check(m *Master, snap *admin.Snapshot) {
	if p.logged == nil {
		p.logged = map[int]int64{}
	}
	now := shared.Now()
	for i, r := range snap.Config.Rules {
		slot := snap.Rules[i]
		rs := snap.Region.Rule(slot)
		since := rs.PanicSince.Load()
		if since == 0 {
			delete(p.logged, slot)
			continue
		}
		if p.logged[slot] != since {
			p.logged[slot] = since
			m.log.Warn("rule in panic: every server that could serve is isolated by moratorium; trying them anyway",
				"rule", r.ID, "servers", len(snap.Servers[i]))
		}
		usable, isolated := false, false
		for _, e := range snap.Servers[i] {
			sl := snap.Region.Server(e.Slot)
			usable = usable || sl.Usable(now)
			isolated = isolated || sl.Isolated(now)
		}
		if (usable || !isolated) && rs.PanicSince.CompareAndSwap(since, 0) {
			delete(p.logged, slot)
			m.log.Warn("rule out of panic", "rule", r.ID, "server_usable", usable,
				"lasted", time.Duration(now-since).Round(time.Millisecond), "panic_connections", rs.PanicConnections.Load())
		}
	}
}
