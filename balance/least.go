package balance

import "sync/atomic"

// LeastConns (LC) prefers the server with the fewest active connections
// across all workers, relative to its weight (G6 picked the most: docs/g6-differences.md B10).
// Equal servers are taken in a rotating order so they share the load.
type LeastConns struct {
	Cursor *atomic.Uint64
}

// Order implements Selector.
func (l *LeastConns) Order(v View, _ []byte, dst []int) []int {
	return rotatedBy(v, l.Cursor, dst, func(a, b int) bool {
		// active(a)/weight(a) < active(b)/weight(b), without division.
		return v.Active(a)*int64(v.Weight(b)) < v.Active(b)*int64(v.Weight(a))
	})
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
	return rotatedBy(v, r.Cursor, dst, func(a, b int) bool { return v.RT(a) < v.RT(b) })
}

// rotatedBy orders the servers by less, starting the ring one further each
// call so that equal servers take turns.
func rotatedBy(v View, cursor *atomic.Uint64, dst []int, less func(a, b int) bool) []int {
	n := v.Len()
	if n == 0 {
		return dst[:0]
	}
	dst = ring(dst[:0], n, int(cursor.Add(1)%uint64(n)))
	sortBy(dst, less)
	return dst
}
