package worker

import (
	"net/netip"
	"unsafe"

	"g6/conf"

	"golang.org/x/sys/unix"
)

// UDP (issue #36). A UDP rule's listen address is one SO_REUSEPORT UDP
// socket per worker slot, the master's like a TCP listener; the kernel
// spreads datagrams over the group by the four-tuple, so one client's
// datagrams reach one worker. A session is one client address and port on
// one listen address (udpListener.sessions); it gets one connected UDP
// socket to its server, so the server's replies come back on it and go
// out of the listen socket to the client. Datagrams are read and written
// in batches (recvmmsg, sendmmsg) into two preallocated arenas, so no
// datagram allocates: the client side's are sent on as they are read,
// a run of one session's with one sendmmsg; the servers' replies gather
// in the out batch for one listen socket and leave when it is full, when
// a reply for another listen socket comes, or at the end of the loop
// turn (flushUDP).
//
// Sharp edges: UDP sockets are level-triggered (a socket not drained in
// one turn is polled again, so one busy client cannot starve the rest);
// a datagram the kernel will not send now (a full send buffer) is dropped
// and counted, as the network would; a session holds one fd, so
// max_sessions is capped by the open-file limit (newUDP).

// udpBatch is how many datagrams one recvmmsg or sendmmsg moves; udpMax
// is the largest datagram (the IPv6 payload limit rounded up).
const (
	udpBatch = 64
	udpMax   = 64 << 10
	// udpTurns bounds the batches a socket is read for per readiness.
	udpTurns = 4
)

// mmsghdr is the kernel's struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// dgramBatch is one preallocated batch: headers, vectors, addresses and
// an arena of udpBatch buffers of udpMax bytes. The arena's pages are
// touched only as far as datagrams fill them, so small datagrams cost a
// page per slot of resident memory, not 64 KiB.
type dgramBatch struct {
	hdrs  [udpBatch]mmsghdr
	iovs  [udpBatch]unix.Iovec
	names [udpBatch]unix.RawSockaddrAny
	arena []byte
}

func newDgramBatch() *dgramBatch {
	b := &dgramBatch{arena: make([]byte, udpBatch*udpMax)}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.arena[i*udpMax]
		b.iovs[i].SetLen(udpMax)
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.Iovlen = 1
	}
	return b
}

// udpListener is one inherited UDP listen socket and its session table.
type udpListener struct {
	fd        int
	addr      string // as the config spells it (access log, show sessions)
	rule      *rule
	timeout   int64 // a session's idle time, ns (0 = none)
	responses int64 // datagrams from the server per client datagram that end a session (0 = no limit)
	sessions  map[netip.AddrPort]*udpSession
	dead      bool // closed by a drain or no longer usable: out of the epoll set
}

// udpState is a worker's UDP side.
type udpState struct {
	listeners []*udpListener
	live      []*udpSession // each knows its index
	free      []*udpSession // kept for reuse
	ended     []*udpSession // ended in this turn; recycled at reap
	in, out   *dgramBatch   // allocated with the first UDP listener
	outFd     int           // the listen socket the out batch is for
	outN      int           // datagrams waiting in the out batch
	max       int           // max_sessions, capped by the open-file limit
	held      bool          // the listen sockets are not read yet (udphandoff.go)
	holdUntil int64
	noGSO     bool                         // the kernel refused UDP_SEGMENT once
	gso       unix.Msghdr                  // sendGSO's message
	cmsg      [unix.SizeofCmsghdr + 8]byte // its UDP_SEGMENT control message
	sendFail  limitedLog
	full      limitedLog
}

// newUDPListener builds the listener of a UDP address from its rule's
// listen entry.
func newUDPListener(u listenUse) *udpListener {
	resp := u.l.Responses
	if resp == 0 {
		resp = u.cr.Responses
	}
	return &udpListener{fd: -1, addr: u.l.Address, rule: u.rule, timeout: int64(u.l.Timeout), responses: resp,
		sessions: map[netip.AddrPort]*udpSession{}}
}

// adoptUDPListener puts an inherited UDP socket in the epoll set.
func (w *Worker) adoptUDPListener(tmpl *udpListener, fd int) error {
	ln := *tmpl
	ln.fd = fd
	ln.sessions = map[netip.AddrPort]*udpSession{}
	if err := unix.SetNonblock(fd, true); err != nil {
		return err
	}
	if w.udp.in == nil {
		w.udp.in, w.udp.out, w.udp.outFd = newDgramBatch(), newDgramBatch(), -1
	}
	if !w.udp.held {
		if err := w.poll.add(fd, unix.EPOLLIN); err != nil {
			return err
		}
	}
	w.udp.listeners = append(w.udp.listeners, &ln)
	w.bind(fd, &ln)
	return nil
}

// newUDP caps max_sessions by the open-file limit: each session holds a
// socket, and a table that could grow past the fds would fail at socket()
// under load instead of refusing at the door.
func (w *Worker) newUDP(g conf.Global) {
	w.udp.max = int(g.MaxSessions)
	var lim unix.Rlimit
	if len(w.udp.listeners) > 0 && unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur > udpFdReserve {
		if room := int(lim.Cur) - udpFdReserve; w.udp.max > room {
			w.log.Info("UDP sessions capped below max_sessions by the open-file limit (a session holds a socket)",
				"max_sessions", g.MaxSessions, "open_files", lim.Cur, "capped_at", room)
			w.udp.max = room
		}
	}
}

// udpFdReserve is what the UDP session table leaves of the open-file
// limit for TCP sessions, listeners and channels.
const udpFdReserve = 1024

// onEvent reads what is waiting on a UDP listen socket.
func (ln *udpListener) onEvent(w *Worker, ev uint32) {
	b := w.udp.in
	for turn := 0; turn < udpTurns && !ln.dead; turn++ {
		for i := range b.hdrs {
			b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
			b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrAny
			b.iovs[i].SetLen(udpMax)
		}
		n, e := sysRecvmmsg(ln.fd, b.hdrs[:])
		if e != 0 {
			if e != unix.EAGAIN {
				w.warnLimited(&w.acceptFailed, "udp receive failed", "listen", ln.addr, "err", e)
			}
			return
		}
		w.fromClients(ln, n)
		if n < udpBatch {
			return
		}
	}
}

// fromClients sends on the n datagrams just read on ln, each to its
// session's server: runs of one session's datagrams go in one sendmmsg,
// the batch's headers reused (no address: the session socket is
// connected).
func (w *Worker) fromClients(ln *udpListener, n int) {
	b := w.udp.in
	var run *udpSession
	start := 0
	for i := 0; i < n; i++ {
		peer := peerAddr(&b.names[i])
		s := ln.sessions[peer]
		if s == nil {
			s = w.openUDP(ln, peer, &b.names[i], b.hdrs[i].hdr.Namelen)
		}
		if s != nil && s.fd < 0 && !w.connectUDP(s) {
			s = nil
		}
		if s != run {
			w.sendRun(run, start, i)
			run, start = s, i
		}
		if s == nil {
			ln.rule.slot.DatagramsDropped.Add(1)
			continue
		}
		size := int64(b.hdrs[i].n)
		b.iovs[i].SetLen(int(size))
		b.hdrs[i].hdr.Name, b.hdrs[i].hdr.Namelen = nil, 0
		s.dgrams[0]++
		s.bytes[0] += size
		s.active = w.now
	}
	w.sendRun(run, start, n)
}

// sendRun sends datagrams [from, to) of the in batch to s's server.
func (w *Worker) sendRun(s *udpSession, from, to int) {
	if s == nil || from == to {
		return
	}
	hdrs := w.udp.in.hdrs[from:to]
	s.rule.slot.DatagramsFromClient.Add(int64(len(hdrs)))
	for len(hdrs) > 0 {
		var k int
		var e unix.Errno
		if g := w.gsoRun(hdrs); g > 1 {
			k, e = w.sendGSO(s.fd, hdrs[:g])
		} else {
			k, e = sysSendmmsg(s.fd, hdrs)
		}
		if e != 0 {
			if e == unix.ECONNREFUSED {
				// An ICMP error from the server for an earlier datagram,
				// reported instead of sending these: they go to the next
				// server, if one takes the session.
				w.udpServerFailed(s, e)
				if !w.connectUDP(s) {
					s.rule.slot.DatagramsDropped.Add(int64(len(hdrs)))
					return
				}
				continue
			}
			w.warnLimited(&w.udp.sendFail, "udp send to server failed; datagram dropped", "rule", s.rule.id,
				"server", s.server.text, "err", e)
			k = 1 // skip the one that failed
			s.rule.slot.DatagramsDropped.Add(1)
		}
		hdrs = hdrs[k:]
	}
}

// GSO: a run of one session's datagrams of one size (the last may be
// shorter) goes to its server as one UDP_SEGMENT send: one pass through
// the stack for up to udpGSOSegments datagrams, which the kernel cuts
// apart as late as it can. The run's iovecs are consecutive in the batch,
// so the send needs no copy.
const (
	udpGSOSegments = 64    // the kernel's UDP_MAX_SEGMENTS on older kernels
	udpGSOBytes    = 65000 // under the largest IP datagram
)

// gsoRun is how many datagrams at the head of hdrs one UDP_SEGMENT send
// can carry (0 when GSO is off here).
func (w *Worker) gsoRun(hdrs []mmsghdr) int {
	size := hdrs[0].n
	if w.udp.noGSO || size == 0 {
		return 0
	}
	total := uint32(0)
	for k, h := range hdrs {
		if k == udpGSOSegments || total+h.n > udpGSOBytes || h.n > size || h.n == 0 {
			return k
		}
		total += h.n
		if h.n < size {
			return k + 1 // a shorter one ends a GSO send
		}
	}
	return len(hdrs)
}

// sendGSO sends hdrs (a gsoRun) on fd as one UDP_SEGMENT send; it returns
// len(hdrs) when sent. A kernel or device that refuses GSO turns it off
// for this worker and the run goes by sendmmsg.
func (w *Worker) sendGSO(fd int, hdrs []mmsghdr) (int, unix.Errno) {
	u := &w.udp
	h := (*unix.Cmsghdr)(unsafe.Pointer(&u.cmsg[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&u.cmsg[unix.CmsgLen(0)])) = uint16(hdrs[0].n)
	u.gso = unix.Msghdr{Iov: hdrs[0].hdr.Iov, Control: &u.cmsg[0]}
	u.gso.Iovlen = uint64(len(hdrs))
	u.gso.SetControllen(unix.CmsgSpace(2))
	for {
		_, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&u.gso)), unix.MSG_DONTWAIT)
		switch e {
		case 0:
			return len(hdrs), 0
		case unix.EINTR:
			continue
		case unix.EIO, unix.EINVAL, unix.EOPNOTSUPP, unix.ENOPROTOOPT:
			u.noGSO = true
			w.log.Info("UDP GSO refused by the kernel or device; datagrams go one by one", "err", e)
			return sysSendmmsg(fd, hdrs)
		}
		return 0, e
	}
}

// queueReply adds a datagram the out batch holds at index i (read there
// from s's server) to the batch for s's client.
func (w *Worker) queueReply(s *udpSession, i int) {
	o := w.udp.out
	o.names[i] = s.name
	o.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&o.names[i]))
	o.hdrs[i].hdr.Namelen = s.nameLen
	o.iovs[i].SetLen(int(o.hdrs[i].n))
}

// flushUDP sends the out batch's replies. A reply the kernel will not
// take now is dropped and counted: UDP has no backpressure to apply.
func (w *Worker) flushUDP() {
	u := &w.udp
	hdrs := u.out.hdrs[:u.outN]
	for len(hdrs) > 0 {
		k, e := sysSendmmsg(u.outFd, hdrs)
		if e != 0 {
			if e != unix.EAGAIN {
				w.warnLimited(&u.sendFail, "udp send to client failed; datagram dropped", "err", e)
			}
			k = 1
			w.udpDropped(u.outFd)
		}
		hdrs = hdrs[k:]
	}
	for i := range u.out.hdrs[:u.outN] {
		u.out.iovs[i].SetLen(udpMax)
	}
	u.outN = 0
}

// udpDropped counts a reply dropped on listen socket fd.
func (w *Worker) udpDropped(fd int) {
	for _, ln := range w.udp.listeners {
		if ln.fd == fd {
			ln.rule.slot.DatagramsDropped.Add(1)
			return
		}
	}
}

// stopUDPListeners stops reading the UDP listen sockets (a drain). The
// sockets stay open: the sessions left here send their replies to the
// clients from them until they end.
func (w *Worker) stopUDPListeners() {
	for _, ln := range w.udp.listeners {
		if !ln.dead {
			ln.dead = true
			w.poll.del(ln.fd)
		}
	}
}

// stopUDP ends every UDP session and closes the UDP listen sockets: g6
// is stopping (ipc.Drain.Stop).
func (w *Worker) stopUDP() {
	for i := len(w.udp.live) - 1; i >= 0; i-- {
		if s := w.udp.live[i]; !s.closed && !s.handing {
			w.endUDP(s, endShutdown)
		}
	}
	if w.udp.outN > 0 {
		w.flushUDP()
	}
	for _, ln := range w.udp.listeners {
		w.poll.del(ln.fd)
		w.deferClose(ln.fd)
		ln.dead = true
	}
	w.udp.listeners = nil
}

// udpListenerFor is the UDP listener with addr's key, or nil.
func (w *Worker) udpListenerFor(addr string) *udpListener {
	for _, ln := range w.udp.listeners {
		if conf.AddrKey(ln.addr) == conf.AddrKey(addr) {
			return ln
		}
	}
	return nil
}

func sysRecvmmsg(fd int, hdrs []mmsghdr) (int, unix.Errno) {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)),
			unix.MSG_DONTWAIT, 0, 0)
		if e != unix.EINTR {
			return int(n), e
		}
	}
}

func sysSendmmsg(fd int, hdrs []mmsghdr) (int, unix.Errno) {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)),
			unix.MSG_DONTWAIT, 0, 0)
		if e != unix.EINTR {
			return int(n), e
		}
	}
}
