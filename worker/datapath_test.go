package worker

import (
	"bytes"
	"strings"
	"testing"

	"g6/ipc"

	"golang.org/x/sys/unix"
)

// pattern is n bytes that show where a byte came from if one is lost,
// repeated or reordered.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// TestHalfClose: EOF from one side becomes a FIN on the other while the
// other direction goes on; the session ends only when both have.
func TestHalfClose(t *testing.T) {
	tests := []struct {
		name  string
		first string // which side finishes first: "client" or "server"
	}{
		{"client first", "client"},
		{"server first", "server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			cfd, afd, s := h.connect()
			a, b := cfd, afd
			if tt.first == "server" {
				a, b = afd, cfd
			}
			h.write(a, []byte("request"))
			unix.Shutdown(a, unix.SHUT_WR)
			if got := h.read(b, 7); string(got) != "request" {
				t.Fatalf("got %q", got)
			}
			h.readEOF(b)
			if s.state != stateEstablished {
				t.Fatalf("after one side's EOF the session is in state %d, want established", s.state)
			}
			// The other direction still works, and then ends the session.
			h.write(b, []byte("answer"))
			if got := h.read(a, 6); string(got) != "answer" {
				t.Fatalf("the other direction after a half-close: got %q", got)
			}
			unix.Shutdown(b, unix.SHUT_WR)
			h.readEOF(a)
			h.until("the session to end", func() bool { return len(h.w.live) == 0 })
			if s.reason == endUnknown {
				t.Fatal("ended without a reason")
			}
		})
	}
}

// TestPendingTail: a backend that does not read makes the worker keep the
// unsent tail and stop reading the client; nothing is lost or reordered
// when the backend reads again, whether the direction copies or splices.
func TestPendingTail(t *testing.T) {
	tests := []struct {
		splice  string
		pending func(s *session) int // bytes held for the backend
	}{
		{"off", func(s *session) int { return len(s.back.pend) - s.back.off }},
		{"always", func(s *session) int {
			if s.back.pipe == nil {
				return 0
			}
			return s.back.pipe.n
		}},
	}
	for _, tt := range tests {
		t.Run("splice="+tt.splice, func(t *testing.T) {
			h := newHarness(t, harnessOpts{global: `splice = "` + tt.splice + `"`})
			unix.SetsockoptInt(h.bfd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) // inherited by the accepted socket
			cfd, afd, s := h.connect()
			data := pattern(32 << 20)
			sent := 0
			h.until("a pending tail, and the client's writes blocked", func() bool {
				k, err := unix.Write(cfd, data[sent:])
				if err == nil {
					sent += k
				}
				return tt.pending(s) > 0 && err == unix.EAGAIN
			})
			unix.SetsockoptInt(afd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20) // now read fast
			var got []byte
			buf := make([]byte, 256<<10)
			h.until("every byte sent at the backend", func() bool {
				if k, _ := unix.Read(afd, buf); k > 0 {
					got = append(got, buf[:k]...)
				}
				return len(got) >= sent
			})
			if !bytes.Equal(got, data[:sent]) {
				i := 0
				for i < len(got) && got[i] == data[i] {
					i++
				}
				t.Fatalf("the backend got different bytes from offset %d", i)
			}
		})
	}
}

// TestSpliceSwitch: splice = "off" never takes a pipe, "always" from the
// first byte, "auto" only once a direction has carried 256 KiB.
func TestSpliceSwitch(t *testing.T) {
	tests := []struct {
		mode        string
		small, bulk bool // a pipe after 64 KiB, after 1 MiB
	}{
		{"off", false, false},
		{"always", true, true},
		{"auto", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			h := newHarness(t, harnessOpts{global: `splice = "` + tt.mode + `"`})
			cfd, afd, s := h.connect()
			data := pattern(1 << 20)
			h.write(cfd, data[:64<<10])
			if got := h.read(afd, 64<<10); !bytes.Equal(got, data[:64<<10]) {
				t.Fatal("first 64 KiB differ")
			}
			if got := s.back.pipe != nil; got != tt.small {
				t.Errorf("after 64 KiB: pipe %v, want %v", got, tt.small)
			}
			// The rest, then one more chunk: a direction switches between
			// reads, when new bytes arrive after the threshold.
			for _, part := range [][]byte{data[64<<10:], data[:64<<10]} {
				h.write(cfd, part)
				if got := h.read(afd, len(part)); !bytes.Equal(got, part) {
					t.Fatal("bytes differ")
				}
			}
			if got := s.back.pipe != nil; got != tt.bulk {
				t.Errorf("after 1 MiB: pipe %v, want %v", got, tt.bulk)
			}
			if s.front.pipe != nil {
				t.Error("the direction that carried nothing holds a pipe")
			}
		})
	}
}

// TestTimerHeapOrder: pops come out in deadline order however they were
// pushed, interleaved with pops.
func TestTimerHeapOrder(t *testing.T) {
	tests := [][]int64{
		{5, 3, 9, 1, 7},
		{1, 1, 1, 0, 2},
		{10, 9, 8, 7, 6, 5, 4, 3, 2, 1},
		{4},
	}
	for _, pushes := range tests {
		var h timerHeap
		var popped []int64
		for i, at := range pushes {
			h.push(timerEntry{at: at})
			if i%3 == 2 { // a pop now and then, as the loop does
				popped = append(popped, h.pop().at)
			}
		}
		for len(h) > 0 {
			popped = append(popped, h.pop().at)
		}
		if len(popped) != len(pushes) {
			t.Fatalf("%v: popped %v", pushes, popped)
		}
		// Each interleaved pop is the minimum of what was in the heap then,
		// so the final drain is sorted.
		tail := popped[len(pushes)/3:]
		for i := 1; i < len(tail); i++ {
			if tail[i] < tail[i-1] {
				t.Fatalf("%v: popped out of order: %v", pushes, popped)
			}
		}
		if at, ok := h.peek(); ok {
			t.Fatalf("empty heap peeks %d", at)
		}
	}
}

// TestIdleTimeout: an established session with no traffic for its listen
// timeout ends with reason timeout; its descriptors are closed.
func TestIdleTimeout(t *testing.T) {
	h := newHarness(t, harnessOpts{listen: `{ address = "127.0.0.1:%d", timeout = "200ms" }`})
	cfd, afd, s := h.connect()
	h.readEOF(cfd)
	h.readEOF(afd)
	if len(h.w.live) != 0 || s.reason != endTimeout {
		t.Fatalf("live %d, reason %q; want 0, %q", len(h.w.live), s.reason, endTimeout)
	}
}

// TestBadDrainRefused: a drain message whose body does not decode is
// logged and ignored; a good one drains.
func TestBadDrainRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, body := range []string{``, `{"timeout_ns":"soon"}`, `{"timeout_ns":0}`, `{"timeout_ns":5000000000}`} {
		frame, err := ipc.Encode(ipc.Message{V: ipc.ProtocolVersion, Type: ipc.TypeDrain, Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		unix.Write(h.ctl, frame)
		for i := 0; i < 5; i++ {
			h.w.step(10)
		}
		if want := strings.Contains(body, "5000000000"); h.w.draining != want {
			t.Fatalf("body %q: draining %v, want %v", body, h.w.draining, want)
		}
	}
}

// TestFlushOutlivesServerHangup: a session flushing its last bytes to a
// slow client must not end when the server socket reports EPOLLHUP: that
// socket is shut down both ways on purpose (the client's FIN passed on,
// the server's read), and the kernel says exactly that with a hang-up.
func TestFlushOutlivesServerHangup(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cfd, afd, s := h.connect()
	unix.SetsockoptInt(cfd, unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<10)
	unix.Shutdown(cfd, unix.SHUT_WR) // the request is complete
	h.readEOF(afd)
	reply := make([]byte, 512<<10)
	h.write(afd, reply)
	unix.Shutdown(afd, unix.SHUT_WR) // the server is done too
	h.until("flushing", func() bool { return s.state == stateFlushing || s.state == stateFree })
	if s.state != stateFlushing {
		t.Skip("the reply fit the client's receive buffer: nothing left to flush on this machine")
	}
	for i := 0; i < 50; i++ {
		h.w.step(1)
	}
	if s.state != stateFlushing {
		t.Fatalf("session state %d after the server's hang-up, want still flushing", s.state)
	}
	got := h.read(cfd, len(reply))
	if len(got) != len(reply) {
		t.Fatalf("read %d of %d", len(got), len(reply))
	}
	h.until("the session to end", func() bool { return s.state == stateFree || s.state == stateClosed })
}
