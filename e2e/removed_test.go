package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

// TestRemovedListenRefusesAtOnce: after a reload drops a listen address,
// new connections to it are refused at once (not accepted by the kernel
// and left waiting for the old generation's drain), while the sessions
// already on it go on.
func TestRemovedListenRefusesAtOnce(t *testing.T) {
	echo := testenv.Addr(t)
	testenv.Backend(t, "echo", echo)
	kept, removed := testenv.Addr(t), testenv.Addr(t)
	both := rrConfig(kept, echo) + fmt.Sprintf(`
[[rule]]
id = "removed"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]
`, removed, echo)
	path := testenv.WriteConfig(t, both)
	m := testenv.StartMaster(t, path, []string{"-w", "2"})
	var held []net.Conn
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", removed)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		echoOnce(t, c, "before")
		held = append(held, c)
	}
	os.WriteFile(path, []byte(rrConfig(kept, echo)), 0o644)
	m.Cmd.Process.Signal(syscall.SIGHUP)
	m.WaitLog(t, "msg=reloaded", 10*time.Second)
	for i := 0; i < 5; i++ {
		c, err := net.DialTimeout("tcp", removed, time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("connection %d to the removed address %s was accepted", i, removed)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("connection %d to the removed address: %v, want connection refused", i, err)
		}
	}
	for _, c := range held {
		echoOnce(t, c, "after")
	}
	if g, err := net.DialTimeout("tcp", kept, time.Second); err != nil {
		t.Fatalf("the kept address: %v", err)
	} else {
		g.Close()
	}
}
