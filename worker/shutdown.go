package worker

import (
	"slices"
	"time"
)

// shutdownServers closes every live session of the given server slots and
// returns how many it closed.
func (w *Worker) shutdownServers(slots []int) int {
	n := 0
	for i := len(w.live) - 1; i >= 0; i-- {
		s := w.live[i]
		if s.server == nil || s.state == stateClosed || s.state == stateFree || !slices.Contains(slots, s.server.slotIdx) {
			continue
		}
		w.endWith(s, endServerGone)
		n++
	}
	if n > 0 {
		w.log.Info("closed the sessions of servers shut down by the master", "sessions", n, "slots", slots)
	}
	return n
}

// drainSweepEvery is how often the loop looks for drains whose deadline
// has passed; a loop with sessions wakes at least this often (waitTime).
const drainSweepEvery = int64(250 * time.Millisecond)

// sweepDrains closes the sessions of servers whose drain deadline passed.
func (w *Worker) sweepDrains() {
	if w.now < w.sweepAt {
		return
	}
	w.sweepAt = w.now + drainSweepEvery
	n := 0
	for i := len(w.live) - 1; i >= 0; i-- {
		s := w.live[i]
		if s.server == nil || s.state == stateClosed || s.state == stateFree || !s.server.slot.DrainOver(w.now) {
			continue
		}
		w.endWith(s, endServerGone)
		n++
	}
	if n > 0 {
		w.log.Info("drain deadline passed; sessions closed", "sessions", n)
	}
}
