package balance

import "sync/atomic"

// LeastConns (LC) prefers the server with the fewest active connections
// across all workers, relative to its weight (G6 picked the most, B10).
// Equal servers are taken in a rotating order so they share the load.
type LeastConns struct {
	Cursor *atomic.Uint64
}

// Order implements Selector.
func (l *LeastConns) Order(v View, _ []byte, dst []int) []int {
	n := v.Len()
	if n == 0 {
		return dst[:0]
	}
	dst = ring(dst[:0], n, int(l.Cursor.Add(1)%uint64(n)))
	sortBy(dst, func(a, b int) bool {
		// active(a)/weight(a) < active(b)/weight(b), without division.
		return v.Active(a)*int64(v.Weight(b)) < v.Active(b)*int64(v.Weight(a))
	})
	return dst
}

// ResponseTime (RT) prefers the server with the lowest moving average of
// response time: from connect (or the client's latest bytes) to the server's
// first byte back. Servers not measured yet come first so they get measured;
// equal ones rotate.
type ResponseTime struct {
	Cursor *atomic.Uint64
}

// Order implements Selector.
func (r *ResponseTime) Order(v View, _ []byte, dst []int) []int {
	n := v.Len()
	if n == 0 {
		return dst[:0]
	}
	dst = ring(dst[:0], n, int(r.Cursor.Add(1)%uint64(n)))
	sortBy(dst, func(a, b int) bool { return v.RT(a) < v.RT(b) })
	return dst
}
