// Package steer picks the worker that takes each new connection
// (worker_steering = "least"): a BPF program of type SK_REUSEPORT, attached
// to every listen address's reuseport group, sends each connection to the
// socket of the live worker with the fewest sessions, instead of the
// kernel's blind hash of the 4-tuple.
//
// Model: one BPF array (Table) holds, per worker slot, the slot's session
// count and whether it is live. It is mmapped by the master and by every
// worker, so nobody makes a syscall to update it: a worker stores its
// session count after each loop turn in which it changed (Table.SetSessions,
// one atomic store), and the master marks a slot live when its worker of the
// serving generation reports ready and not live when the worker dies or
// leaves a ping unanswered for a quarter of a second (a SIGSTOP, a wedged
// loop, a long pause), and live again when it answers. Per address, a
// REUSEPORT_SOCKARRAY holds socket i of the group at index i, and the
// program (program.go, unrolled for the worker count) selects the first
// socket of the chosen slot. With no live slot it selects nothing and the
// kernel hashes, as without steering.
//
// Sharp edges:
//   - Connections already in a stalled worker's accept queue stay there:
//     the master owns the listening socket, so nothing closes it to migrate
//     them. They are served when the worker resumes, or by its replacement
//     on the same socket once the watchdog has killed it (5 s unanswered).
//   - Counts are published at the end of a loop turn: connections that
//     arrive within one turn all see the count before it. Over many
//     connections that only ever favours the emptier worker.
//   - An address with fewer sockets than workers (sockets handed down by
//     G6, or a reload that raised the worker count) is not a reuseport
//     group the program can cover: it keeps the kernel's hash.
//   - The program stays attached to the group after the master that
//     attached it exits (a USR2 successor inherits the sockets); every
//     generation therefore attaches its own or, with "hash", detaches.
//   - A socket can be in one socket array at a time, and the old program
//     keeps the old arrays alive: a USR2 successor takes the steering array
//     and the socket arrays over (Export, Adopt) and loads its program over
//     them; the old master writes no live flag once the successor is ready.
//   - Loading needs CAP_BPF and CAP_NET_ADMIN (root has both). Without
//     them New fails, and the master logs it once and keeps the hash.
package steer
