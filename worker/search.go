package worker

import "net/netip"

// search is one session's walk through its rule's servers, TCP or UDP:
// the primaries in the selector's order, then the backups, then (panic)
// the servers isolated by moratorium alone. servers is the rule's list
// when the walk began; order indexes it.
type search struct {
	servers  []*server
	order    []int
	nPrimary int32 // servers[:nPrimary] are primaries, the rest backups
	next     int32
	tier     tier // which of the rule's servers the order holds so far
}

// tier is how far a search has gone: the primaries, then the backups,
// then (panic) the servers isolated by moratorium alone.
type tier uint8

const (
	tierPrimary tier = iota
	tierBackup
	tierPanic
)

// beginSearch starts a walk through r's current servers for a client.
func (w *Worker) beginSearch(sr *search, r *rule, peer netip.AddrPort) {
	r.refresh(w.region)
	sr.servers, sr.nPrimary, sr.next, sr.tier = r.servers, int32(r.primary.Len()), 0, tierPrimary
	sr.order = r.order(w.now, peer.Addr().AppendTo(w.ipText[:0]), sr.order)
}

// nextServer returns the next server of the walk that is usable and has
// room, its count taken (Release gives it back); nil when every tier was
// tried. A full server is skipped, not punished. started is when the
// session began (panicOrder).
func (w *Worker) nextServer(sr *search, r *rule, peer netip.AddrPort, started int64) *server {
	for {
		if int(sr.next) == len(sr.order) {
			if !w.nextTier(sr, r, peer, started) {
				return nil
			}
			continue
		}
		srv := sr.servers[sr.order[sr.next]]
		sr.next++
		ok := srv.slot.Usable(w.now) || sr.tier == tierPanic && srv.slot.Eligible(w.now)
		if ok && !srv.tlsUnknown && srv.slot.TryAcquire(w.counter, srv.slot.MaxConns.Load()) {
			return srv
		}
	}
}

// nextTier appends the next tier of servers to the walk's order: the
// backups once no primary took it, then, if no server of the rule is
// usable and some are out by moratorium alone, those (panic: a transient
// failure must not become an outage). False when every tier was tried.
func (w *Worker) nextTier(sr *search, r *rule, peer netip.AddrPort, started int64) bool {
	if sr.tier == tierPrimary && int(sr.nPrimary) < len(sr.servers) {
		sr.tier = tierBackup
		ip := peer.Addr().AppendTo(w.ipText[:0])
		sr.order = r.backupOrder(w.now, ip, sr.servers, int(sr.nPrimary), sr.order)
		return true
	}
	if sr.tier == tierPanic {
		return false
	}
	sr.tier = tierPanic
	base := len(sr.order)
	sr.order = panicOrder(sr.servers, w.now, started, sr.order)
	if len(sr.order) == base {
		return false
	}
	r.slot.PanicSince.CompareAndSwap(0, w.now) // the master logs the episode
	r.slot.PanicConnections.Add(1)
	return true
}

// panicOrder appends the servers a session in panic tries, the longest
// isolated first, or none if any server of the rule is usable (the session
// found it full, or it failed this session's connect) or some server out
// by moratorium was isolated since the session began (this session's
// failures isolated the rest: trying them again would only repeat them).
func panicOrder(servers []*server, now, started int64, dst []int) []int {
	base := len(dst)
	for i, srv := range servers {
		sl := srv.slot
		if sl.Usable(now) {
			return dst[:base]
		}
		if sl.Isolated(now) && sl.IsolatedAt.Load() < started {
			dst = append(dst, i)
		}
	}
	// Insertion sort by IsolatedAt: a rule has few servers, and sort.Slice
	// would allocate.
	for i := base + 1; i < len(dst); i++ {
		for j := i; j > base && servers[dst[j]].slot.IsolatedAt.Load() < servers[dst[j-1]].slot.IsolatedAt.Load(); j-- {
			dst[j], dst[j-1] = dst[j-1], dst[j]
		}
	}
	return dst
}
