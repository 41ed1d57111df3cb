package shared

import (
	"sync"
	"testing"
	"time"
)

// perSecond is the GCRA form of conf's "n/s" with its burst rule.
func perSecond(n int64) Rate {
	burst := max(1, n/10)
	iv := int64(time.Second) / n
	return Rate{Interval: iv, Tolerance: (burst - 1) * iv}
}

// TestAdmitRate: 50 connections spread over one second against 10/s admit
// about 10, another IP is unaffected, and a pattern-wide rate caps the
// sum of two IPs.
func TestAdmitRate(t *testing.T) {
	r := newRegion(t, 64)
	ten, none := perSecond(10), Rate{}
	count := func(c int, ips []byte, perIP, total *Rate) map[byte]int {
		got := map[byte]int{}
		for i := 0; i < 50; i++ {
			now := int64(time.Hour) + int64(i)*int64(20*time.Millisecond)
			for _, ip := range ips {
				if r.AdmitRate(c, ipN(int(ip)), now, perIP, total) == RefuseNone {
					got[ip]++
				}
			}
		}
		return got
	}
	a := count(0, []byte{5}, &ten, &none)
	if a[5] < 10 || a[5] > 11 {
		t.Errorf("max_rate 10/s, 50 in a second: %d admitted", a[5])
	}
	b := count(0, []byte{6}, &ten, &none)
	if b[6] < 10 || b[6] > 11 {
		t.Errorf("another IP after the first was limited: %d admitted", b[6])
	}
	if n := r.Client(0).RateLimited.Load(); n != int64(100-a[5]-b[6]) {
		t.Errorf("RateLimited %d, want %d", n, 100-a[5]-b[6])
	}
	if got := count(1, []byte{5, 6}, &none, &ten); got[5]+got[6] < 10 || got[5]+got[6] > 11 {
		t.Errorf("max_rate_total 10/s over two IPs: %v", got)
	}
}

// TestAdmitRateWorkers: two goroutines standing in for two workers share
// one bucket exactly: never more than the burst at one instant.
func TestAdmitRateWorkers(t *testing.T) {
	r := newRegion(t, 64)
	rate := perSecond(100) // burst 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				if r.AdmitRate(0, ipN(9), int64(time.Hour), &rate, &Rate{}) == RefuseNone {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if admitted != 10 {
		t.Fatalf("%d admitted at one instant, want the burst of 10", admitted)
	}
}

// TestRateTableFull: more limited IPs than the table holds still get a
// bucket each (the one closest to expiry is taken over), and a known IP
// keeps its own.
func TestRateTableFull(t *testing.T) {
	r := newRegion(t, 16)
	one := perSecond(1)
	now := int64(time.Hour)
	for ip := 0; ip < 64; ip++ {
		if got := r.AdmitRate(0, ipN(ip), now+int64(ip), &one, &Rate{}); got != RefuseNone {
			t.Fatalf("ip %d, first connection: %q", ip, got)
		}
	}
	if got := r.AdmitRate(0, ipN(63), now+64, &one, &Rate{}); got != RefuseRate {
		t.Fatalf("ip 63 again at once: %q", got)
	}
}
