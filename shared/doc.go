// Package shared is the memory region that the master and every worker map
// (a memfd created by the master, MAP_SHARED), holding the state that must be
// global across workers: per-server state and counters, per-rule cursors.
//
// Layout (version 1), all offsets from the start of the region:
//
//	header   64 bytes   magic "G6SHARED", version, sizes (checked on Open)
//	rules    nRules × RuleSlot      (128 bytes each)
//	servers  nServers × ServerSlot  (448 bytes each)
//
// A slot is identified by its key (rule id, or rule id + " " + address),
// written by the master when it assigns the slot, so state survives reloads
// and upgrades for servers that still exist: the master looks keys up again.
// Any change to a slot's layout bumps Version; a worker refuses a region whose
// header does not match what it was built for (an upgrade hands over a fresh
// region in that case).
//
// Concurrency: every field after the key is a sync/atomic value, and no lock
// is ever held, so a worker that dies mid-update cannot wedge the others.
// Why each field may race:
//   - Active is changed only with Add; PerWorker[w] mirrors the part owned by
//     worker slot w, so when w dies the master subtracts PerWorker[w] from
//     Active and zeroes it (the dead worker no longer writes).
//   - Total, Failures, FromServer, FromClient only grow; readers want a snapshot.
//   - MoratoriumUntil, DisabledUntil, HeartbeatUntil are deadlines in
//     CLOCK_MONOTONIC nanoseconds (the same clock in every process); a stale
//     read only decides one connection on old state.
//   - Cursor (per rule) is advanced with Add, so workers take turns globally.
//   - RTAvg is an exponential moving average updated with CAS.
package shared
