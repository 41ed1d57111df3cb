package worker

import (
	"fmt"
	"os"

	"g6/ipc"

	"golang.org/x/sys/unix"
)

func (w *Worker) onControl(ev uint32) {
	c := &w.ctrl
	if ev&unix.EPOLLOUT != 0 {
		w.flushControl()
	}
	if err := c.read(); err != nil {
		// The master is gone: stop taking connections, finish what we
		// have, then exit (no orphan serving forever, docs/g6-differences.md B28).
		w.log.Warn("master channel closed; draining", "err", err)
		w.startDrain(w.drainTimeout)
		w.poll.del(c.fd)
		return
	}
	for {
		m, ok, err := c.dec.Next()
		if err != nil {
			w.log.Error("bad message from master", "err", err)
			return
		}
		if !ok {
			return
		}
		w.handle(m)
	}
}

// channelFd claims the fd a message from the master came with; -1 if none
// arrived.
func (w *Worker) channelFd(m ipc.Message) int {
	fds, ok := w.ctrl.take(1)
	if !ok {
		w.log.Error("message from master without its fd", "type", m.Type)
		return -1
	}
	return fds[0]
}

func (w *Worker) handle(m ipc.Message) {
	switch m.Type {
	case ipc.TypeDrain:
		d, err := ipc.DecodeBody[ipc.Drain](m)
		if err == nil && d.Timeout <= 0 {
			err = fmt.Errorf("ipc: drain: timeout %d ns", d.Timeout)
		}
		ch := -1
		if err == nil && d.Handoff {
			ch = w.channelFd(m)
		}
		if err != nil {
			w.log.Error("refused message from master", "type", m.Type, "err", err)
			return
		}
		w.startDrain(d.Timeout)
		if d.Stop {
			w.stopUDP()
		}
		if ch >= 0 {
			w.startHandoff(ch)
		}
	case ipc.TypeAdopt:
		if ch := w.channelFd(m); ch >= 0 {
			w.adoptFrom(ch)
		}
	case ipc.TypeStop:
		w.stopping = true
	case ipc.TypeReopen:
		w.reopenLog()
	case ipc.TypeTickets:
		if k, err := ipc.DecodeBody[ipc.TicketKeys](m); err == nil {
			w.setTicketKeys(k.Keys)
		}
	case ipc.TypeSessions:
		w.reply(m.ID, w.sessionList(), "")
	case ipc.TypePing:
		w.reply(m.ID, nil, "")
	case ipc.TypeShutdown:
		req, err := ipc.DecodeBody[ipc.Shutdown](m)
		if err != nil {
			w.log.Error("refused message from master", "type", m.Type, "err", err)
			w.reply(m.ID, nil, err.Error())
			return
		}
		w.reply(m.ID, ipc.Closed{Sessions: w.shutdownServers(req.Slots)}, "")
	default:
		if m.ID != 0 {
			w.reply(m.ID, nil, "unknown request "+m.Type)
		}
	}
}

// reply answers request id.
func (w *Worker) reply(id uint64, body any, errText string) {
	m, err := ipc.New(ipc.TypeReply, id, body)
	if err != nil {
		errText = err.Error()
	}
	m.Error = errText
	w.sendControl(m)
}

func (w *Worker) sendControl(m ipc.Message) {
	b, err := ipc.Encode(m)
	if err != nil {
		w.log.Error("encode control message", "err", err)
		return
	}
	w.ctrl.out = append(w.ctrl.out, b...)
	w.flushControl()
}

func (w *Worker) flushControl() {
	w.ctrl.flush() // EAGAIN: EPOLLOUT brings us back; other errors: onControl sees EOF
}

// sessionList describes every live session for show sessions.
func (w *Worker) sessionList() ipc.Sessions {
	out := make(ipc.Sessions, 0, len(w.live))
	pid := os.Getpid()
	for _, s := range w.live {
		if s.state == stateClosed || s.state == stateFree {
			continue
		}
		if s.paired != nil {
			w.foldMoved(s)
		}
		is := ipc.Session{Rule: s.rule.id, Protocol: "tcp", Client: s.peer.String(), Listen: s.ln.addr, State: "connected",
			Worker: w.slot, Pid: pid, Age: float64(w.now-s.started) / 1e9, FromClient: s.front.bytes, FromServer: s.back.bytes,
			Path: s.path(), TLS: s.tlsVersion()}
		if l := s.inspection; l != nil {
			is.SNI = l.sni
			if l.via.IsValid() {
				is.Via = l.via.String()
			}
		}
		switch s.state {
		case stateInspecting:
			is.State = "inspecting"
		case stateConnecting, stateOriginating:
			is.State = "connecting"
		case stateFlushing:
			is.State = "flushing"
		case stateHanding:
			is.State = "handing"
		case stateHandshaking:
			is.State = "handshaking"
		}
		if s.server != nil {
			is.Server = s.server.text
		}
		out = append(out, is)
	}
	for _, s := range w.udp.live {
		if s.closed {
			continue
		}
		is := ipc.Session{Rule: s.rule.id, Protocol: "udp", Client: s.peer.String(), Listen: s.ln.addr, State: "connected",
			Worker: w.slot, Pid: pid, Age: float64(w.now-s.started) / 1e9, FromClient: s.bytes[0], FromServer: s.bytes[1],
			DatagramsFromClient: s.dgrams[0], DatagramsFromServer: s.dgrams[1]}
		if s.server != nil {
			is.Server = s.server.text
		} else {
			is.State = "between servers"
		}
		out = append(out, is)
	}
	return out
}
