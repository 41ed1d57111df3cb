// Package worker is one g6 worker process: a single epoll loop that accepts
// on the listening sockets inherited from the master (TCP) or reads their
// datagrams (UDP), picks a server, and moves bytes both ways.
//
// Model: one goroutine locked to its OS thread (GOMAXPROCS=1) owns
// everything. The package is one loop serving kinds of session:
//
// The loop (worker.go, poller.go, timers.go, control.go, limited.go,
// stream.go): Run and step wait on epoll, hand each event to what its fd
// stands for (the fd table holds a polled: a listener, a session's socket,
// a handoff channel), fire due deadlines (the timer heap holds a timed,
// with the generation it was set for), then close the fds ended in the
// batch and recycle their sessions (reap). The control socket to the
// master carries setup, drain, stop, pings and requests (control.go).
// A kind of session plugs in by being polled (its sockets) and timed (its
// deadlines), in files of its own: the TCP session, with or without TLS
// ends, and the UDP session. Both walk their rule's servers the same way
// (search.go: the primaries in the selector's order, the backups, then
// panic).
//
// The TCP session (accept.go, inspect.go, routes.go, rules.go, session.go,
// forward.go, splice.go, urgent.go, flush.go, proxyproto.go, sockopts.go,
// shutdown.go, accesslog.go): admitted at accept (or after reading its
// PROXY header and ClientHello), connected to a server of its rule,
// bytes moved both ways, flushed, ended by one teardown. Listening sockets
// are level-triggered and the control socket and handoff channels
// edge-triggered; proxied sockets are registered once, edge-triggered for
// read and write, and each endpoint remembers whether it may read or
// write without blocking, so the loop never needs epoll_ctl(MOD) on the
// data path. A direction whose destination is full keeps the unsent tail
// in a pooled buffer and stops reading its source; the other direction
// goes on (a slow reader never stalls the other way). EOF on one side
// becomes shutdown(SHUT_WR) on the other once the tail is written; a
// session ends when both directions have and the kernel's send queues it
// would leave behind are empty (flush.go). A read or write error on one
// side is passed on as a reset on the other. Sessions move between
// workers on HUP and USR2 (handoff.go sends, adopt.go receives), and may
// be forwarded in the kernel (accel.go).
//
// The UDP session (udp.go, udpsession.go, udphandoff.go): one client
// address and port on one UDP listen socket (the listener's session
// table, by netip.AddrPort), with one socket connected to its server. The
// listen socket is read with recvmmsg into a batch of 64 preallocated
// 64 KiB slots (pages are touched only as far as datagrams fill them) and
// each run of one session's datagrams goes on in one sendmmsg on its
// socket; the servers' replies gather in a second batch addressed to the
// clients and leave from the listen socket in one sendmmsg per listener at
// the end of the turn. UDP sockets are level-triggered and read at most
// four batches per readiness, so a busy client cannot starve the rest. An
// ECONNREFUSED on a session socket (the server's ICMP port unreachable)
// is a server failure (serverFailed, as a refused connect); the session
// keeps its place and its next datagram walks on to the next server.
// responses ends a session once the server sent that many datagrams per
// client datagram; the listen entry's timeout is its idle time (one lazy
// timer entry per session). A datagram the kernel will not send now is
// dropped and counted (DatagramsDropped), never queued: UDP has no
// backpressure. max_sessions bounds the table, capped by the open-file
// limit (each session holds a socket). Handoff: a draining worker hands
// its UDP sessions first, each with its server socket (the listen socket
// is the same in both generations), the last batch saying UDPDone; a new
// worker of a generation that replaces another (ipc.Setup.HoldUDP) reads
// its UDP listen sockets only once every adopt channel said UDPDone, or
// after 2 s, so no datagram of a session on its way starts a session to
// another server. A stop (ipc.Drain.Stop) ends UDP sessions and closes
// the listen sockets at once.
//
// TLS (tls.go, terminate.go, originate.go): a TCP session may have a TLS
// end on either side: the client's when its listen address has a tls
// table (terminated), the server's when the server has one (originated).
// crypto/tls is driven by the loop itself over in-memory buffers, not by
// a goroutine pair per session. Why: the worker's one P is held by the
// loop, which waits in a raw epoll_pwait, so per-session goroutines would
// run only when the loop yields, through the scheduler, and cost two
// stacks (8 KiB and up each) and a channel hop per record. Here crypto/tls
// reads and writes a net.Conn that is tlsIO: the ciphertext the loop read
// from the socket (in) and the ciphertext crypto/tls wrote (out: one
// buffer per worker, emptied after every call), which the loop sends with
// the same backpressure as any other bytes. After the
// handshake a read that finds nothing returns a temporary error, which
// crypto/tls hands back without keeping (a record read in part waits in
// its buffer). The handshake does keep errors, so it runs as a coroutine
// (iter.Pull): its reads yield to the loop when they need bytes and resume
// when the socket has brought them, with no scheduler in between; one
// handshake's CPU is the longest it holds the loop. Handshakes g6
// terminates count against max_inspecting (that bounds them per worker)
// and are closed handshake_timeout after the accept. An idle TLS session
// costs what crypto/tls keeps per connection on top of the TCP session's
// ~1.3 KiB: ~6.5 KiB of live heap (TestTLSIdleSessionMemory: its
// tls.Conn, two AES-GCM states, record and handshake buffers sized by the
// ClientHello; more while a 16 KiB record is in flight). A worker that
// speaks TLS collects at GOGC 100, not 400 (gcPercent), since handshakes
// make garbage; make bench's tls-idle target measures RSS per session
// against HAProxy. Kernel TLS (CONFIG_TLS; not on the test machines) could carry
// the record layer after the handshake: a session's ends would then be
// plain sockets again, spliced and paired like any other, so the data
// path keeps TLS behind tlsOf and the move dispatch. A TLS session is
// never spliced, paired or handed over on HUP and USR2 (its keys live in
// this process): it drains here; the master's ticket keys let the client
// resume on any worker.
//
// The data path, in order (file: function):
//
//	worker.go:   step            epoll_pwait, fds[fd].onEvent, then expire (timed.onTimer), reap
//	accept.go:   onAccept        accept4 up to a batch; EMFILE pauses (limited.go)
//	accept.go:   admit           client pattern (deny), rate limits (shared.AdmitRate), client
//	                             and rule limits (shared.Admit), socket options, newSession
//	inspect.go:  startInspect    inspected addresses only: read the PROXY header and the
//	                             ClientHello first, then route (routes.go: choose) and admit
//	rules.go:    refresh, order  reread the rule's servers if Members moved; the primaries' order (slow start)
//	session.go:  connectNext     next server in that order, then the backups', then (nextTier: panic)
//	                             the servers isolated by moratorium alone, longest first: TryAcquire,
//	                             socket options, bind (source or, transparent, the client's address), async connect
//	terminate.go: startTLS       a TLS address: the server handshake (handshake), then balance
//	session.go:  onConnectEvent  writable: established (originate first for a TLS server); an error:
//	                             Fail (isolates at isolate_after) and connectNext; neither: not this
//	                             connect's answer, wait on
//	originate.go: originate      a TLS server: PROXY header, client handshake; failed: originFailed
//	session.go:  established     PROXY header (proxyproto.go), bytes read before routing, timers, pump
//	forward.go:  onEndpointEvent readiness flags, then pump
//	forward.go:  pump → move     read into scratch, send, keep the tail in pend; a TLS end:
//	                             moveFromTLS, moveToTLS (tls.go)
//	splice.go:   moveSplice      past spliceAfter: socket → pipe → socket
//	forward.go:  sawEOF, passEOF EOF becomes shutdown(SHUT_WR) once drained
//	flush.go:    finish          both done: end, or wait for the send queues
//	session.go:  onTimer         the session's deadline: connect, read before routing, flush, idle
//	session.go:  end → teardown  the one way out: counts released, access log, deferClose both fds
//	outlier.go:  judgeServer     what the ending session says of its server (outlier ejection);
//	             sweepTCPInfo    long sessions' server sockets: retransmits every 5 s
//	                             (teardown(goesOn) when another worker has the session)
//	shutdown.go: sweepDrains     every 250 ms with sessions: close those of drains past their deadline,
//	                             add live sessions' bytes to their server's totals
//	handoff.go:  handOver        draining with a handoff channel: the next batch of established sessions
//	adopt.go:    adoptBatch      a new worker answers a batch, then registers what it took
//	worker.go:   reap            close deferred fds, recycle sessions
//	worker.go:   publishLoad     worker_steering = "least": the session count into the
//	                             steering table (package steer), when it changed
//	accel.go:    maybePair       accel = "sockmap": a keep-alive session goes into the
//	                             sockmap (package accel); moveKernel, drainCheck, queuedIn
//	                             then handle its FINs and spills
//
// and for UDP:
//
//	udp.go:        udpListener.onEvent  recvmmsg a batch from a listen socket
//	udp.go:        fromClients          each datagram to its session (openUDP: max_sessions,
//	                                    admitClient, connectUDP on the search), runs by sendRun
//	udpsession.go: udpSession.onEvent   recvmmsg the server's replies into the out batch
//	udp.go:        flushUDP             sendmmsg the out batch (full, another listener, end of turn)
//	udpsession.go: onTimer, endUDP      idle time; the one way a UDP session ends here
//	udphandoff.go: handUDP, adoptUDP    sessions to the next generation; releaseUDP
//
// Sharp edges:
//   - fds of sessions that end are closed only after the whole epoll batch
//     is handled, so a stale event can never reach a new socket that reused
//     the number (docs/g6-differences.md B14, B15).
//   - Inherited fds start at 3 (ipc.FdControl). The control socket arrives
//     blocking: the setup is read from it blocking (readSetup), then it is
//     switched to non-blocking; the worker sets the listening sockets
//     non-blocking itself (adoptListener), and never wraps them in an
//     *os.File, whose Fd() would switch them back.
//   - Every syscall retries EINTR; accept stops at EAGAIN or a batch; out of
//     descriptors (EMFILE and kin) the listeners leave the epoll set for
//     100 ms, since level-triggered they would spin (limited.go).
//   - The control fd is never wrapped in an *os.File: a File's finalizer
//     would close it at some GC and a client would get the number.
//   - Nothing on the data path allocates: scratch buffers, the server order
//     and sessions are reused. Rereading a rule's servers allocates, but only
//     after the master changed them; a session keeps the list it started
//     with, so a rebuild never moves the servers its order points at.
//   - Only listen addresses with accept_proxy or a rule with sni read before
//     routing (listener.inspector); there a session starts with no rule of its
//     own and refusals count on the address's fallback rule. Every other
//     address goes straight to its one rule, paying nothing.
//   - A rule's servers come from the shared region, not the setup: servers
//     added, removed or reweighed at runtime reach every worker without a
//     message. Closing sessions (shutdown sessions, del server now, on_down)
//     is a TypeShutdown request; a drain's deadline is read from the slot.
//   - A handed session is out of the epoll set and in no worker's hands
//     until the new worker's answer: the sender keeps its fds and resumes
//     the batch if the channel closes unanswered; the receiver answers
//     before it touches a socket and, if its answer cannot be sent, closes
//     its copies and leaves them. Epoll entries belong to the open file, not
//     the fd, so the sender deletes them before passing the fds (closing its
//     copies alone would leave them armed), and the receiver deletes its own
//     before closing an adopted session's fds: the sender may still hold the
//     files, and a stale entry would report a client's events under the fd
//     number of the next socket (a connect: read as refused, its server
//     isolated). A draining worker that hands its sessions on still takes
//     an older worker's batches and passes them on (relaying), and stays
//     while such a channel is open.
//   - A paired socket (accel.go) is read only when epoll reports it again,
//     and never spliced: its bytes reach the worker through tcp_bpf's
//     queue, where a short read proves nothing and an EOF may come early,
//     so such reads go to EAGAIN and are checked against TCP_INFO. A paired
//     session is handed over with the maps it is in (a batch's three extra
//     fds), never taken out of them.
//   - With edge triggering, giving up on a readable socket before EAGAIN is
//     only safe when no data is left: a short read(2) proves that, except at
//     a TCP urgent mark (urgent.go); a short splice(2) does not (the pipe's
//     slots can cut it), so spliced directions read on until EAGAIN.
package worker
