package worker

import (
	"fmt"
	"os"

	"g6/ipc"

	"golang.org/x/sys/unix"
)

// control is the worker's end of the master's socketpair, non-blocking in
// the loop. Replies that do not fit the socket wait in out.
type control struct {
	fd  int
	dec ipc.Decoder
	out []byte
	buf []byte
}

func (w *Worker) onControl(ev uint32) {
	c := &w.ctrl
	if ev&unix.EPOLLOUT != 0 {
		w.flushControl()
	}
	for {
		n, e := sysRead(c.fd, c.buf)
		if e == unix.EAGAIN {
			break
		}
		if e != 0 || n == 0 {
			// The master is gone: stop taking connections, finish what we
			// have, then exit (no orphan serving forever, docs/g6-differences.md B28).
			w.log.Warn("master channel closed; draining")
			w.startDrain(w.drainTimeout)
			w.poll.del(c.fd)
			return
		}
		c.dec.Feed(c.buf[:n])
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

func (w *Worker) handle(m ipc.Message) {
	switch m.Type {
	case ipc.TypeDrain:
		d, err := ipc.DecodeBody[ipc.Drain](m)
		if err == nil && d.Timeout <= 0 {
			err = fmt.Errorf("ipc: drain: timeout %d ns", d.Timeout)
		}
		if err != nil {
			w.log.Error("refused message from master", "type", m.Type, "err", err)
			return
		}
		w.startDrain(d.Timeout)
	case ipc.TypeStop:
		w.stopping = true
	case ipc.TypeReopen:
		w.reopenLog()
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
	c := &w.ctrl
	for len(c.out) > 0 {
		n, e := sysWrite(c.fd, c.out)
		if e != 0 {
			return // EAGAIN: EPOLLOUT brings us back; other errors: onControl sees EOF
		}
		c.out = c.out[n:]
	}
	c.out = nil
}

// sessionList describes every live session for show sessions.
func (w *Worker) sessionList() ipc.Sessions {
	out := make(ipc.Sessions, 0, len(w.live))
	pid := os.Getpid()
	for _, s := range w.live {
		if s.state == stateClosed || s.state == stateFree {
			continue
		}
		is := ipc.Session{Rule: s.rule.id, Client: s.peer.String(), Listen: s.ln.addr, State: "connected",
			Worker: w.slot, Pid: pid, Age: float64(w.now-s.started) / 1e9, FromClient: s.c.bytes, FromServer: s.b.bytes}
		if l := s.look; l != nil {
			is.SNI = l.sni
			if l.via.IsValid() {
				is.Via = l.via.String()
			}
		}
		switch s.state {
		case stateInspecting:
			is.State = "inspecting"
		case stateConnecting:
			is.State = "connecting"
		case stateFlushing:
			is.State = "flushing"
		}
		if s.server != nil {
			is.Server = s.server.text
		}
		out = append(out, is)
	}
	return out
}
