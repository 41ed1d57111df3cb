// Package accel forwards an established session's bytes in the kernel
// (accel = "sockmap"): both sockets go into a BPF sockmap whose sk_skb
// verdict program redirects each socket's incoming bytes to its peer's
// egress, so a worker is not woken, and copies nothing, per request.
//
// Model, per worker (a Pairs): a SOCKMAP of paired sockets by slot, a hash
// from a socket's cookie to its slot, and an mmapped array of Links, one per
// slot: the peer's slot, the bytes redirected from the socket (Moved), the
// time of the last redirect, a budget and a spilled flag. The program
// (program.go) redirects a socket's bytes while its Moved stays within its
// budget; past it, or if the redirect fails, it sets spilled and passes the
// bytes to the socket's own queue instead, where the worker reads them
// (tcp_bpf's recvmsg) and copies them on, for the rest of the session.
//
// What the probes on kernel 6.18 showed, and what follows:
//   - The kernel bounds nothing on the way: redirected bytes wait in the
//     peer's psock queue, outside its socket buffers, and a sender facing a
//     stopped reader got 385 MB in 2 s into it. The budget is that bound: a
//     worker raises it (the peer's bytes written plus Window) only while the
//     peer keeps taking them, so a slow reader spills the direction to the
//     worker's copy path, where the socket buffers push back as usual.
//   - Redirected bytes are still queued when the source's FIN is read: 256
//     MB arrived whole only when the peer's shutdown waited until the peer
//     had taken every one (Written(peer) - base >= Moved). A spilled
//     direction waits the same before the worker writes to the peer, so
//     bytes never overtake each other.
//   - Bytes queued on a socket's own psock queue are dropped when it leaves
//     the sockmap, and bytes can always arrive between a last read and the
//     removal: paired sockets stay in it until they close. A paired session
//     handed to another worker (HUP, USR2) takes the maps along: their fds
//     go with it (Fds, Open), the program stays attached to the sockmap,
//     and the new worker keeps them until their last session ends.
//   - Bytes that arrived before the socket entered the map stay in its
//     receive queue until more arrive; setting SO_RCVLOWAT runs the verdict
//     over them at once (Pair does).
//   - Redirected bytes raise no epoll event on the source: the worker hears
//     of a paired socket only for its FIN, an error, urgent data (which goes
//     on inline, in order, as without accel) and spilled bytes.
//   - A 6.18.44 kernel now and then runs the verdict twice over the same
//     bytes under sustained bulk (Moved exceeds what TCP received on the
//     source): the worker checks each paired session as it ends and stops
//     pairing in that worker on a surplus (worker.kernelDuplicated).
//   - Written is the data bytes that entered a socket (TCP_INFO: bytes sent
//     less retransmitted, plus not yet sent): bytes_acked counts a
//     connecting socket's SYN and not an accepted one's.
package accel
