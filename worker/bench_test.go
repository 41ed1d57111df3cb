package worker

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// roundTrip sends msg client → backend and back through the worker. It
// allocates nothing (AllocsPerRun counts it) and fails after stepDeadline.
func roundTrip(t testing.TB, w *Worker, cfd, afd int, msg, buf []byte) {
	end := time.Now().Add(stepDeadline)
	for _, p := range [2][2]int{{cfd, afd}, {afd, cfd}} {
		unix.Write(p[0], msg)
		for got := 0; got < len(msg); {
			if time.Now().After(end) {
				t.Fatalf("round trip: %d of %d bytes after %v", got, len(msg), stepDeadline)
			}
			w.step(100)
			n, _ := unix.Read(p[1], buf)
			got += max(n, 0)
		}
	}
}

// BenchmarkForward measures one request/response through an established
// session: the data path must not allocate (-benchmem shows 0 allocs/op).
func BenchmarkForward(b *testing.B) {
	h := newHarness(b, harnessOpts{})
	cfd, afd, _ := h.connect()
	msg := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 4096)
	roundTrip(b, h.w, cfd, afd, msg, buf)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		roundTrip(b, h.w, cfd, afd, msg, buf)
	}
}

func TestForwardDoesNotAllocate(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cfd, afd, _ := h.connect()
	msg := []byte("ping")
	buf := make([]byte, 4096)
	roundTrip(t, h.w, cfd, afd, msg, buf)
	allocs := testing.AllocsPerRun(200, func() { roundTrip(t, h.w, cfd, afd, msg, buf) })
	if allocs != 0 {
		t.Fatalf("%.1f allocations per round trip, want 0", allocs)
	}
}
