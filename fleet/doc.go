// Package fleet joins a master to the other g6 nodes of its [cluster]
// through etcd: the runtime server changes made on any node's admin port
// are written there and applied by every node.
//
// Model: one key per rule and server, <prefix>/servers/<rule>/<address>,
// holding the pool.Override as JSON (deadlines as wall-clock time). A
// change given on a node is written in one transaction that compares each
// key's revision with the one the node last saw, so a node that was cut
// off never overwrites newer fleet state with its older copy; the node
// answers only after etcd took the write. Every node (the writer too)
// applies the keys through a watch. On (re)connection a node reads the
// whole prefix and replaces its overlay with it, then watches from that
// revision.
//
// Config: `g6 push` stores a config's text under <prefix>/config; a master
// started with --etcd reads it there and is told (WatchConfig) to reload
// when it changes.
//
// Registry: each node keeps <prefix>/nodes/<node> (NodeInfo as JSON) on a
// 10 s lease, rewritten every 2 s; a clean stop revokes it, a killed node
// drops out when the lease expires.
//
// Sharp edges: while etcd cannot be reached a node serves with the state it
// last knew and refuses fleet changes (ErrUnavailable); it logs the loss
// once and the recovery once, and retries with backoff. Everything here
// runs in the master, never in a worker.
package fleet
