package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"g6/internal/testenv"
)

// sourcesSeen opens n sessions through front one after another and
// counts the source IPs the whoami backend reports.
func sourcesSeen(t *testing.T, front string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for i := 0; i < n; i++ {
		c, line, err := testenv.Hold(front, "")
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		c.Close()
		addr := strings.TrimPrefix(line, "you are ")
		ip := addr[:strings.LastIndexByte(addr, ':')]
		seen[ip]++
	}
	return seen
}

// TestSource: connections to the servers leave from the configured
// source addresses (rule level, in turn over a list, a server's own),
// and a source this host does not have fails `g6 check` naming it.
func TestSource(t *testing.T) {
	back1, back2 := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "whoami", back1)
	testenv.Backend(t, "whoami", back2)
	one, two, own := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[[rule]]
id = "one"
algorithm = "RR"
source = "127.0.0.5"
clients = ["*:*"]
listen = [%q]
servers = [%q]

[[rule]]
id = "two"
algorithm = "RR"
source = ["127.0.0.5", "127.0.0.6"]
clients = ["*:*"]
listen = [%q]
servers = [%q]

[[rule]]
id = "own"
algorithm = "RR"
source = "127.0.0.5"
clients = ["*:*"]
listen = [%q]
servers = [{ address = %q, source = "127.0.0.7" }]
`, one, back1, two, back2, own, back1)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	if got := sourcesSeen(t, one, 3); got["127.0.0.5"] != 3 {
		t.Errorf("source = 127.0.0.5: the backend saw %v", got)
	}
	if got := sourcesSeen(t, two, 6); got["127.0.0.5"] != 3 || got["127.0.0.6"] != 3 {
		t.Errorf("two sources: the backend saw %v, want 3 from each", got)
	}
	if got := sourcesSeen(t, own, 2); got["127.0.0.7"] != 2 {
		t.Errorf("a server's own source: the backend saw %v", got)
	}

	bad := testenv.WriteConfig(t, strings.Replace(cfg, `source = ["127.0.0.5", "127.0.0.6"]`, `source = ["127.0.0.5", "192.0.2.77"]`, 1))
	out, err := testenv.Run(t, 10*time.Second, testenv.Bin(t, "g6"), "check", "-c", bad)
	if err == nil || !strings.Contains(string(out), `g6.toml:13: rule "two": server `+back2+`: source 192.0.2.77: this host has no address 192.0.2.77`) {
		t.Fatalf("g6 check with a source this host lacks: %v\n%s", err, out)
	}
}
