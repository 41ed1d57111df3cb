package worker

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// udpClient is a client socket connected to the harness's UDP listen
// address.
func (h *harness) udpClient() int {
	h.t.Helper()
	fd := rawSocketType(h.t, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: h.port}); err != nil {
		h.t.Fatal(err)
	}
	return fd
}

// udpSession starts a session from client socket cfd and connects the
// backend socket to the worker's socket of it, so that exchanges need
// no addresses (which x/sys/unix allocates).
func (h *harness) udpSession(cfd int) {
	h.t.Helper()
	buf := make([]byte, 2048)
	unix.Write(cfd, make([]byte, 64))
	var from unix.Sockaddr
	h.until("the first datagram at the backend", func() bool {
		_, sa, err := unix.Recvfrom(h.bfd, buf, unix.MSG_DONTWAIT)
		from = sa
		return err == nil
	})
	if err := unix.Connect(h.bfd, from); err != nil {
		h.t.Fatal(err)
	}
	unix.Write(h.bfd, make([]byte, 128))
	h.until("the first answer at the client", func() bool { n, _ := unix.Read(cfd, buf); return n == 128 })
}

// udpExchange sends req from the client to the backend through the
// worker and resp back, stepping the loop; it allocates nothing itself.
func udpExchange(t testing.TB, w *Worker, cfd, bfd int, req, resp, buf []byte) {
	end := time.Now().Add(stepDeadline)
	for i, p := range [2][2]int{{cfd, bfd}, {bfd, cfd}} {
		msg := req
		if i == 1 {
			msg = resp
		}
		unix.Write(p[0], msg)
		for {
			if time.Now().After(end) {
				t.Fatalf("a %d-byte datagram did not arrive", len(msg))
			}
			w.step(1)
			if n, _ := unix.Read(p[1], buf); n == len(msg) {
				break
			}
		}
	}
}

// BenchmarkUDPForward measures one request/response (64 and 128 bytes)
// through a UDP session: no datagram allocates (-benchmem shows 0
// allocs/op).
func BenchmarkUDPForward(b *testing.B) {
	h := newHarness(b, harnessOpts{udp: true})
	cfd := h.udpClient()
	h.udpSession(cfd)
	req, resp, buf := make([]byte, 64), make([]byte, 128), make([]byte, 2048)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		udpExchange(b, h.w, cfd, h.bfd, req, resp, buf)
	}
}

func TestUDPForwardDoesNotAllocate(t *testing.T) {
	h := newHarness(t, harnessOpts{udp: true})
	cfd := h.udpClient()
	h.udpSession(cfd)
	req, resp, buf := make([]byte, 64), make([]byte, 128), make([]byte, 2048)
	udpExchange(t, h.w, cfd, h.bfd, req, resp, buf)
	if len(h.w.udp.live) != 1 {
		t.Fatalf("%d UDP sessions, want 1", len(h.w.udp.live))
	}
	allocs := testing.AllocsPerRun(200, func() { udpExchange(t, h.w, cfd, h.bfd, req, resp, buf) })
	if allocs != 0 {
		t.Fatalf("%.1f allocations per datagram exchange, want 0", allocs)
	}
	if s := h.w.udp.live[0]; s.dgrams != [2]int64{203, 203} || s.bytes != [2]int64{203 * 64, 203 * 128} {
		t.Fatalf("session counted %v datagrams, %v bytes; want 203 each way of 64 and 128 bytes", s.dgrams, s.bytes)
	}
}

// TestUDPResponsesEndSession: with responses = 1 the session ends at the
// server's first datagram and the client's next request starts another.
func TestUDPResponsesEndSession(t *testing.T) {
	h := newHarness(t, harnessOpts{udp: true, rule: "responses = 1"})
	cfd := h.udpClient()
	buf := make([]byte, 2048)
	for i := range 3 {
		unix.Write(cfd, []byte("query"))
		var from unix.Sockaddr
		h.until("the query at the backend", func() bool {
			_, sa, err := unix.Recvfrom(h.bfd, buf, unix.MSG_DONTWAIT)
			from = sa
			return err == nil
		})
		unix.Sendto(h.bfd, []byte("answer"), 0, from)
		h.until("the answer at the client", func() bool { n, _ := unix.Read(cfd, buf); return n == 6 })
		h.until("the session's end", func() bool { return len(h.w.udp.live) == 0 })
		if got := h.w.rules[0].slot.Connections.Load(); got != int64(i+1) {
			t.Fatalf("%d sessions began, want %d", got, i+1)
		}
	}
}

// TestUDPBurstKeepsDatagrams: a burst of one client's datagrams read in
// one batch (sent on as one GSO send where the kernel takes it) reaches
// the server as the same datagrams, in order, the shorter last one too.
func TestUDPBurstKeepsDatagrams(t *testing.T) {
	h := newHarness(t, harnessOpts{udp: true})
	cfd := h.udpClient()
	h.udpSession(cfd)
	unix.SetNonblock(h.bfd, true)
	sizes := []int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 500, 0, 700}
	for i, n := range sizes {
		msg := make([]byte, n)
		for j := range msg {
			msg[j] = byte(i)
		}
		unix.Write(cfd, msg)
	}
	buf := make([]byte, 2048)
	got := 0
	h.until("the burst at the backend", func() bool {
		for got < len(sizes) {
			n, err := unix.Read(h.bfd, buf)
			if err != nil {
				return false
			}
			if n != sizes[got] || n > 0 && (buf[0] != byte(got) || buf[n-1] != byte(got)) {
				t.Fatalf("datagram %d: %d bytes starting %d, want %d bytes of %d", got, n, buf[0], sizes[got], got)
			}
			got++
		}
		return true
	})
}
