package worker

import (
	"net/netip"
	"os"
	"strconv"

	"g6/accel"
	"g6/conf"
	"g6/ipc"
)

// Adopting sessions (issue #19, the receiving side; handoff.go sends).
// A batch is answered before any of its fds is touched: a session is taken
// when its rule (by id), its server (by address, among the rule's current
// servers) and a client pattern that admits it are found here, and the
// worker is not draining (or passes its sessions on); its counts are taken without limits (it was
// admitted once; the sender gives its own back on the answer). Taken
// sessions then join the epoll set with both sockets marked ready, their
// unsent bytes pending, and go on as if they had always been here: start
// time, byte counts and idle deadline are the handed ones, so show sessions
// and the one access-log line cover the session's whole life.

// passingOn reports whether this worker, draining, hands its sessions
// to a newer one: then it still takes the batches of an older worker and
// passes them on (a reload right after an upgrade, or the reverse, makes
// such a chain), and does not exit while an older worker may still send
// some (relaying).
func (w *Worker) passingOn() bool { return w.handoff != nil && w.handoff.fd >= 0 }

func (w *Worker) relaying() bool { return w.draining && w.passingOn() && len(w.adopts) > 0 }

// adoptFrom starts taking sessions from channel fd (TypeAdopt).
func (w *Worker) adoptFrom(fd int) {
	h, err := w.openChannel(fd, false)
	if err != nil {
		w.log.Error("handoff channel unusable; its sessions stay with the old worker", "err", err)
		return
	}
	w.adopts = append(w.adopts, h)
}

// adoptBatch answers one batch and takes the sessions it can.
func (w *Worker) adoptBatch(h *handChan, m ipc.Message) {
	if w.dieOnAdopt {
		w.log.Error("G6_TEST_DIE_ON_ADOPT: exiting before answering a handoff batch")
		os.Exit(3)
	}
	b, err := ipc.DecodeBody[ipc.HandoffBatch](m)
	n := 2 * len(b.Sessions)
	if b.Maps {
		n += 3
	}
	udpAt := n // the UDP sessions' fds follow
	n += len(b.UDP)
	fds, ok := h.take(n)
	ack := ipc.HandoffAck{Seq: b.Seq}
	var maps *accel.Pairs
	if ok && b.Maps {
		maps = w.openHandedMaps([3]int(fds[2*len(b.Sessions):]))
	}
	switch {
	case err != nil:
		ack.Error = err.Error()
	case !ipc.HandoffReads(b.Version):
		ack.Error = "session format " + strconv.Itoa(b.Version) + ", this worker reads " + strconv.Itoa(ipc.HandoffVersion)
	case !ok:
		ack.Error = "the sessions' fds did not arrive (fd table full?)"
	case w.stopping || w.draining && !w.passingOn():
		ack.Error = "this worker is draining"
	}
	var taken []*session
	for i := range b.Sessions {
		var s *session
		if ack.Error == "" {
			s = w.adopt(&b.Sessions[i], fds[2*i], fds[2*i+1], maps)
		}
		if s == nil {
			ack.Refused = append(ack.Refused, i)
			if ok {
				sysClose(fds[2*i]) // the sender keeps its own copies
				sysClose(fds[2*i+1])
			}
			continue
		}
		taken = append(taken, s)
	}
	var takenUDP []*udpSession
	for i := range b.UDP {
		var s *udpSession
		if ack.Error == "" {
			s = w.adoptUDP(&b.UDP[i], fds[udpAt+i])
		}
		if s == nil {
			ack.RefusedUDP = append(ack.RefusedUDP, i)
			if ok {
				sysClose(fds[udpAt+i])
			}
			continue
		}
		takenUDP = append(takenUDP, s)
	}
	reply, _ := ipc.New(ipc.TypeHandoffAck, 0, ack)
	if err := h.queue(reply); err != nil {
		// The sender is gone or will resume them: they are not ours.
		w.log.Error("handoff answer not sent; sessions left to the old worker", "err", err, "sessions", len(taken)+len(takenUDP))
		for _, s := range taken {
			w.teardown(s, goesOn) // the old worker goes on with it
		}
		for _, s := range takenUDP {
			w.forgetUDP(s)
		}
		w.channelClosed(h, err)
		return
	}
	// A sender of format 2 has no UDP sessions to hand.
	h.udpDone = h.udpDone || b.UDPDone || b.Version == 2
	for _, s := range takenUDP {
		w.startUDP(s)
	}
	if !ok {
		w.channelClosed(h, errStreamClosed) // the fd order is lost
	}
	if maps != nil && maps != w.sockmap && maps.Users == 0 {
		maps.Close() // none of its sessions was taken
	}
	for _, s := range taken {
		w.start(s)
	}
	if len(taken) > 0 && w.draining {
		w.handoff.done = false // passed on in the next batches
	}
	if len(taken)+len(takenUDP) > 0 {
		w.log.Debug("sessions adopted", "sessions", len(taken), "refused", len(ack.Refused),
			"udp_sessions", len(takenUDP), "udp_refused", len(ack.RefusedUDP))
	}
}

// openHandedMaps opens the maps a batch brought, or finds them among those
// this worker has (its own, or handed before); nil if they cannot be used
// (the batch's paired sessions are refused then).
func (w *Worker) openHandedMaps(fds [3]int) *accel.Pairs {
	maps, err := accel.Open(fds)
	if err != nil {
		w.log.Error("handed sockmap unusable; its paired sessions stay with the old worker", "err", err)
		return nil
	}
	live := w.handedMaps[:0]
	for _, q := range w.handedMaps {
		if !q.Closed() {
			live = append(live, q)
		}
	}
	w.handedMaps = live
	for _, q := range append(w.handedMaps, w.sockmap) {
		if q != nil && !q.Closed() && q.Same(maps) {
			maps.Close()
			return q
		}
	}
	w.handedMaps = append(w.handedMaps, maps)
	return maps
}

// adopt builds a session from a handed one, counts it and returns it, or
// nil if this worker cannot serve it. A paired one needs maps, its maps.
func (w *Worker) adopt(hs *ipc.HandedSession, cfd, bfd int, maps *accel.Pairs) *session {
	r := w.ruleByID(hs.Rule)
	if r == nil || hs.Accel != nil && maps == nil {
		return nil
	}
	ln := w.listenerFor(r, hs.Listen)
	if ln == nil {
		return nil
	}
	peer, srv, client, ok := w.adoptPlace(r, hs.Client, hs.Server)
	if !ok {
		return nil
	}
	ip16 := peer.Addr().As16()
	s := w.newSession()
	s.state = stateHanding // registered by start, once the answer is sent
	s.adopted = true
	s.rule, s.ln, s.peer, s.server, s.pattern, s.ip16 = r, ln, peer, srv, client, ip16
	s.started, s.active, s.counted = hs.Started, hs.Active, hs.Counted
	s.rtStart, s.rtDone, s.reason = hs.RTStart, hs.RTDone, parseEndReason(hs.Reason)
	w.adoptEnd(&s.front, cfd, &hs.C)
	w.adoptEnd(&s.back, bfd, &hs.B)
	if hs.SNI != "" || hs.Via != "" || hs.Timeout != 0 {
		l := w.getInspection(s)
		l.sni, l.timeout = hs.SNI, hs.Timeout
		l.via, _ = netip.ParseAddrPort(hs.Via)
	}
	if ha := hs.Accel; ha != nil {
		a := w.getPairing()
		*a = pairing{maps: maps, pair: accel.Pair{Slot: ha.Slots, Cookie: ha.Cookies}, dir: ha.Dir, poll: ha.Poll,
			base: ha.Base, recvOff: ha.RecvOff, folded: ha.Folded}
		maps.Users++
		s.paired = a
		s.noPair = true
		s.front.noSplice, s.back.noSplice = true, true
		s.quietKernelDirs()
		if a.dir != [2]uint8{dirKernel, dirKernel} || a.poll != [2]bool{} {
			a.checkWait, a.checkAt = checkFirst, w.now // a drain or a poll the old worker had due
		}
	}
	return s
}

// adoptPlace finds a handed session's server (by address, among r's
// current servers) and a client pattern that admits it, and takes its
// counts without limits (it was admitted once; the sender gives its own
// back on the answer); false if this worker cannot serve it.
func (w *Worker) adoptPlace(r *rule, clientText, serverText string) (netip.AddrPort, *server, *client, bool) {
	r.refresh(w.region)
	var srv *server
	for _, sv := range r.servers {
		if sv.text == serverText {
			srv = sv
			break
		}
	}
	peer, err := netip.ParseAddrPort(clientText)
	if srv == nil || err != nil {
		return peer, nil, nil, false
	}
	ip16 := peer.Addr().As16()
	client := r.match(peer.Addr(), peer.Addr().AppendTo(w.ipText[:0]), strconv.AppendUint(w.portText[:0], uint64(peer.Port()), 10))
	if client == nil || client.deny {
		return peer, nil, nil, false
	}
	if client.limited {
		w.region.Adopt(client.slot, ip16, w.counter, &client.limits)
	}
	if t := r.total; t != nil {
		w.region.Adopt(t.slot, ip16, w.counter, &t.limits)
	}
	srv.slot.TryAcquire(w.counter, 0)
	return peer, srv, client, true
}

func (w *Worker) adoptEnd(ep *endpoint, fd int, he *ipc.HandedEnd) {
	ep.fd, ep.bytes = fd, he.Bytes
	ep.rdEOF, ep.wrShut, ep.hup, ep.closeSends = he.RdEOF, he.WrShut, he.Hup, he.CloseSends
	ep.noSplice, ep.urgent = he.NoSplice, he.Urgent
	if len(he.Unsent) > 0 {
		ep.pend, ep.off = he.Unsent, 0
	}
	ep.canRead, ep.canWrite = true, true // EAGAIN corrects them
}

// start puts an adopted session into the epoll set and moves what is
// waiting.
func (w *Worker) start(s *session) {
	s.state = stateEstablished
	for _, ep := range []*endpoint{&s.front, &s.back} {
		if err := w.poll.add(ep.fd, evRead|evWrite|evEdge); err != nil {
			w.log.Warn("epoll add of an adopted session", "err", err)
			w.end(s)
			return
		}
		w.bind(ep.fd, ep)
	}
	if d := w.deadline(s); d > 0 {
		w.timers.push(timerEntry{at: d, t: s, gen: s.gen})
	}
	w.pump(s)
}

// ruleByID is this worker's rule with that id, or nil.
func (w *Worker) ruleByID(id string) *rule {
	for _, r := range w.rules {
		if r.id == id {
			return r
		}
	}
	return nil
}

// listenerFor is the listener a handed session came in on: the one with
// its address, else the rule's first (its idle timeout applies).
func (w *Worker) listenerFor(r *rule, addr string) *listener {
	var first *listener
	for _, ln := range w.listeners {
		if conf.AddrKey(ln.addr) == conf.AddrKey(addr) {
			return ln
		}
		if first == nil && ln.rule == r {
			first = ln
		}
	}
	return first
}
