package e2e

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"g6/internal/testenv"
)

func openFds(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// TestNoFdLeak: after sessions of every kind end (normal, client gone
// before the server answers, a dead server retried, refused by a limit, a
// bulk session that was spliced), the worker holds exactly the descriptors
// it had before.
func TestNoFdLeak(t *testing.T) {
	live, echo, dead := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", live)
	testenv.Backend(t, "echo", echo)
	front, bulk := testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[[rule]]
id = "g"
algorithm = "RR"
clients = [{ pattern = "127.0.0.1:*", max_connections = 20 }]
listen = [%q]
servers = [%q, %q]

[[rule]]
id = "b"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]
`, front, dead, live, bulk, echo)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	countGreetings(t, front, 5) // warm the pools (pipes, buffers) first
	bulkSession(t, bulk)
	pid := m.Workers(t)[0]
	before := openFds(pid)
	countGreetings(t, front, 100)
	for i := 0; i < 50; i++ { // clients that leave at once
		if c, err := net.Dial("tcp", front); err == nil {
			c.Close()
		}
	}
	// Those sessions hold places under the limit until the worker has seen
	// each client go (the dead server is tried first): wait for their
	// descriptors, closed after their counts are released, to be gone.
	within(t, 5*time.Second, "the quick clients' sessions ended", func() error {
		if n := openFds(pid); n != before {
			return fmt.Errorf("%d fds, %d before", n, before)
		}
		return nil
	})
	var held []net.Conn
	for i := 0; i < 25; i++ { // 20 admitted, 5 refused by the limit
		if c, _, err := testenv.Hold(front, ""); err == nil {
			held = append(held, c)
		}
	}
	if len(held) != 20 {
		t.Fatalf("held %d, want 20", len(held))
	}
	bulkSession(t, bulk)
	for _, c := range held {
		c.Close()
	}
	var after int
	for i := 0; i < 100; i++ {
		if after = openFds(pid); after == before {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("worker has %d fds after the sessions ended, %d before", after, before)
}

// bulkSession pushes 2 MB through an echo rule (spliced after 256 KiB).
func bulkSession(t *testing.T, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go writeAndClose(c.(*net.TCPConn), make([]byte, 2<<20))
	buf := make([]byte, 64<<10)
	n := 0
	for {
		k, err := c.Read(buf)
		n += k
		if err != nil {
			break
		}
	}
	if n != 2<<20 {
		t.Fatalf("bulk session echoed %d bytes, want %d", n, 2<<20)
	}
}
