package shared

import (
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	tests := []struct {
		d      time.Duration
		bucket int
	}{
		{0, 0},
		{100 * time.Microsecond, 0}, // bounds are inclusive, as Prometheus's le
		{101 * time.Microsecond, 1},
		{3 * time.Millisecond, 5},
		{time.Second, 12},
		{59 * time.Second, 17},
		{60 * time.Second, 17},
		{time.Hour, 18}, // overflow
	}
	for _, tt := range tests {
		var h Histogram
		h.Observe(int64(tt.d))
		counts, total := h.Counts()
		if total != 1 || counts[tt.bucket] != 1 || h.Sum.Load() != int64(tt.d) {
			t.Errorf("%v: counts %v, want bucket %d", tt.d, counts, tt.bucket)
		}
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	for i := 0; i < 90; i++ {
		h.Observe(int64(2 * time.Millisecond)) // (1ms, 2.5ms]
	}
	for i := 0; i < 10; i++ {
		h.Observe(int64(200 * time.Millisecond)) // (100ms, 250ms]
	}
	counts, _ := h.Counts()
	for _, tt := range []struct {
		q      float64
		lo, hi time.Duration
	}{
		{0.5, time.Millisecond, 2500 * time.Microsecond},
		{0.9, time.Millisecond, 2500 * time.Microsecond},
		{0.99, 100 * time.Millisecond, 250 * time.Millisecond},
	} {
		if got := Quantile(counts, tt.q); got < tt.lo || got > tt.hi {
			t.Errorf("p%v = %v, want within (%v, %v]", tt.q*100, got, tt.lo, tt.hi)
		}
	}
	if got := Quantile([NBuckets]uint64{}, 0.5); got != 0 {
		t.Errorf("no samples: %v", got)
	}
	var over [NBuckets]uint64
	over[NBuckets-1] = 5
	if got := Quantile(over, 0.99); got != 60*time.Second {
		t.Errorf("all above the last bound: %v, want 60s", got)
	}
}
