package e2e

import (
	"net"
	"testing"
	"time"

	"g6/internal/testenv"
)

// TestBackendEchoTakesNoPipes: the test backend echoes through a buffer, so
// 100 live echo sessions cost it 100 sockets and no pipes (io.Copy spliced,
// taking a pipe pair per connection and keeping them pooled afterwards).
func TestBackendEchoTakesNoPipes(t *testing.T) {
	addr := testenv.Addr(t)
	cmd := testenv.Backend(t, "echo", addr)
	before := pipeFds(t, cmd.Process.Pid)
	for i := 0; i < 100; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		echoOnce(t, c, "ping")
	}
	if after := pipeFds(t, cmd.Process.Pid); after != before {
		t.Fatalf("the echo backend holds %d pipes with 100 sessions, %d before", after, before)
	}
}
