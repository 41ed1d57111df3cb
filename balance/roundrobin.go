package balance

import "sync/atomic"

// RoundRobin (RR) takes turns over the servers with one cursor shared by all
// workers. Weights are honoured smoothly (nginx's smooth weighted round
// robin): over any W consecutive picks (W the sum of weights) server i
// leads the order weight(i) times, spread out, not in a run (weights 100
// and 100 alternate; they do not take 100 turns each). The order of the W
// turns is worked out once per set of weights and kept: a worker's
// selector is its own, and weights change only when the master publishes.
type RoundRobin struct {
	Cursor *atomic.Uint64
	turns  []int  // server of each turn, for the weights whose print is fp
	fp     uint64 // print of the weights turns was made for
	w, cur []int  // scratch for the weights and smooth's running scores
}

// Order implements Selector.
func (r *RoundRobin) Order(v View, _ []byte, dst []int) []int {
	dst = dst[:0]
	n := v.Len()
	if n == 0 {
		return dst
	}
	r.w = r.w[:0]
	total, fp := 0, uint64(n)
	for i := range n {
		w := v.Weight(i)
		r.w = append(r.w, w)
		total += w
		fp = (fp ^ uint64(w)) * 1099511628211
	}
	if total == 0 { // every server at weight 0: none takes a connection
		return ring(dst, n, 0)
	}
	if fp != r.fp || len(r.turns) != total {
		r.turns, r.fp = r.smooth(total), fp
	}
	c := int((r.Cursor.Add(1) - 1) % uint64(total))
	return ring(dst, n, r.turns[c])
}

// smooth lays out the turns of one cycle: each turn every server's score
// grows by its weight, the highest leads and gives back the total.
func (r *RoundRobin) smooth(total int) []int {
	turns := r.turns[:0]
	r.cur = append(r.cur[:0], make([]int, len(r.w))...)
	for range total {
		best := 0
		for i, w := range r.w {
			r.cur[i] += w
			if r.cur[i] > r.cur[best] {
				best = i
			}
		}
		r.cur[best] -= total
		turns = append(turns, best)
	}
	return turns
}

// MasterStandby (MS) always prefers the first server, then the next: traffic
// fails over to a standby while the master is unusable and fails back as
// soon as it is usable again (G6 stayed on the standby: docs/g6-differences.md B13).
type MasterStandby struct{}

// Order implements Selector.
func (MasterStandby) Order(v View, _ []byte, dst []int) []int {
	return ring(dst[:0], v.Len(), 0)
}
