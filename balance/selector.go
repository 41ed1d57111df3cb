package balance

import (
	"fmt"
	"sync/atomic"

	"g6/conf"
)

// View is a rule's servers as a selector sees them. Whether a server is
// usable is not the selector's business: the caller skips unusable ones as it
// walks the order.
type View interface {
	Len() int
	Active(i int) int64
	Weight(i int) int
	RT(i int) int64
	// Key is a stable 64-bit identity of server i (for hashing).
	Key(i int) uint64
}

// Selector orders a rule's servers for one new connection.
type Selector interface {
	// Order appends to dst[:0] every server index, best first.
	Order(v View, clientIP []byte, dst []int) []int
}

// New returns the selector for an algorithm name. cursor is the rule's
// shared cursor (used by the rotating algorithms and to break ties);
// hashFactor bounds HS (0 = no bound).
func New(alg string, cursor *atomic.Uint64, hashFactor float64) (Selector, error) {
	switch alg {
	case conf.AlgMasterStandby:
		return MasterStandby{}, nil
	case conf.AlgRoundRobin:
		return &RoundRobin{Cursor: cursor}, nil
	case conf.AlgLeastConns:
		return &LeastConns{Cursor: cursor}, nil
	case conf.AlgResponseTime:
		return &ResponseTime{Cursor: cursor}, nil
	case conf.AlgRandom:
		return &Random{}, nil
	case conf.AlgHash:
		return &Hash{Factor: hashFactor}, nil
	case conf.AlgPowerOfTwo:
		return &PowerOfTwo{}, nil
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

// weighted maps a point in [0, total weight) to a server index; servers of
// weight 0 are never the point's.
func weighted(v View, point int) int {
	n := v.Len()
	for i := 0; i < n-1; i++ {
		point -= v.Weight(i)
		if point < 0 {
			return i
		}
	}
	return n - 1
}

func totalWeight(v View) int {
	t := 0
	for i := 0; i < v.Len(); i++ {
		t += v.Weight(i)
	}
	return t
}

// sortBy orders dst (a ring from some start) by less, keeping the ring
// order among equals so ties rotate. Insertion sort: n is small and it
// allocates nothing.
func sortBy(dst []int, less func(a, b int) bool) {
	for i := 1; i < len(dst); i++ {
		for j := i; j > 0 && less(dst[j], dst[j-1]); j-- {
			dst[j], dst[j-1] = dst[j-1], dst[j]
		}
	}
}
