package main

import (
	"math"
	"strings"
	"testing"
)

func TestVerdict(t *testing.T) {
	tests := []struct {
		q, bound float64
		atMost   bool
		want     string
	}{
		{1.25, 1.2, false, "yes"},
		{1.2, 1.2, false, "yes"},
		{0.97, 1.2, false, "no, 19% short"},
		{0.21, 1, true, "yes"},
		{1.5, 1, true, "no, 50% over"},
	}
	for _, tt := range tests {
		if got := verdict(tt.q, tt.bound, tt.atMost); got != tt.want {
			t.Errorf("verdict(%v, %v, %v) = %q, want %q", tt.q, tt.bound, tt.atMost, got, tt.want)
		}
	}
}

// TestRatiosAreSameRound: ratios and added latency pair each round's values,
// not the medians of each target.
func TestRatiosAreSameRound(t *testing.T) {
	r := &results{values: map[string]map[string][]float64{}}
	for _, v := range []struct {
		target string
		vals   []float64
	}{
		{"haproxy", []float64{100, 200, 400}},
		{"g6", []float64{120, 180, 480}},
	} {
		for _, x := range v.vals {
			r.add(v.target, "short_rps", x)
		}
	}
	q, ok := r.ratio("g6", "haproxy", "short_rps")
	if !ok || q != 1.2 { // per round 1.2, 0.9, 1.2; medians alone would give 180/200
		t.Fatalf("ratio = %v, %v; want 1.2", q, ok)
	}
	for i, d := range []float64{1, 2, 3} {
		r.add("direct", "latency_p99_ms", d)
		r.add("haproxy", "latency_p99_ms", d+0.5)
		r.add("g6", "latency_p99_ms", d+[]float64{0.2, 0.4, 0.9}[i])
	}
	g, h, ok := r.addedP99()
	if !ok || math.Abs(g-0.4) > 1e-9 || math.Abs(h-0.5) > 1e-9 {
		t.Fatalf("addedP99 = %v, %v, %v; want 0.4, 0.5", g, h, ok)
	}
	var b strings.Builder
	r.targetsSection(&b)
	for _, want := range []string{"| new connections/s ≥ 1.2 × HAProxy | 1.20 × | yes |", "g6 +0.400 ms, HAProxy +0.500 ms | yes |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("targets section lacks %q:\n%s", want, b.String())
		}
	}
}
