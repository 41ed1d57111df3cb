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
	total := 0
	for i := 0; i < n; i++ {
		total += v.Weight(i)
	}
	c := int((r.Cursor.Add(1) - 1) % uint64(total))
	start := 0
	for ; start < n-1; start++ {
		c -= v.Weight(start)
		if c < 0 {
			break
		}
	}
	return ring(dst, n, start)
}
