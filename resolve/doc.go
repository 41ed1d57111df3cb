// Package resolve asks DNS servers for a name's addresses (A and AAAA) or
// a service's targets (SRV), with the TTL of every answer, for server names
// in the config (issue #16). It runs in the master only, never on a
// worker's loop.
//
// Model: one query per record type over UDP to each configured server in
// turn (TCP when an answer is truncated), with github.com/miekg/dns: the
// standard library's resolver neither reports TTLs nor lets a caller pick
// the server per query. An SRV answer's targets are resolved from its
// additional section when the server put them there, else with their own
// A/AAAA queries.
//
// Watcher keeps a config's name entries resolved, one goroutine per entry
// (watch.go): again at the shorter of resolve_interval and the answer's
// smallest TTL, never below 1 s. A failed lookup (every server failing,
// NXDOMAIN, no address) keeps the last addresses for resolve_hold from the
// first failure, then drops them; lookups go on each interval and the
// first good answer brings the servers back. Answers go to a Target (the
// pool); an answer equal to the last one changes nothing there.
//
// Sharp edges: a change of resolvers, resolve_interval or resolve_hold
// restarts every entry's lookups, and with them its hold. A cancelled
// lookup's answer never reaches the target (Sync and Stop hold the lock
// that handing one over takes), but a query under way runs to its timeout.
// Also: a name with no records of a type is not an error (an empty
// answer); NXDOMAIN (ErrNXDomain) and every server failing are. Servers
// turns an answer into the pool's servers: SRV priorities become backups
// and SRV weights are scaled into g6's range.
package resolve
