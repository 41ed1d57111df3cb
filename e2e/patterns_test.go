package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"g6/internal/testenv"
)

// TestCIDRAndDenyPatterns: CIDR client patterns (IPv4 and IPv6) and deny
// entries, first match wins, on a rule and on the admin port; a denied
// client is closed at once and counted.
func TestCIDRAndDenyPatterns(t *testing.T) {
	back, adminAddr, metrics := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	front := testenv.Addr(t)
	front6 := fmt.Sprintf("[::1]:%d", testenv.FreePort(t))
	access := filepath.Join(t.TempDir(), "access.log")
	testenv.Backend(t, "greet", back)
	cfg := fmt.Sprintf(`
[global]
access_log = %q
metrics = %q

[admin]
listen = [%q]
clients = [{ pattern = "127.0.0.66:*", deny = true }, "127.0.0.0/8:*"]

[[rule]]
id = "cidr"
algorithm = "RR"
listen = [%q, %q]
clients = [
  { pattern = "127.0.0.66:*", deny = true },
  { pattern = "127.0.0.64/30:*", max_connections = 1 },
  "127.0.0.0/24:*",
  "[::1/128]:*",
]
servers = [%q]
`, access, metrics, adminAddr, front, front6, back)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})

	for _, src := range []string{"127.0.0.5", "127.0.0.65", "::1"} {
		addr := front
		if src == "::1" {
			addr = front6
		}
		c, g, err := testenv.Hold(addr, src)
		if err != nil || !strings.HasPrefix(g, "hello from") {
			t.Fatalf("from %s: %q %v", src, g, err)
		}
		c.Close()
	}
	// 127.0.0.66 is denied before the /30 that would take it; 127.0.1.1
	// matches no pattern.
	for _, src := range []string{"127.0.0.66", "127.0.1.1"} {
		if _, g, err := testenv.Hold(front, src); err == nil {
			t.Fatalf("from %s: served %q", src, g)
		}
	}
	refused := scrape(t, metrics)["g6_rule_refused_total"]
	if d, n := sumOf(refused, "reason", "denied"), sumOf(refused, "reason", "no_match"); d != 1 || n != 1 {
		t.Fatalf("denied %v, no_match %v", d, n)
	}
	within(t, 5*time.Second, "the access log", func() error {
		b, _ := os.ReadFile(access)
		if !strings.Contains(string(b), "client=127.0.0.66:") || !strings.Contains(string(b), "end=denied") {
			return fmt.Errorf("no denied line in\n%s", b)
		}
		return nil
	})

	// The admin port: the same forms.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.66")}, Timeout: 2 * time.Second}
	if c, err := d.Dial("tcp", adminAddr); err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "show stats\n")
		buf := make([]byte, 64)
		if n, _ := c.Read(buf); n > 0 && !strings.HasPrefix(string(buf[:n]), "error") {
			t.Fatalf("a denied admin client got %q", buf[:n])
		}
		c.Close()
	}
	if got := adminSend(t, adminAddr, "show stats\n"); !strings.Contains(got, "sessions:") {
		t.Fatalf("admin from 127.0.0.1: %q", got)
	}
}
