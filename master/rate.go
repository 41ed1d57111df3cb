package master

import (
	"sync"
	"time"
)

// rateWindow is how far back show stats looks for connections/s.
const rateWindow = 10 * time.Second

// rate keeps one sample of the connection total per second, so show stats
// can answer a recent rate rather than an average since start.
type rate struct {
	mu      sync.Mutex
	samples []sample
}

type sample struct {
	at    time.Time
	total int64
}

func (r *rate) add(now time.Time, total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, sample{now, total})
	for len(r.samples) > 1 && now.Sub(r.samples[0].at) > rateWindow {
		r.samples = r.samples[1:]
	}
}

// perSecond is the rate over the window, and whether it is known (two
// samples exist). The totals are the rules' own, which never go down.
func (r *rate) perSecond() (float64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) < 2 {
		return 0, false
	}
	a, b := r.samples[0], r.samples[len(r.samples)-1]
	return max(float64(b.total-a.total), 0) / b.at.Sub(a.at).Seconds(), true
}

// sampleRate records the connection total every second, and logs the
// rules' panic episodes, until stop closes.
func sampleRate(m *Master, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var p panics
	var d droppedLines
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			snap := m.Snapshot()
			var total int64
			for _, rs := range snap.Rules {
				total += snap.Region.Rule(rs).Connections.Load()
			}
			m.rate.add(now, total)
			p.check(m, &snap)
			d.check(m, now)
		}
	}
}
