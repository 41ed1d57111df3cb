package shared

import (
	"math/rand/v2"
	"testing"
)

func newRegion(t *testing.T, ips int) *Region {
	t.Helper()
	r, err := Create(Sizes{Rules: 2, Servers: 4, Clients: 4, IPs: ips})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func ipN(n int) [16]byte {
	var b [16]byte
	b[10], b[11], b[12], b[15] = 0xff, 0xff, 127, byte(n)
	return b
}

func TestOpenChecksLayout(t *testing.T) {
	r := newRegion(t, 8)
	o, err := Open(r.Fd())
	if err != nil {
		t.Fatal(err)
	}
	o.Server(1).Total.Store(7)
	if r.Server(1).Total.Load() != 7 {
		t.Fatal("second mapping does not share memory")
	}
	r.hdr.Version = 99
	if _, err := Open(r.Fd()); err == nil {
		t.Fatal("opened a region of another version")
	}
}

func TestAdmitLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		ips    []int // source of each connection attempt
		want   []string
	}{
		{"max_connections", Limits{MaxConnections: 2}, []int{1, 2, 3}, []string{"", "", RefuseMaxConns}},
		{"max_ip", Limits{MaxIP: 2}, []int{1, 1, 2, 3, 2}, []string{"", "", "", RefuseMaxIP, ""}},
		{"per_ip", Limits{MaxConnectionsPerIP: 2}, []int{1, 1, 1, 2}, []string{"", "", RefusePerIP, ""}},
		{"unlimited", Limits{}, []int{1, 1, 1}, []string{"", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegion(t, 16)
			for i, ip := range tt.ips {
				if got := r.Admit(0, ipN(ip), 0, &tt.limits); got != tt.want[i] {
					t.Fatalf("attempt %d from ip %d: %q, want %q", i, ip, got, tt.want[i])
				}
			}
		})
	}
}

// TestIPTableModel drives admits and releases at random against a map
// model, through deletions that must shift entries back.
func TestIPTableModel(t *testing.T) {
	r := newRegion(t, 13)
	l := &Limits{MaxConnectionsPerIP: 1000}
	model := map[int]int{}
	rng := rand.New(rand.NewPCG(1, 2))
	for step := 0; step < 20000; step++ {
		ip := rng.IntN(10)
		if model[ip] > 0 && rng.IntN(2) == 0 {
			r.Release(0, ipN(ip), 1, l)
			model[ip]--
		} else if got := r.Admit(0, ipN(ip), 1, l); got == "" {
			model[ip]++
		} else {
			t.Fatalf("step %d: refused %q", step, got)
		}
		distinct := 0
		for k, n := range model {
			if n > 0 {
				distinct++
			}
			e, found := r.findIP(0, ipN(k))
			if n > 0 && (!found || int(e.Total) != n) {
				t.Fatalf("step %d: ip %d count %v, want %d", step, k, e, n)
			}
			if n == 0 && found {
				t.Fatalf("step %d: ip %d still present", step, k)
			}
		}
		if int(r.Client(0).IPs) != distinct {
			t.Fatalf("step %d: %d distinct IPs recorded, want %d", step, r.Client(0).IPs, distinct)
		}
	}
}

func TestReleaseWorker(t *testing.T) {
	r := newRegion(t, 16)
	l := &Limits{MaxConnectionsPerIP: 10}
	r.Admit(0, ipN(1), 0, l)
	r.Admit(0, ipN(1), 1, l)
	r.Admit(0, ipN(2), 1, l)
	s := r.Server(0)
	s.TryAcquire(0, 0)
	s.TryAcquire(1, 0)
	s.TryAcquire(1, 0)
	r.ReleaseWorker(1)
	if s.Active.Load() != 1 || r.Client(0).Active != 1 || r.Client(0).IPs != 1 {
		t.Fatalf("after release: server %d, client %d, ips %d; want 1, 1, 1",
			s.Active.Load(), r.Client(0).Active, r.Client(0).IPs)
	}
	if _, found := r.findIP(0, ipN(2)); found {
		t.Fatal("ip 2 (only on worker 1) still counted")
	}
}

func TestTryAcquireLimit(t *testing.T) {
	r := newRegion(t, 0)
	s := r.Server(0)
	for i := 0; i < 3; i++ {
		if !s.TryAcquire(i%2, 3) {
			t.Fatalf("acquire %d refused", i)
		}
	}
	if s.TryAcquire(0, 3) {
		t.Fatal("fourth acquire admitted over max 3")
	}
}

func TestAssignKeepsState(t *testing.T) {
	r := newRegion(t, 4)
	s1, _ := r.Assign(Keys{Rules: []string{"a"}, Servers: []string{"a 1", "a 2"}, Clients: []string{"a *"}})
	r.Server(s1.Servers[1]).Total.Store(42)
	s2, _ := r.Assign(Keys{Rules: []string{"a"}, Servers: []string{"a 3", "a 2"}, Clients: []string{"a *"}})
	if got := r.Server(s2.Servers[1]).Total.Load(); got != 42 {
		t.Fatalf("state of a kept server lost: total %d", got)
	}
	if got := r.Server(s2.Servers[0]).Total.Load(); got != 0 {
		t.Fatalf("new server inherited state: total %d", got)
	}
}

// BenchmarkAccounting: per-connection cost of the shared accounting (server
// slot plus a limited client pattern with per-IP tracking).
func BenchmarkAccounting(b *testing.B) {
	r, err := Create(Sizes{Rules: 1, Servers: 1, Clients: 1, IPs: 16384})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	l := &Limits{MaxConnections: 1000, MaxIP: 1000, MaxConnectionsPerIP: 1000}
	s := r.Server(0)
	ip := ipN(7)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Admit(0, ip, 0, l)
		s.TryAcquire(0, 100)
		s.Release(0)
		r.Release(0, ip, 0, l)
	}
}
