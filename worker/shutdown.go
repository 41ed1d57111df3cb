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
		if s.server == nil || s.state == stateClosed || s.state == stateFree || s.state == stateHanding || !slices.Contains(slots, s.server.slotIdx) {
			continue
		}
		w.endWith(s, endServerGone)
		n++
	}
	for i := len(w.udp.live) - 1; i >= 0; i-- {
		if s := w.udp.live[i]; !s.closed && !s.handing && s.server != nil && slices.Contains(slots, s.server.slotIdx) {
			w.endUDP(s, endServerGone)
			n++
		}
	}
	if n > 0 {
		w.log.Info("closed the sessions of servers shut down by the master", "sessions", n, "slots", slots)
	}
	return n
}

// drainSweepEvery is how often the loop looks for drains whose deadline
// has passed; a loop with sessions wakes at least this often (waitTime).
const drainSweepEvery = int64(250 * time.Millisecond)

// sweepDrains closes the sessions of servers whose drain deadline passed,
// and adds what established sessions carried since the last sweep to their
// server's byte totals (so /metrics and the console see bytes/s of long
// sessions, not only at their end).
func (w *Worker) sweepDrains() {
	if w.now < w.sweepAt {
		return
	}
	w.sweepAt = w.now + drainSweepEvery
	n := 0
	for i := len(w.live) - 1; i >= 0; i-- {
		s := w.live[i]
		if s.server == nil || s.state == stateClosed || s.state == stateFree || s.state == stateHanding {
			continue // a handing session is the new worker's or back here soon
		}
		if s.paired != nil {
			w.foldMoved(s)
			w.refreshBudgets(s)
			if !w.pokeSpilled(s) {
				w.end(s)
				continue
			}
		}
		if s.state == stateEstablished || s.state == stateFlushing {
			w.publishBytes(s)
		}
		if !s.server.slot.DrainOver(w.now) {
			continue
		}
		w.endWith(s, endServerGone)
		n++
	}
	n += w.sweepUDP()
	if n > 0 {
		w.log.Info("drain deadline passed; sessions closed", "sessions", n)
	}
}

// publishBytes adds the bytes s carried since the last call to its server
// slot's totals. Only the session's final server gets any: a session still
// connecting may yet move to another.
func (w *Worker) publishBytes(s *session) {
	if d := s.back.bytes - s.counted[1]; d != 0 {
		s.server.slot.FromServer.Add(d)
		s.rule.slot.FromServer.Add(d)
	}
	if d := s.front.bytes - s.counted[0]; d != 0 {
		s.server.slot.FromClient.Add(d)
		s.rule.slot.FromClient.Add(d)
	}
	s.counted = [2]int64{s.front.bytes, s.back.bytes}
}
