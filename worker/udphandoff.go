package worker

import (
	"net/netip"
	"time"

	"g6/ipc"

	"golang.org/x/sys/unix"
)

// UDP sessions move to the next generation with the TCP ones, on the same
// handoff channel, and first: a sender's first batches carry its UDP
// sessions (the socket connected to the server goes along; the listen
// socket is the same in both workers), the last of them saying UDPDone.
// The receiver reads its UDP listen sockets only once every channel it
// has said UDPDone, or after udpHoldMax (a sender that died, an older g6
// without UDP, a generation with more workers than channels): until then
// the old worker reads them, and what arrives between its drain and the
// release waits in the socket's buffer, so a client's next datagram finds
// its session here instead of starting one to another server.

// udpHoldMax bounds how long a new worker leaves its UDP listen sockets
// unread waiting for handed sessions.
const udpHoldMax = int64(2 * time.Second)

// HandoffUDPMax bounds the UDP sessions of one batch: one fd each.
const handoffUDPMax = 200

// handUDP sends the next batch of UDP sessions on h; the one that leaves
// none behind says UDPDone, even if it is empty.
func (w *Worker) handUDP(h *handChan) {
	batch := ipc.HandoffBatch{Version: ipc.HandoffVersion, Seq: h.seq + 1}
	var fds []int
	left := false
	for _, s := range w.udp.live {
		if s.closed || s.handing || s.server == nil || h.udpRefused[s] == s.gen {
			continue
		}
		if len(batch.UDP) == handoffUDPMax {
			left = true
			break
		}
		s.handing = true
		w.poll.del(s.fd)
		batch.UDP = append(batch.UDP, ipc.HandedUDP{Rule: s.rule.id, Listen: s.ln.addr, Server: s.server.text,
			Client: s.peer.String(), Started: s.started, Active: s.active, Datagrams: s.dgrams, Bytes: s.bytes, Counted: s.counted})
		fds = append(fds, s.fd)
		h.udpBatch = append(h.udpBatch, s)
	}
	batch.UDPDone = !left
	h.udpSent = !left
	h.batch = []*session{} // in flight (handing), with no TCP session
	w.sendBatch(h, batch, fds)
}

// settleUDP settles the UDP sessions of the batch in flight: taken ones
// are forgotten here (the new worker writes their line), refused ones
// come back.
func (w *Worker) settleUDP(h *handChan, refused []int) {
	no := make(map[int]bool, len(refused))
	for _, i := range refused {
		no[i] = true
	}
	for i, s := range h.udpBatch {
		if no[i] {
			h.udpRefused[s] = s.gen
			w.resumeUDP(s)
			continue
		}
		s.handing = false
		w.leaveUDP(s)
		s.server.slot.Release(w.counter)
		w.deferClose(s.fd) // out of the epoll set since it was handed
		s.fd, s.server = -1, nil
		h.handed++
	}
	clear(h.udpBatch)
	h.udpBatch = h.udpBatch[:0]
}

// resumeUDP takes back a UDP session that was not handed over.
func (w *Worker) resumeUDP(s *udpSession) {
	s.handing = false
	if err := w.poll.add(s.fd, unix.EPOLLIN); err != nil {
		w.endUDP(s, endError)
		return
	}
	if s.ln.timeout > 0 {
		w.timers.push(timerEntry{at: s.active + s.ln.timeout, t: s, gen: s.gen})
	}
}

// adoptUDP builds a UDP session from a handed one on fd, counted and in
// its listener's table but not yet polled (startUDP, once the answer is
// sent); nil if this worker cannot serve it.
func (w *Worker) adoptUDP(hu *ipc.HandedUDP, fd int) *udpSession {
	ln := w.udpListenerFor(hu.Listen)
	if ln == nil || ln.rule.id != hu.Rule {
		return nil
	}
	peer, srv, client, ok := w.adoptPlace(ln.rule, hu.Client, hu.Server)
	if !ok || ln.sessions[peer] != nil {
		return nil // a session for the client began here already: it stays
	}
	s := w.newUDPSession()
	s.ln, s.rule, s.peer, s.pattern, s.ip16 = ln, ln.rule, peer, client, peer.Addr().As16()
	s.name, s.nameLen = rawSockaddrOf(peer)
	s.fd, s.server, s.lastServer, s.adopted = fd, srv, srv, true
	s.started, s.active, s.dgrams, s.bytes, s.counted = hu.Started, hu.Active, hu.Datagrams, hu.Bytes, hu.Counted
	w.beginSearch(&s.search, ln.rule, peer) // its next server, if this one fails
	ln.sessions[peer] = s
	return s
}

// startUDP polls an adopted UDP session's socket and arms its idle timer.
func (w *Worker) startUDP(s *udpSession) {
	if err := w.poll.add(s.fd, unix.EPOLLIN); err != nil {
		w.log.Warn("epoll add of an adopted UDP session", "err", err)
		w.endUDP(s, endError)
		return
	}
	w.bind(s.fd, s)
	if s.ln.timeout > 0 {
		w.timers.push(timerEntry{at: s.active + s.ln.timeout, t: s, gen: s.gen})
	}
}

// forgetUDP drops an adopted UDP session whose answer could not be sent:
// the old worker goes on with it.
func (w *Worker) forgetUDP(s *udpSession) {
	w.leaveUDP(s)
	s.server.slot.Release(w.counter)
	sysClose(s.fd) // never polled here
	s.fd, s.server = -1, nil
}

// holdUDP starts a worker with its UDP listen sockets unread while an
// older generation hands its sessions over.
func (w *Worker) holdUDP(on bool) {
	w.udp.held = on
	w.udp.holdUntil = w.now + udpHoldMax
}

// releaseUDP starts reading the UDP listen sockets once every handoff
// channel has handed its UDP sessions, or at udpHoldMax.
func (w *Worker) releaseUDP() {
	if !w.udp.held {
		return
	}
	if w.now < w.udp.holdUntil {
		if len(w.adopts) == 0 {
			return
		}
		for _, h := range w.adopts {
			if !h.udpDone {
				return
			}
		}
	}
	w.udp.held = false
	for _, ln := range w.udp.listeners {
		if ln.dead {
			continue
		}
		if err := w.poll.add(ln.fd, unix.EPOLLIN); err != nil {
			w.log.Error("udp listen socket not polled", "listen", ln.addr, "err", err)
			ln.dead = true
		}
	}
	w.log.Debug("reading UDP listen sockets", "adopted_udp_sessions", len(w.udp.live),
		"waited_ms", (w.now-w.udp.holdUntil+udpHoldMax)/int64(time.Millisecond))
}

// rawSockaddrOf is peer in the kernel's form.
func rawSockaddrOf(peer netip.AddrPort) (unix.RawSockaddrAny, uint32) {
	fam := family(peer)
	ip := peer.Addr().As16()
	b := ip[:]
	if fam == unix.AF_INET {
		b = b[12:]
	}
	return rawSockaddr(fam, b, peer.Port())
}
