package balance

import "sync/atomic"

// RoundRobin (RR) takes turns over the servers with one cursor shared by all
// workers. Weights are honoured: over any run of W consecutive picks (W the
// sum of weights), server i leads the order weight(i) times.
type RoundRobin struct {
	Cursor *atomic.Uint64
}

// Order implements Selector.
func (r *RoundRobin) Order(v View, _ []byte, dst []int) []int {
	dst = dst[:0]
	n := v.Len()
	if n == 0 {
		return dst
	}
	total := totalWeight(v)
	if total == 0 { // every server at weight 0: none takes a connection
		return ring(dst, n, 0)
	}
	c := int((r.Cursor.Add(1) - 1) % uint64(total))
	return ring(dst, n, weighted(v, c))
}

// MasterStandby (MS) always prefers the first server, then the next: traffic
// fails over to a standby while the master is unusable and fails back as
// soon as it is usable again (G6 stayed on the standby: docs/g6-differences.md B13).
type MasterStandby struct{}

// Order implements Selector.
func (MasterStandby) Order(v View, _ []byte, dst []int) []int {
	return ring(dst[:0], v.Len(), 0)
}
