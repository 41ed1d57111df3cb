package conf

import "fmt"

// Outlier is a rule's passive outlier ejection: the master watches what
// the workers count per server in the shared region and ejects a server
// for BaseEjection × the times it was ejected before (at most 10×).
type Outlier struct {
	// ConsecutiveFailures the server caused in a row (a refused or timed
	// out connect, a failed TLS handshake, a reset or close before its
	// first byte) eject it; 0 = not judged by failures.
	ConsecutiveFailures int
	Interval            Duration // the window latency and retransmits are judged over
	BaseEjection        Duration
	MaxEjectionPercent  int // of the rule's servers ejected at once (never the last)
	// LatencyFactor: a server whose first-byte p99 over Interval is more
	// than this times the median of the rule's servers is ejected; 0 = off.
	LatencyFactor float64 `json:",omitempty"`
	// RetransFactor: a server whose retransmitted share of segments over
	// Interval is more than this times the rule's median is ejected (gray
	// failures: the workers read TCP_INFO of their server sockets); 0 = off.
	RetransFactor float64 `json:",omitempty"`
}

func (f *fileOutlier) resolve() (*Outlier, error) {
	o := &Outlier{ConsecutiveFailures: deref(f.ConsecutiveFailures, 5), Interval: deref(f.Interval, Duration(10e9)),
		BaseEjection: deref(f.BaseEjection, Duration(30e9)), MaxEjectionPercent: deref(f.MaxEjectionPercent, 50),
		LatencyFactor: deref(f.LatencyFactor, 0), RetransFactor: deref(f.RetransFactor, 0)}
	switch {
	case o.ConsecutiveFailures < 0:
		return o, fmt.Errorf("consecutive_failures must be 0 (off) or more, not %d", o.ConsecutiveFailures)
	case o.Interval < Duration(1e9):
		return o, fmt.Errorf("interval must be at least 1s, not %v", o.Interval)
	case o.BaseEjection < Duration(1e9):
		return o, fmt.Errorf("base_ejection must be at least 1s, not %v", o.BaseEjection)
	case o.MaxEjectionPercent < 1 || o.MaxEjectionPercent > 100:
		return o, fmt.Errorf("max_ejection_percent must be 1-100, not %d", o.MaxEjectionPercent)
	case o.LatencyFactor != 0 && o.LatencyFactor <= 1, o.RetransFactor != 0 && o.RetransFactor <= 1:
		return o, fmt.Errorf("latency_factor and retrans_factor must be above 1 (0 = off)")
	}
	return o, nil
}
