package master

import (
	"errors"
	"time"

	"g6/ipc"
)

// A worker's loop answers its control channel between batches, so a worker
// that answers nothing for watchdogTimeout is not serving either: it is
// stopped or wedged. The master kills it and the slot is respawned on the
// same sockets. Silence is counted from the ping, which is sent only once
// the worker has reported ready and answered the one before. A channel
// that fails (the worker closed it) is not silence: a worker that finished
// its drain closes it on its way out, so the watchdog waits watchdogTimeout
// for the exit and kills only a worker still there after it (one that lost
// its channel and would otherwise serve on, unsupervised). Long before
// that, a ping unanswered for steerLate takes the worker out of steering
// (steering.go) until it answers.
const (
	watchdogEvery   = 500 * time.Millisecond
	watchdogTimeout = 5 * time.Second
	steerLate       = 250 * time.Millisecond
)

// watchWorker pings w until it exits; a ping unanswered for steerLate is
// reported on late (and again once answered), the first one left
// unanswered for watchdogTimeout reports w on stuck.
func watchWorker(w *workerProc, stuck chan<- stuckEvent, late chan<- lateEvent) {
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
		if err == nil {
			continue
		}
		silent := stuckEvent{w: w, silent: watchdogTimeout, err: err}
		if !errors.Is(err, errNoAnswer) {
			select {
			case <-w.done:
				return // it exited: its exit is handled as any other
			case <-time.After(watchdogTimeout):
			}
			silent.silent += watchdogTimeout
		}
		report(stuck, silent, w.done)
		return
	}
}

// stuckEvent is a worker the watchdog gave up on, silent for that long.
type stuckEvent struct {
	w      *workerProc
	silent time.Duration
	err    error
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
func (m *Master) onStuck(ev stuckEvent) {
	w := ev.w
	if w.exited {
		return
	}
	m.log.Error("worker stopped answering its control channel; killing it", "gen", w.gen.id,
		"slot", w.slot, "pid", w.pid, "draining", w.gen.draining, "age", time.Since(w.started).Round(time.Millisecond),
		"silent_for", ev.silent, "err", ev.err)
	killProcess(w.pid)
}
