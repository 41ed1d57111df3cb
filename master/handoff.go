package master

import (
	"fmt"
	"net"
	"time"

	"g6/ipc"

	"golang.org/x/sys/unix"
)

// Session handoff (issue #19): when a generation gives way to another (a
// reload, or this master's USR2 successor), each of its workers gets a
// handoff channel to a worker of the next one: old slot i → new slot
// i % n, one socketpair per old worker, so each channel has one sender.
// The master only makes and passes the channels (TypeDrain with Handoff,
// TypeAdopt, one fd each); the sessions go worker to worker. On USR2 the
// new master makes them, once its workers are ready, and passes the old
// ends up with its "ready" (readyHandoff); the old master hands them to its
// workers as it drains. Off with handoff = false on either side, or when
// the old master offers none (an older g6, or G6).

// readyHandoff is what a new master writes on its ready socket when fds of
// handoff channels come with it, one per old worker in slot order.
const readyHandoff = "ready handoff\n"

// handoffPairs makes one channel per live worker of old to a worker of to
// and sends the new ends (TypeAdopt); it returns the old ends by worker.
// A worker it cannot reach gets none, and its sessions drain.
func (m *Master) handoffPairs(old, to *generation) map[*workerProc]int {
	out := map[*workerProc]int{}
	if !old.cfg.Global.Handoff || !to.cfg.Global.Handoff {
		return out
	}
	for _, w := range old.workers {
		if w == nil || w.exited {
			continue
		}
		fd, err := m.adoptChannel(to, len(out))
		if err != nil {
			m.log.Error("handoff: no channel; that worker's sessions drain", "slot", w.slot, "err", err)
			continue
		}
		out[w] = fd
	}
	return out
}

// adoptChannel makes the k-th handoff channel into g (to g's worker
// k % n) and returns the end for the old worker.
func (m *Master) adoptChannel(g *generation, k int) (int, error) {
	to := g.workers[k%len(g.workers)]
	if to == nil || to.exited || !to.ready {
		return -1, fmt.Errorf("master: handoff: worker %d of generation %d is not serving", k%len(g.workers), g.id)
	}
	oldEnd, newEnd, err := ipc.Socketpair()
	if err != nil {
		return -1, err
	}
	defer unix.Close(newEnd)
	if err := to.writeFd(ipc.TypeAdopt, nil, newEnd); err != nil {
		unix.Close(oldEnd)
		return -1, err
	}
	return oldEnd, nil
}

// writeFd sends one message with fd attached (SCM_RIGHTS).
func (w *workerProc) writeFd(typ string, body any, fd int) error {
	msg, err := ipc.New(typ, 0, body)
	if err != nil {
		return err
	}
	b, err := ipc.Encode(msg)
	if err != nil {
		return err
	}
	uc, ok := w.conn.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("master: worker %d: its channel passes no fds", w.slot)
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	n, _, err := uc.WriteMsgUnix(b, unix.UnixRights(fd), nil)
	if err == nil && n < len(b) {
		_, err = w.conn.Write(b[n:])
	}
	if err != nil {
		return fmt.Errorf("master: worker %d: %s: %w", w.slot, typ, err)
	}
	return nil
}

// successorChans are the handoff channels for g's workers when this master
// gives way to a USR2 successor: the current generation's live workers in
// slot order, one channel each, as the new master sent them.
func (m *Master) successorChans(g *generation) map[*workerProc]int {
	out := map[*workerProc]int{}
	if g != m.cur {
		return out
	}
	for _, w := range g.workers {
		if w == nil || w.exited {
			continue
		}
		if len(m.successorChannels) == 0 {
			break
		}
		out[w], m.successorChannels = m.successorChannels[0], m.successorChannels[1:]
	}
	closeAll(m.successorChannels) // workers that died since the count was sent
	m.successorChannels = nil
	return out
}
