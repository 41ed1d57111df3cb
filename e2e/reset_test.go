package e2e

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

// resettingServer accepts connections, writes n bytes to each, then resets
// it (a backend that crashes mid-response).
func resettingServer(t *testing.T, n int) string {
	ln, err := net.Listen("tcp", testenv.Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write(make([]byte, n))
			time.Sleep(50 * time.Millisecond) // the bytes leave before the reset
			reset(c)
		}
	}()
	return ln.Addr().String()
}

// TestResetPassedOn: a server that resets mid-stream makes the client's
// read fail with a reset, not end with a FIN that would make a truncated
// download look complete; copied (64 KiB) and spliced (1 MiB) alike. And a
// client that resets makes the server see a reset.
func TestResetPassedOn(t *testing.T) {
	for _, n := range []int{64 << 10, 1 << 20} {
		front := testenv.Addr(t)
		testenv.StartMaster(t, testenv.WriteConfig(t, rrConfig(front, resettingServer(t, n))), []string{"-w", "1"})
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := io.Copy(io.Discard, c)
		c.Close()
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%d bytes then a server reset: the client read %d bytes and got %v, want a reset", n, got, err)
		}
	}

	back, err := net.Listen("tcp", testenv.Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	front := testenv.Addr(t)
	testenv.StartMaster(t, testenv.WriteConfig(t, rrConfig(front, back.Addr().String())), []string{"-w", "1"})
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	s, err := back.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 5)
	io.ReadFull(s, buf)
	reset(c)
	if _, err := s.Read(buf); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the client reset; the server's read got %v, want a reset", err)
	}
}
