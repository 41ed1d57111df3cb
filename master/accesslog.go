package master

import "time"

// droppedLines reports the access-log lines the workers could not write
// (shared.Region.AccessLogDropped: a full disk): once a minute while more
// are dropped, from the per-second sampler. Each worker logs the first
// failure of a run with its error, and when its lines are written again.
type droppedLines struct {
	reported int64
	at       time.Time
}

func (d *droppedLines) check(m *Master, now time.Time) {
	n := m.region.AccessLogDropped().Load()
	if n == d.reported || now.Sub(d.at) < time.Minute {
		return
	}
	m.log.Error("access log lines dropped", "dropped", n-d.reported, "since", d.at.Round(time.Second), "total", n)
	d.reported, d.at = n, now
}
