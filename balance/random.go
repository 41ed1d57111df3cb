package balance

import (
	"math"
	"math/rand/v2"
)

// Random (RD) picks a server uniformly (by weight), then falls back to the
// following ones. Each worker process draws from its own runtime-seeded
// source, so a respawned worker does not repeat a sequence (G6 did).
type Random struct{}

// Order implements Selector.
func (Random) Order(v View, _ []byte, dst []int) []int {
	n := v.Len()
	if n == 0 {
		return dst[:0]
	}
	return ring(dst[:0], n, weighted(v, rand.IntN(totalWeight(v))))
}

// Hash (HS) keeps each client IP on one server by weighted rendezvous
// hashing of the client's real IP (G6 hashed the matched pattern: docs/g6-differences.md B11):
// removing a server moves only its own clients, and when the chosen server
// is unusable the client goes to its next-highest server instead of being
// refused.
type Hash struct {
	scores []float64
}

// Order implements Selector.
func (h *Hash) Order(v View, clientIP []byte, dst []int) []int {
	n := v.Len()
	dst = dst[:0]
	if n == 0 {
		return dst
	}
	if cap(h.scores) < n {
		h.scores = make([]float64, n)
	}
	s := h.scores[:n]
	ch := fnv(clientIP)
	for i := 0; i < n; i++ {
		u := float64(mix(ch^v.Key(i))>>11+1) / (1 << 53) // (0, 1]
		s[i] = float64(v.Weight(i)) / -math.Log(u)
		dst = append(dst, i)
	}
	sortBy(dst, func(a, b int) bool { return s[a] > s[b] })
	return dst
}

func fnv(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, x := range b {
		h ^= uint64(x)
		h *= 1099511628211
	}
	return h
}

// mix is splitmix64's finaliser: spreads nearby inputs over the whole range.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// KeyOf is a stable 64-bit identity for a server address text.
func KeyOf(addr string) uint64 { return mix(fnv([]byte(addr))) }
