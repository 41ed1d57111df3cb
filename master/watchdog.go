package master

import (
	"time"

	"g6/ipc"
)

// A worker's loop answers its control channel between batches, so a worker
// that answers nothing for watchdogTimeout is not serving either: it is
// stopped, wedged, or has lost the channel (a worker whose control fd was
// closed under it reads clients as its master). The master kills it and the
// slot is respawned on the same sockets.
const (
	watchdogEvery   = time.Second
	watchdogTimeout = 5 * time.Second
)

// watchWorker pings w until it exits; the first ping left unanswered for
// watchdogTimeout reports w on stuck.
func watchWorker(w *workerProc, stuck chan<- *workerProc) {
	t := time.NewTicker(watchdogEvery)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
		}
		if _, err := w.request(ipc.TypePing, nil, watchdogTimeout); err != nil {
			select {
			case stuck <- w:
			case <-w.done:
			}
			return
		}
	}
}

// onStuck kills a worker the watchdog gave up on; its exit respawns it.
func (m *Master) onStuck(w *workerProc) {
	if w.exited {
		return
	}
	m.log.Error("worker stopped answering its control channel; killing it", "gen", w.gen.id,
		"slot", w.slot, "pid", w.pid, "silent_for", watchdogTimeout)
	killProcess(w.pid)
}
