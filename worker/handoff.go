package worker

import (
	"g6/accel"
	"g6/ipc"

	"golang.org/x/sys/unix"
)

// Handing sessions over (issue #19, the sending side; adopt.go receives).
// A draining worker given a handoff channel sends its established sessions
// to a new worker in batches (ipc.HandoffBatch, at most
// ipc.HandoffBatchMax with their two fds each), one batch in flight at a
// time. A session in a batch is out of the epoll set and owned by nobody
// until the answer comes: taken ones are forgotten here (their counts
// given back, fds closed, no access-log line: the new worker writes it
// when the session ends); refused ones, and every one of a batch whose
// channel closes unanswered (the new worker died, or cannot read this
// format), are resumed and drain here as without handoff. Sessions still
// being read or connecting are handed once established; flushing ones
// (both directions done, the kernel's send queue not yet empty) move too
// and flush on there. A spliced direction's pipe is emptied into the batch, so pipes
// never move.

// handChan is a handoff channel: the sending end (out) or a receiving one.
type handChan struct {
	stream
	out bool
	// UDP (udphandoff.go): the sender's UDP sessions in flight and
	// refused, and whether the last of them went (udpSent); on the
	// receiving end, whether the sender said it handed them all.
	udpBatch   []*udpSession
	udpRefused map[*udpSession]uint32
	udpSent    bool
	udpDone    bool
	seq        uint64
	batch      []*session          // in flight, in the batch's order
	unsent     [][2][]byte         // each batch session's unsent bytes (client, server), to resume with
	refused    map[*session]uint32 // by generation: kept here for good
	handed     int
	carried    int  // unsent bytes that went with them
	done       bool // nothing left to hand; logged once
}

// startHandoff begins handing sessions over on channel fd (TypeDrain with
// Handoff); the worker drains at the same time.
func (w *Worker) startHandoff(fd int) {
	if w.handoff != nil {
		sysClose(fd)
		return
	}
	h, err := w.openChannel(fd, true)
	if err != nil {
		w.log.Error("handoff channel unusable; sessions drain here", "err", err)
		return
	}
	h.refused, h.udpRefused = map[*session]uint32{}, map[*udpSession]uint32{}
	w.handoff = h
	w.log.Info("handing sessions over", "sessions", len(w.live))
	w.handOver()
}

// openChannel registers a handoff channel in the epoll set.
func (w *Worker) openChannel(fd int, out bool) (*handChan, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		sysClose(fd)
		return nil, err
	}
	if err := w.poll.add(fd, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLET); err != nil {
		sysClose(fd)
		return nil, err
	}
	h := &handChan{stream: newStream(fd), out: out}
	w.bind(fd, h)
	return h, nil
}

// closeChannel takes a channel out of the epoll set and closes it.
func (w *Worker) closeChannel(h *handChan) {
	if h.fd < 0 {
		return
	}
	w.fds[h.fd] = nil
	h.close() // closing removes it from the epoll set
}

// handing reports whether a batch awaits its answer: the worker does not
// exit at its drain deadline then, since those sessions are nobody's yet.
func (w *Worker) handing() bool { return w.handoff != nil && w.handoff.batch != nil }

// handOver sends the next batch if none is in flight.
func (w *Worker) handOver() {
	h := w.handoff
	if h == nil || h.batch != nil || h.fd < 0 || h.done {
		return // done: draining, nothing left can become established
	}
	if !h.udpSent {
		w.handUDP(h)
		return
	}
	batch := ipc.HandoffBatch{Version: ipc.HandoffVersion, Seq: h.seq + 1}
	var fds []int
	var maps *accel.Pairs // of the batch's paired sessions: one set per batch
	bytes, waiting, kept := 0, 0, 0
	for _, s := range w.live {
		if len(batch.Sessions) == ipc.HandoffBatchMax || bytes >= ipc.HandoffBytesMax {
			break
		}
		switch s.state {
		case stateClosed, stateFree: // forgotten this turn, not yet reaped
			continue
		case stateInspecting, stateConnecting:
			waiting++
			kept++
			continue
		case stateEstablished, stateFlushing: // a flushing one resumes flushing where it lands (pump → finish)
		default:
			kept++
			continue
		}
		if s.tls != nil { // its keys live in this process: it drains here
			kept++
			continue
		}
		if gen, ok := h.refused[s]; ok && gen == s.gen {
			kept++
			continue
		}
		if s.paired != nil {
			if maps != nil && s.paired.maps != maps {
				waiting++ // paired in other maps (handed here before): a later batch
				continue
			}
			maps = s.paired.maps
		}
		hs, unsent := w.handed(s)
		bytes += len(unsent[0]) + len(unsent[1])
		batch.Sessions = append(batch.Sessions, hs)
		h.batch = append(h.batch, s)
		h.unsent = append(h.unsent, unsent)
		fds = append(fds, s.front.fd, s.back.fd)
	}
	if maps != nil {
		batch.Maps = true
		mf := maps.Fds()
		fds = append(fds, mf[:]...)
	}
	if len(batch.Sessions) == 0 {
		if waiting == 0 && !h.done {
			h.done = true
			w.log.Info("handoff done", "handed", h.handed, "kept", kept, "unsent_bytes", h.carried)
		}
		return
	}
	w.sendBatch(h, batch, fds)
}

// sendBatch queues a batch with its fds; if it cannot go, its sessions
// drain here.
func (w *Worker) sendBatch(h *handChan, batch ipc.HandoffBatch, fds []int) {
	h.seq = batch.Seq
	m, err := ipc.New(ipc.TypeHandoff, 0, batch)
	if err == nil {
		err = h.queue(m, fds...)
	}
	if err != nil {
		w.log.Error("handoff failed; sessions drain here", "err", err)
		w.handoffLost(h)
	}
}

// handed takes s out of the epoll set and describes it for a batch; its
// unsent bytes (client, server) are returned apart, to resume with.
func (w *Worker) handed(s *session) (ipc.HandedSession, [2][]byte) {
	w.poll.del(s.front.fd)
	w.poll.del(s.back.fd)
	s.state = stateHanding
	hs := ipc.HandedSession{
		Rule: s.rule.id, Listen: s.ln.addr, Server: s.server.text, Client: s.peer.String(),
		Started: s.started, Active: s.active, Counted: s.counted, RTStart: s.rtStart, RTDone: s.rtDone, Reason: s.reason.String(),
		C: w.handedEnd(&s.front), B: w.handedEnd(&s.back),
	}
	if l := s.inspection; l != nil {
		hs.SNI, hs.Timeout = l.sni, l.timeout
		if l.via.IsValid() {
			hs.Via = l.via.String()
		}
	}
	if a := s.paired; a != nil {
		// The kernel goes on forwarding while the session moves; the new
		// worker takes the pair as it is, in these maps.
		w.foldMoved(s)
		hs.C.Bytes, hs.B.Bytes = s.front.bytes, s.back.bytes
		hs.Accel = &ipc.HandedAccel{Slots: a.pair.Slot, Cookies: a.pair.Cookie, Dir: a.dir, Poll: a.poll,
			Base: a.base, RecvOff: a.recvOff, Folded: a.folded}
	}
	return hs, [2][]byte{hs.C.Unsent, hs.B.Unsent}
}

// handedEnd describes one socket and takes the bytes waiting for it out
// of its pending buffer or pipe.
func (w *Worker) handedEnd(ep *endpoint) ipc.HandedEnd {
	e := ipc.HandedEnd{Bytes: ep.bytes, RdEOF: ep.rdEOF, WrShut: ep.wrShut, Hup: ep.hup, CloseSends: ep.closeSends,
		NoSplice: ep.noSplice, Urgent: ep.urgent}
	if ep.pend != nil {
		e.Unsent = append(e.Unsent, ep.pend[ep.off:]...)
		w.putBuf(ep)
	}
	if p := ep.pipe; p != nil {
		for p.n > 0 {
			if len(w.scratch) == 0 {
				break
			}
			n, errno := sysRead(p.r, w.scratch[:min(p.n, len(w.scratch))])
			if errno != 0 || n <= 0 {
				break // cannot happen with bytes in the pipe; the pipe is closed, not pooled
			}
			e.Unsent = append(e.Unsent, w.scratch[:n]...)
			p.n -= n
		}
		w.putPipe(ep)
	}
	return e
}

// onEvent handles readiness of a handoff channel, either end.
func (h *handChan) onEvent(w *Worker, ev uint32) {
	if ev&unix.EPOLLOUT != 0 {
		if err := h.flush(); err != nil {
			w.channelClosed(h, err)
			return
		}
	}
	if err := h.read(); err != nil {
		w.channelClosed(h, err)
		return
	}
	for h.fd >= 0 {
		m, ok, err := h.dec.Next()
		if err != nil {
			w.channelClosed(h, err)
			return
		}
		if !ok {
			return
		}
		switch {
		case h.out && m.Type == ipc.TypeHandoffAck:
			w.onHandoffAck(h, m)
		case !h.out && m.Type == ipc.TypeHandoff:
			w.adoptBatch(h, m)
		default:
			w.log.Warn("unexpected message on a handoff channel", "type", m.Type)
		}
	}
}

// channelClosed handles the end of a channel: a sender resumes its batch
// in flight and stops handing over.
func (w *Worker) channelClosed(h *handChan, err error) {
	if h.out {
		if h.batch != nil || !h.done {
			w.log.Warn("handoff channel closed; the sessions left drain here", "err", err, "in_flight", len(h.batch))
		}
		w.handoffLost(h)
		return
	}
	w.closeChannel(h)
	for i, a := range w.adopts {
		if a == h {
			w.adopts = append(w.adopts[:i], w.adopts[i+1:]...)
			break
		}
	}
}

// handoffLost resumes the batch in flight and closes the channel: what is
// left drains here.
func (w *Worker) handoffLost(h *handChan) {
	for i, s := range h.batch {
		w.resume(s, h.unsent[i])
	}
	for _, s := range h.udpBatch {
		w.resumeUDP(s)
	}
	h.batch, h.unsent, h.udpBatch = nil, nil, nil
	w.closeChannel(h)
}

// onHandoffAck settles the batch in flight.
func (w *Worker) onHandoffAck(h *handChan, m ipc.Message) {
	ack, err := ipc.DecodeBody[ipc.HandoffAck](m)
	if err != nil || ack.Seq != h.seq || h.batch == nil {
		w.log.Error("bad handoff answer; the sessions left drain here", "err", err, "seq", ack.Seq, "want", h.seq)
		w.handoffLost(h)
		return
	}
	refused := make(map[int]bool, len(ack.Refused))
	for _, i := range ack.Refused {
		refused[i] = true
	}
	if ack.Error != "" {
		w.log.Warn("the new worker refused a handoff batch; those sessions drain here", "sessions", len(h.batch), "err", ack.Error)
	}
	for i, s := range h.batch {
		if refused[i] {
			h.refused[s] = s.gen
			w.resume(s, h.unsent[i])
			continue
		}
		w.teardown(s, goesOn) // the new worker has it: no line, no bytes here
		h.handed++
		h.carried += len(h.unsent[i][0]) + len(h.unsent[i][1])
	}
	w.settleUDP(h, ack.RefusedUDP)
	w.log.Debug("handoff batch settled", "seq", ack.Seq, "taken", len(h.batch)-len(refused), "refused", len(refused))
	h.batch, h.unsent = nil, nil
}

// resume takes a session back that was not handed over: into the epoll
// set again, its unsent bytes pending again, and on.
func (w *Worker) resume(s *session, unsent [2][]byte) {
	s.state = stateEstablished
	for i, ep := range []*endpoint{&s.front, &s.back} {
		if len(unsent[i]) > 0 {
			ep.pend, ep.off = append(w.getBuf(), unsent[i]...), 0
		}
		ep.canRead, ep.canWrite = true, true // EAGAIN corrects them
		if err := w.poll.add(ep.fd, evRead|evWrite|evEdge); err != nil {
			w.log.Warn("epoll add on resume", "err", err)
			w.end(s)
			return
		}
	}
	if s.paired != nil {
		s.quietKernelDirs()
	}
	if d := w.deadline(s); d > 0 {
		w.timers.push(timerEntry{at: d, t: s, gen: s.gen}) // its entry was dropped while it was away
	}
	w.pump(s)
}
