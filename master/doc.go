// Package master is `g6 master`: it owns the listening sockets and the
// shared region, runs one worker process per slot, and turns signals into
// actions on the workers.
//
// Model: for every listen address (once, however many rules share it by
// sni) the master binds one SO_REUSEPORT socket per worker slot
// (sockets.go) and keeps them as long as some config listens
// there: across reloads and generations, and handed to a new master on USR2,
// so the reuseport group never changes under a queued connection. Worker
// slot i of n receives every socket j of an address with j % n == i
// (pickSockets; with fewer sockets than workers, as G6's hand-over gives,
// slot i shares socket i % len). A replacement worker inherits the very same
// sockets, so connections queued in their accept queues are served instead
// of lost. The master never accepts on them. Sockets are keyed by
// conf.ListenKey: a UDP rule's address ("udp/IP:PORT") gets UDP sockets of
// its own (buffers forced to 4 MiB where allowed), never steered by
// worker_steering (a client's datagrams must all reach one worker: the
// kernel's four-tuple hash does that); workers of a generation that
// replaces another are told to wait for the UDP sessions handed to them
// before reading those (ipc.Setup.HoldUDP), and a stop tells workers to
// end UDP sessions at once (ipc.Drain.Stop).
//
// Every rule's servers are a pool.Table (servers.go): the config with the
// runtime changes of the admin commands on top, published into the shared
// region before a generation's workers start and again on every change.
// Change runs the server commands; those that close sessions ask every
// worker (TypeShutdown). The overlay goes to the next master on USR2 in a
// memfd and, with state_file, to disk. With [cluster] a runtime change is
// published here, then written to the fleet store (fleet.Store, the
// table's sink) and undone if the store refuses it; every node's watch
// applies the changes of the others; with --etcd the config itself is
// read from the store (readConfig) and a change there is a reload.
//
// Server names (conf.Name) are looked up by a resolve.Watcher the master
// starts after the first generation and syncs after every reload
// (names.go); each answer goes into the pool (pool.Table.SetAnswer) and the
// health checks follow. Answers live in the pool's overlay, so a reload and
// a USR2 start from the last ones and never from zero servers.
//
// A generation is one config's set of workers (generation.go). A reload
// starts a new generation on the same sockets and, once every new worker is
// ready, drains the old one; if the new one fails to start it is stopped and
// the old one goes on. With handoff (handoff.go) the old workers first
// pass their established sessions to the new ones over channels the master
// makes (on USR2: the new master, sent up with its ready); the master never
// sees a session.
//
// Sharp edges:
//   - Workers are started with syscall.ForkExec and raw fds, never os/exec
//     with *os.File: ExtraFiles calls (*os.File).Fd(), which would switch the
//     shared sockets to blocking mode under a running worker.
//   - Every fd the master opens is close-on-exec; ForkExec dup2s exactly the
//     ones a worker should have to 3, 4, 5... (see ipc.Fd*).
//   - A worker's connection counts in the shared region are released by the
//     master (shared.ReleaseWorker) before its slot is respawned.
//   - accel (accel.go): the host is probed once (a sockmap and the program,
//     then closed) and the first decision is logged; each generation's
//     workers are told in their setup and make their own sockmap.
//   - Every ready worker is pinged each 0.5 s; one that answers nothing for
//     5 s is killed and so respawned (watchdog.go, below). With worker_steering =
//     "least" (steering.go, package steer) a ping 0.25 s late takes the
//     worker's slot out of the choice for new connections until it answers;
//     only the loop writes the live flags, and only for the current
//     generation's workers, which also publish their session counts.
//   - A reload shuts down (SHUT_RD) and closes the sockets of addresses
//     the new config dropped at once, so the kernel refuses new connections
//     instead of queueing them, even before a draining worker has read its
//     drain order and closed its copy.
//   - The HTTP endpoints (package console: metrics, the console and its
//     /api/v1, one listener per address) are the sockets not handed over
//     on USR2: both masters bind them with SO_REUSEPORT (go-reuseport), so
//     during the overlap a request may reach either; both read the same
//     region, but the console's 15-minute history starts again in the new
//     master. They start once at start; a reload does not move them.
//   - A reload publishes the new config's servers before its workers are
//     ready; if they fail to start the current config's are published again
//     (republish). The old generation no longer accepts, so it never reads
//     the new list.
//   - Health checks run per server slot and follow the pool (syncChecks):
//     a server added at runtime gets its rule's check at once.
//   - A stop signal during a USR2 is passed on to the new master, and this
//     one waits for its exit. A HUP during a USR2 is deferred, then passed
//     to the new master once it is ready (or run here if the upgrade
//     fails); a HUP that reaches a master after it handed over goes to its
//     successor. A new master that cannot start writes why on its ready
//     socket, and the old one logs it.
//   - Per-worker counter slots are claimed in the region (holders.go), so
//     masters of every generation take free ones only; a master watches
//     the masters before it by pidfd and frees what one left when it died.
//   - The watchdog kills a worker that leaves a ping unanswered for 5 s; a
//     channel that fails is a worker leaving, killed only if it is still
//     there 5 s later.
//   - A rule's panic episodes (every server that could serve isolated by
//     moratorium alone) are logged by the per-second sampler (panic.go),
//     which ends them in the region once a server is usable again.
package master
