package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"g6/internal/testenv"
)

func addr6(t *testing.T) string {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestIPv6 forwards, balances, limits and administers over ::1.
func TestIPv6(t *testing.T) {
	s1, s2 := addr6(t), addr6(t)
	testenv.Backend(t, "greet", s1, s2)
	front, adminAddr := addr6(t), addr6(t)
	cfg := fmt.Sprintf(`
[admin]
listen = [%q]
clients = ["[::1]:*"]

[[rule]]
id = "v6"
algorithm = "RR"
clients = [{ pattern = "[::1]:*", max_connections = 3 }]
listen = [%q]
servers = [%q, %q]
`, adminAddr, front, s1, s2)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	got := countGreetings(t, front, 10)
	if got[s1] != 5 || got[s2] != 5 {
		t.Fatalf("RR over IPv6: %v, want 5 each", got)
	}
	if n, _ := holdN(t, front, "", 5); n != 3 {
		t.Fatalf("max_connections = 3 over IPv6 admitted %d of 5", n)
	}
	rules := adminSend(t, adminAddr, "show rules\n")
	if !strings.Contains(rules, "v6 | RR | [::1]:* - "+front+" > "+s1+"(") {
		t.Fatalf("show rules over IPv6:\n%s", rules)
	}
	_, port, _ := net.SplitHostPort(s1)
	if r := adminSend(t, adminAddr, "disable ::1 "+port+"\n"); r != "v6 ::1 "+port+" disabled\n\n" {
		t.Fatalf("disable over IPv6: %q", r)
	}
}
