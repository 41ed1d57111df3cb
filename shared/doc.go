// Package shared is the memory region that the master and every worker map
// (a memfd created by the master, MAP_SHARED), holding the state that must be
// global across workers: per-server state and counters, per-rule cursors,
// per-client-pattern counts and the per-IP table behind the client limits.
//
// Layout (Version in layout.go; every size and offset pinned by
// testdata/layout.golden), all offsets from the start of the region:
//
//	header   576 bytes             magic "G6SHARED", version, capacities, slot sizes, the lock,
//	                               which master owns each per-worker counter slot
//	rules    NRules × RuleSlot     (256 bytes each)
//	servers  NServers × ServerSlot (1280 bytes each; max_servers of them)
//	clients  NClients × ClientSlot (384 bytes each)
//	ips      NIPs × ipEntry        (160 bytes each; open addressing)
//	rates    NIPs × rateEntry      (16 bytes each; max_rate buckets, rate.go)
//
// A rule, server or client slot is identified by its key (conf.ServerKey and
// kin), written by the master when it assigns the slot, so state survives
// reloads and upgrades for the keys that still exist: the master looks keys
// up again. Any change to the layout bumps Version; Open refuses a region
// whose header does not match what this build was made for (an upgrade
// hands over a fresh region in that case).
//
// Concurrency has two regimes.
//
// Rule and server slots: every field after the key is a sync/atomic value
// and no lock is taken, so a worker that dies mid-update cannot wedge the
// others. Why each field may race:
//   - Active is changed with CompareAndSwap (TryAcquire: the per-server limit
//     is exact across workers) and Add; PerWorker[w] mirrors the part owned
//     by worker slot w, so when w dies the master subtracts PerWorker[w] from
//     Active and zeroes it (the dead worker no longer writes).
//   - Total, Failures, FromClient, FromServer only grow; readers want a
//     snapshot.
//   - MoratoriumUntil, DisabledUntil, HeartbeatUntil are deadlines in
//     CLOCK_MONOTONIC nanoseconds (Now; the same clock in every process); a
//     stale read only decides one connection on old state.
//   - Cursor (per rule) is advanced with Add, so workers take turns globally.
//   - Membership: the master writes a server slot's address, settings,
//     weight and limit, then Member (its rule slot + 1), then bumps the rule
//     slot's Members; a worker that sees Members move rereads the rule's
//     members. Weight and MaxConns are read at every selection, so setting
//     them needs no rebuild. A slot whose Member is 0 takes no connection
//     (Usable) even in a worker whose list is stale; the slot goes to
//     another key only once it is in no rule and Active is 0 (AssignServers).
//   - UpSince and SlowStart give the slow-start share (Share); FlagDraining
//     with DrainUntil is a drain, whose leftover sessions the workers close.
//   - RTAvg is an exponential moving average updated with CAS.
//   - FailStreak counts connect failures in a row (Fail adds, Connected
//     stores 0; two workers racing may count one failure more or less);
//     the IsolateAfter-th isolates (MoratoriumUntil, IsolatedAt). A rule
//     slot's PanicSince is set by the first worker to find every usable
//     server gone but some isolated (CompareAndSwap from 0) and cleared by
//     the master; PanicConnections only grows.
//   - Owners (header): a master claims a free per-worker counter slot with
//     CompareAndSwap from 0 to its pid and stores 0 when the worker is
//     dead and released (FreeWorker), so masters of every generation
//     share the 64 without a message; the slots of a master that died are
//     freed by the one after it (FreeOwner).
//
// Client slots and the per-IP table: a limit check and its count must be one
// step (two workers must never both take the last place), so their plain
// int32 fields are read and written only under the region's one lock
// (lock.go): a spinlock in the header holding its owner's pid, held for a few
// hundred instructions with no syscall. A waiter that finds the owner's pid
// gone takes the lock over after 50 ms, so a worker killed while holding it
// delays the others once instead of wedging them. Refused is atomic so the
// master can read it without the lock.
//
// Rate limits take no lock: a client slot's RateTAT and the per-IP rate
// table are GCRA timestamps moved by compare-and-swap (rate.go); a dead
// worker leaves nothing to release in them.
package shared
