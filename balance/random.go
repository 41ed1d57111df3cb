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
	total := totalWeight(v)
	if total == 0 {
		return ring(dst[:0], n, 0)
	}
	return ring(dst[:0], n, weighted(v, rand.IntN(total)))
}

// Hash (HS) keeps each client IP on one server by weighted rendezvous
// hashing of the client's real IP (G6 hashed the matched pattern: docs/g6-differences.md B11):
// removing a server moves only its own clients, and when the chosen server
// is unusable the client goes to its next-highest server instead of being
// refused. With Factor > 1 loads are bounded (consistent hashing with
// bounded loads): a server already holding more than Factor times the
// mean load per weight, (total active + 1) × weight / total weight, goes
// behind the others, so one busy client range cannot overload one server.
type Hash struct {
	Factor float64
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
	if h.Factor > 0 {
		h.bound(v, dst)
	}
	return dst
}

// bound moves the overloaded servers of dst behind the others, keeping
// the order within each group. It reuses the score of each overloaded
// server as its mark, so it allocates nothing.
func (h *Hash) bound(v View, dst []int) {
	var active int64
	for i := 0; i < v.Len(); i++ {
		active += v.Active(i)
	}
	total := totalWeight(v)
	if total == 0 {
		return
	}
	mean := float64(active+1) / float64(total)
	over := func(i int) bool { return float64(v.Active(i)) > h.Factor*mean*float64(v.Weight(i)) }
	sortBy(dst, func(a, b int) bool { return !over(a) && over(b) })
}

// PowerOfTwo (P2) draws two servers at random (by weight) and takes the
// one with fewer active connections per weight: nearly as even as LC, but
// without every worker's new connections herding onto the one server
// that is least loaded this instant. The other follows, then the rest in
// ring order from a random start.
type PowerOfTwo struct{}

// Order implements Selector.
func (PowerOfTwo) Order(v View, _ []byte, dst []int) []int {
	n := v.Len()
	total := totalWeight(v)
	if n == 0 || total == 0 {
		return ring(dst[:0], n, 0)
	}
	a := weighted(v, rand.IntN(total))
	b := a
	for try := 0; try < 4 && b == a && n > 1; try++ {
		b = weighted(v, rand.IntN(total))
	}
	if b == a {
		b = (a + 1) % n
	}
	if v.Active(b)*int64(v.Weight(a)) < v.Active(a)*int64(v.Weight(b)) {
		a, b = b, a
	}
	dst = append(dst[:0], a)
	if n > 1 {
		dst = append(dst, b)
	}
	start := rand.IntN(n)
	for k := 0; k < n; k++ {
		if i := (start + k) % n; i != a && i != b {
			dst = append(dst, i)
		}
	}
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
