package balance

import (
	"fmt"
	"sync/atomic"
)

// View is a rule's servers as a selector sees them.
type View interface {
	Len() int
	Usable(i int) bool
	Active(i int) int64
	Weight(i int) int
	RT(i int) int64
}

// Selector orders a rule's servers for one new connection.
type Selector interface {
	// Order appends to dst[:0] every server index, best first.
	Order(v View, clientIP []byte, dst []int) []int
}

// New returns the selector for an algorithm name. cursor is the rule's
// shared cursor (used by the rotating algorithms).
func New(alg string, cursor *atomic.Uint64) (Selector, error) {
	switch alg {
	case "RR":
		return &RoundRobin{Cursor: cursor}, nil
	}
	return nil, fmt.Errorf("balance: unknown algorithm %q", alg)
}

// ring appends n indexes starting at start, wrapping.
func ring(dst []int, n, start int) []int {
	for i := 0; i < n; i++ {
		dst = append(dst, (start+i)%n)
	}
	return dst
}
