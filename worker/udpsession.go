package worker

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// udpSession is one client address and port on one UDP listen address:
// its socket to the server, counts and deadline. It is a timed (idle
// time) and, through its server socket, a polled.
type udpSession struct {
	ln      *udpListener
	rule    *rule
	peer    netip.AddrPort
	name    unix.RawSockaddrAny // the client's address as sendmmsg takes it
	nameLen uint32
	fd      int     // connected to server; -1 between servers
	server  *server // nil between servers
	search  search
	pattern *client
	ip16    [16]byte
	gen     uint32
	index   int32 // position in udpState.live
	closed  bool
	handing bool // sent to a new worker, its answer awaited; its socket out of the epoll set
	// adopted: handed over by another worker, which may still hold the
	// socket's file: its epoll entry is deleted before the fd closes
	// (entries belong to the file; see session.adopted).
	adopted bool
	reason  endReason
	started int64
	active  int64
	dgrams  [2]int64 // from the client, from the server
	bytes   [2]int64
	counted [2]int64 // of bytes, what the server slot has (publishUDPBytes)
	// lastServer is the server the session last had, for its access-log
	// line when it ended between servers.
	lastServer *server
	// unreachable: the last server failed with an ICMP error; if no other
	// takes the session, it ends "server unreachable".
	unreachable bool
}

// openUDP starts a session for a datagram from a client ln has no session
// for; nil (the datagram dropped) if it is refused.
func (w *Worker) openUDP(ln *udpListener, peer netip.AddrPort, name *unix.RawSockaddrAny, nameLen uint32) *udpSession {
	r := ln.rule
	if w.draining || !peer.IsValid() {
		return nil
	}
	if len(w.udp.live) >= w.udp.max {
		r.slot.SessionsFull.Add(1)
		w.warnLimited(&w.udp.full, "refused: the UDP session table is full (max_sessions)", "listen", ln.addr, "max_sessions", w.udp.max)
		w.refusedUDP(ln, peer, endLimit)
		return nil
	}
	ip16 := peer.Addr().As16()
	client, reason := w.admitClient(r, peer, ip16)
	if client == nil {
		w.refusedUDP(ln, peer, reason)
		return nil
	}
	s := w.newUDPSession()
	s.ln, s.rule, s.peer, s.name, s.nameLen = ln, r, peer, *name, nameLen
	s.pattern, s.ip16 = client, ip16
	w.beginSearch(&s.search, r, peer)
	if !w.connectUDP(s) {
		return nil
	}
	ln.sessions[peer] = s
	if ln.timeout > 0 {
		// The first look comes early (onTimer pushes the real deadline):
		// an entry lives in the heap until it is due, and a DNS load ends
		// its sessions at once, so entries at a 30 s idle time would pile
		// up by the million.
		w.timers.push(timerEntry{at: w.now + min(ln.timeout, udpFirstLook), t: s, gen: s.gen})
	}
	return s
}

// udpFirstLook is when a new UDP session's idle timer first fires.
const udpFirstLook = int64(time.Second)

// refusedUDP logs a datagram refused before it became a session.
func (w *Worker) refusedUDP(ln *udpListener, peer netip.AddrPort, reason endReason) {
	if w.access != nil {
		w.access.refusedUDP(w, ln, peer.String(), reason)
	}
}

func (w *Worker) newUDPSession() *udpSession {
	u := &w.udp
	var s *udpSession
	if n := len(u.free); n > 0 {
		s = u.free[n-1]
		u.free = u.free[:n-1]
	} else {
		s = &udpSession{search: search{order: make([]int, 0, 8)}}
	}
	*s = udpSession{gen: s.gen + 1, search: search{order: s.search.order[:0]}, fd: -1,
		started: w.now, active: w.now, index: int32(len(u.live))}
	u.live = append(u.live, s)
	return s
}

// connectUDP gives s a socket connected to the next server of its walk;
// false (the session ended, no server) if none takes it.
func (w *Worker) connectUDP(s *udpSession) bool {
	r := s.rule
	for {
		srv := w.nextServer(&s.search, r, s.peer, s.started)
		if srv == nil {
			break
		}
		fd, ok := w.dial(r, srv, unix.SOCK_DGRAM, s.peer)
		if fd < 0 {
			if ok {
				continue
			}
			w.endUDP(s, endError)
			return false
		}
		if err := w.poll.add(fd, unix.EPOLLIN); err != nil {
			sysClose(fd)
			srv.slot.Release(w.counter)
			w.endUDP(s, endError)
			return false
		}
		s.fd, s.server, s.lastServer, s.unreachable = fd, srv, srv, false
		w.bind(fd, s)
		// A datagram service has no handshake: the session counts as
		// connected at once.
		srv.slot.Total.Add(1)
		r.slot.Connections.Add(1)
		if s.search.tier == tierPanic {
			srv.slot.Readmit(w.now)
		}
		return true
	}
	w.log.Debug("no server available", "rule", r.id, "client", s.peer)
	r.slot.NoServer.Add(1)
	if s.unreachable {
		w.endUDP(s, endServerUnreachable)
	} else {
		w.endUDP(s, endNoServer)
	}
	return false
}

// onEvent reads the replies waiting on the session's server socket into
// the out batch.
func (s *udpSession) onEvent(w *Worker, _ uint32) {
	u := &w.udp
	for turn := 0; turn < udpTurns && !s.closed && s.fd >= 0; turn++ {
		if u.outN > 0 && u.outFd != s.ln.fd || u.outN == udpBatch {
			w.flushUDP()
		}
		u.outFd = s.ln.fd
		o := u.out
		room := o.hdrs[u.outN:]
		if s.ln.responses > 0 {
			room = room[:max(min(int64(len(room)), s.expected()-s.dgrams[1]), 1)]
		}
		for i := range room {
			room[i].hdr.Name, room[i].hdr.Namelen = nil, 0
		}
		n, e := sysRecvmmsg(s.fd, room)
		if e != 0 {
			if e == unix.ECONNREFUSED {
				w.udpServerFailed(s, e)
			}
			return
		}
		var size int64
		for i := u.outN; i < u.outN+n; i++ {
			w.queueReply(s, i)
			size += int64(o.hdrs[i].n)
		}
		u.outN += n
		s.dgrams[1] += int64(n)
		s.bytes[1] += size
		s.active = w.now
		s.rule.slot.DatagramsFromServer.Add(int64(n))
		if s.ln.responses > 0 && s.dgrams[1] >= s.expected() {
			w.endUDP(s, endResponses)
			return
		}
		if n < len(room) {
			return
		}
	}
}

// expected is how many datagrams the server owes the session: responses
// for each the client sent (nginx's proxy_responses), so a client with
// several queries in flight on one port gets every answer.
func (s *udpSession) expected() int64 { return s.ln.responses * s.dgrams[0] }

// udpServerFailed handles an ICMP error (ECONNREFUSED: port unreachable)
// on s's server socket: the server failed as a refused connect would, and
// the session's next datagram goes to the next server of its walk.
func (w *Worker) udpServerFailed(s *udpSession, e unix.Errno) {
	w.serverFailed(s.rule, s.server, e)
	w.publishUDPBytes(s)
	w.dropUDPServer(s)
	s.unreachable = true
}

// dropUDPServer closes s's server socket and gives the server's count
// back.
func (w *Worker) dropUDPServer(s *udpSession) {
	if s.server == nil {
		return
	}
	s.server.slot.Release(w.counter)
	if s.adopted {
		w.poll.del(s.fd)
	}
	w.deferClose(s.fd)
	s.fd, s.server = -1, nil
	s.counted = [2]int64{}
}

// onTimer ends the session once it has been idle for its listen entry's
// timeout; an earlier entry of a session active since is pushed again.
func (s *udpSession) onTimer(w *Worker, gen uint32) {
	if s.gen != gen || s.closed {
		return
	}
	if d := s.active + s.ln.timeout; d > w.now {
		w.timers.push(timerEntry{at: d, t: s, gen: s.gen})
		return
	}
	w.endUDP(s, endIdle)
}

// endUDP is the one way a UDP session ends here: its line written, counts
// given back, its socket closed after the batch, recycled at reap.
func (w *Worker) endUDP(s *udpSession, reason endReason) {
	if s.closed {
		return
	}
	if s.reason == endUnknown {
		s.reason = reason
	}
	if w.access != nil {
		w.access.udpSession(w, s)
	}
	w.leaveUDP(s)
	if s.server != nil {
		s.server.slot.Duration.Observe(w.now - s.started)
	}
	w.publishUDPBytes(s)
	w.dropUDPServer(s)
}

// leaveUDP takes s out of the table and its client's place under the
// limits back; its server stays (endUDP drops it, a handoff hands it).
func (w *Worker) leaveUDP(s *udpSession) {
	s.closed = true
	if s.ln.sessions[s.peer] == s {
		delete(s.ln.sessions, s.peer)
	}
	if s.pattern != nil {
		w.unadmit(s.rule, s.pattern, s.ip16)
		s.pattern = nil
	}
	w.udp.ended = append(w.udp.ended, s)
}

// publishUDPBytes adds what s carried since the last call to its server
// slot's and rule's byte totals.
func (w *Worker) publishUDPBytes(s *udpSession) {
	if s.server == nil {
		return
	}
	if d := s.bytes[1] - s.counted[1]; d != 0 {
		s.server.slot.FromServer.Add(d)
		s.rule.slot.FromServer.Add(d)
	}
	if d := s.bytes[0] - s.counted[0]; d != 0 {
		s.server.slot.FromClient.Add(d)
		s.rule.slot.FromClient.Add(d)
	}
	s.counted = s.bytes
}

// udpKeepPooled is how many ended UDP sessions are kept for reuse: a DNS
// load starts and ends a session per query, a batch's worth per turn.
const udpKeepPooled = 1024

// reapUDP recycles the UDP sessions that ended in this batch.
func (w *Worker) reapUDP() {
	u := &w.udp
	for _, s := range u.ended {
		last := u.live[len(u.live)-1]
		u.live[s.index] = last
		last.index = s.index
		u.live[len(u.live)-1] = nil
		u.live = u.live[:len(u.live)-1]
		s.ln, s.rule, s.server, s.lastServer, s.search.servers = nil, nil, nil, nil, nil
		if len(u.free) < udpKeepPooled {
			u.free = append(u.free, s)
		}
	}
	clear(u.ended)
	u.ended = u.ended[:0]
}

// sweepUDP publishes the bytes of live UDP sessions and ends those whose
// server's drain deadline passed (sweepDrains).
func (w *Worker) sweepUDP() int {
	n := 0
	for i := len(w.udp.live) - 1; i >= 0; i-- {
		s := w.udp.live[i]
		if s.closed || s.handing || s.server == nil {
			continue
		}
		w.publishUDPBytes(s)
		if s.server.slot.DrainOver(w.now) {
			w.endUDP(s, endServerGone)
			n++
		}
	}
	return n
}
