package shared

import (
	"sync/atomic"
	"time"
)

// Latency histograms of a server (issue #21): connect time, time to first
// byte and session duration, each as fixed bucket counters in the server
// slot. Workers add with atomics (no allocation, no lock); the master reads
// them at scrape time, and show commands estimate quantiles from them.
// Buckets are cumulative only when read (Counts); each counter holds the
// samples of its own bucket.

// HistBounds are the buckets' upper bounds, 100 µs to 60 s; a last
// counter takes what is above.
var HistBounds = [NBuckets - 1]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
	10 * time.Second, 30 * time.Second, 60 * time.Second,
}

// NBuckets is HistBounds and the overflow bucket.
const NBuckets = 19

// Histogram is one distribution: per-bucket counts and the sum in ns.
type Histogram struct {
	Buckets [NBuckets]atomic.Uint64
	Sum     atomic.Int64
	_       [32]byte // three whole cache lines
}

// Observe adds one sample.
func (h *Histogram) Observe(ns int64) {
	i := 0
	for i < len(HistBounds) && ns > int64(HistBounds[i]) {
		i++
	}
	h.Buckets[i].Add(1)
	h.Sum.Add(ns)
}

// Counts reads the buckets (each its own, not cumulative) and their total.
func (h *Histogram) Counts() (counts [NBuckets]uint64, total uint64) {
	for i := range h.Buckets {
		counts[i] = h.Buckets[i].Load()
		total += counts[i]
	}
	return counts, total
}

// Quantile estimates the q-quantile (0 < q < 1) from bucket counts as
// Prometheus' histogram_quantile does: linearly inside the bucket the
// rank falls in (the overflow bucket answers its lower bound). 0 when
// there are no samples.
func Quantile(counts [NBuckets]uint64, q float64) time.Duration {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var below float64
	for i, c := range counts {
		if below+float64(c) < rank || c == 0 {
			below += float64(c)
			continue
		}
		if i == len(HistBounds) {
			return HistBounds[i-1]
		}
		lo := time.Duration(0)
		if i > 0 {
			lo = HistBounds[i-1]
		}
		frac := (rank - below) / float64(c)
		return lo + time.Duration(frac*float64(HistBounds[i]-lo))
	}
	return HistBounds[len(HistBounds)-1]
}

// Add sums counts into acc (a rule's servers into the rule's view).
func Add(acc *[NBuckets]uint64, counts [NBuckets]uint64) {
	for i := range counts {
		acc[i] += counts[i]
	}
}

// Reset zeroes the histogram (a slot taken by another key).
func (h *Histogram) Reset() {
	for i := range h.Buckets {
		h.Buckets[i].Store(0)
	}
	h.Sum.Store(0)
}
