package admin

import (
	"bufio"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"g6/conf"
)

// serve runs a Server with no backend (help and quit need none) on a
// loopback port and returns a connection to it.
func serve(t *testing.T, idle time.Duration) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	all, err := conf.ParsePattern("*:*")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Clients: []conf.Client{{Pattern: all}}, Log: slog.New(slog.DiscardHandler), Idle: idle}
	go s.Serve(ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// reply reads one reply (up to its empty line), failing after 3 s.
func reply(t *testing.T, c net.Conn, r *bufio.Reader) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading a reply after %q: %v", b.String(), err)
		}
		if line == "\n" {
			return b.String()
		}
		b.WriteString(line)
	}
}

func TestLineTooLongAnsweredAtOnce(t *testing.T) {
	c := serve(t, time.Minute)
	r := bufio.NewReader(c)
	// 5000 bytes and no newline: the answer must come now, not at the newline.
	if _, err := c.Write([]byte(strings.Repeat("x", 5000))); err != nil {
		t.Fatal(err)
	}
	if got, want := reply(t, c, r), "error: line too long (max 4096 bytes)\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	// The rest of the long line is skipped; the connection stays usable.
	c.Write([]byte(strings.Repeat("y", 3000) + "\nhelp\n"))
	if got := reply(t, c, r); !strings.Contains(got, "show rules") {
		t.Fatalf("after the long line, help answered %q", got)
	}
}

func TestLineNeverEndingClosedAtIdle(t *testing.T) {
	c := serve(t, 300*time.Millisecond)
	r := bufio.NewReader(c)
	c.Write([]byte(strings.Repeat("x", 5000)))
	reply(t, c, r)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := r.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes; want the connection closed after the idle limit", n)
	}
}
