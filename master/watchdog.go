package master

import (
	"time"

	"g6/ipc"
)

// A worker's loop answers its control channel between batches, so a worker
// that answers nothing for watchdogTimeout is not serving either: it is
// stopped, wedged, or has lost the channel (a worker whose control fd was
// closed under it reads clients as its master). The master kills it and the
// slot is respawned on the same sockets. Long before that, a ping
// unanswered for steerLate takes the worker out of steering (steering.go)
// until it answers.
const (
	watchdogEvery   = 500 * time.Millisecond
	watchdogTimeout = 5 * time.Second
	steerLate       = 250 * time.Millisecond
)

// watchWorker pings w until it exits; a ping unanswered for steerLate is
// reported on late (and again once answered), the first one left
// unanswered for watchdogTimeout reports w on stuck.
func watchWorker(w *workerProc, stuck chan<- *workerProc, late chan<- lateEvent) {
	t := time.NewTicker(watchdogEvery)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
		}
		answer := make(chan error, 1)
		go ping(w, answer)
		var err error
		select {
		case err = <-answer:
		case <-time.After(steerLate):
			report(late, lateEvent{w: w, late: true}, w.done)
			if err = <-answer; err == nil {
				report(late, lateEvent{w: w, late: false}, w.done)
			}
		}
		if err != nil {
			report(stuck, w, w.done)
			return
		}
	}
}

// ping asks w for a sign of life, answering on out.
func ping(w *workerProc, out chan<- error) {
	_, err := w.request(ipc.TypePing, nil, watchdogTimeout)
	out <- err
}

// report sends v to the loop unless w has exited meanwhile.
func report[T any](to chan<- T, v T, done <-chan struct{}) {
	select {
	case to <- v:
	case <-done:
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
