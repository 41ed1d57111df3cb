package shared

import "testing"

func TestCheckCounts(t *testing.T) {
	lim := &Limits{MaxConnectionsPerIP: 5}
	tests := []struct {
		name string
		do   func(r *Region)
		bad  int
	}{
		{"balanced", func(r *Region) {
			r.Server(0).TryAcquire(1, 0)
			r.Server(0).TryAcquire(2, 0)
			r.Server(0).Release(1)
			r.Admit(0, ipN(1), 3, lim)
		}, 0},
		{"released twice", func(r *Region) {
			r.Server(1).TryAcquire(0, 0)
			r.Server(1).Release(0)
			r.Server(1).Release(0)
		}, 2}, // worker 0 at -1, and active -1
		{"active without a worker", func(r *Region) { r.Server(2).Active.Add(1) }, 1},
		{"client count drift", func(r *Region) {
			r.Admit(1, ipN(2), 0, lim)
			r.Client(1).Active++
		}, 1},
		{"ip entry drift", func(r *Region) {
			r.Admit(2, ipN(3), 0, lim)
			r.ip(r.ipHome(2, ipN(3))).Total++
		}, 1},
	}
	for _, tt := range tests {
		r := newRegion(t, 16)
		tt.do(r)
		if bad := r.CheckCounts(); len(bad) != tt.bad {
			t.Errorf("%s: %d violations %q, want %d", tt.name, len(bad), bad, tt.bad)
		}
	}
}
