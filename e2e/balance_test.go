package e2e

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

// ruleConfig is one rule with literal extra TOML for clients and servers.
func ruleConfig(alg, listen, clients, servers string) string {
	return fmt.Sprintf(`
[global]
connect_timeout = "2s"
moratorium = "1s"

[[rule]]
id = "t"
algorithm = %q
clients = %s
listen = [%q]
servers = %s
`, alg, clients, listen, servers)
}

// backends starts n greeting backends and returns their addresses.
func backends(t *testing.T, n int) []string {
	var addrs []string
	for i := 0; i < n; i++ {
		addrs = append(addrs, testenv.Addr(t))
	}
	testenv.Backend(t, "greet", addrs...)
	return addrs
}

func serverList(addrs []string) string { return "[" + quoteList(addrs) + "]" }

// countGreetings makes n sequential connections and counts who answered.
func countGreetings(t *testing.T, addr string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		g, err := testenv.Greeting(addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		got[strings.TrimPrefix(g, "hello from ")]++
	}
	return got
}

// holdN opens n connections from src and keeps them; it returns how many
// got a greeting, and by whom.
func holdN(t *testing.T, addr, src string, n int) (int, map[string]int) {
	t.Helper()
	ok, by := 0, map[string]int{}
	for i := 0; i < n; i++ {
		c, g, err := testenv.Hold(addr, src)
		if err != nil {
			continue
		}
		t.Cleanup(func() { c.Close() })
		ok++
		by[strings.TrimPrefix(g, "hello from ")]++
	}
	return ok, by
}

func startRule(t *testing.T, alg, clients string, servers []string, extra string) (*testenv.Master, string) {
	front := testenv.Addr(t)
	cfg := testenv.WriteConfig(t, ruleConfig(alg, front, clients, serverList(servers))+extra)
	return testenv.StartMaster(t, cfg, []string{"-w", "2"}), front
}

func TestRoundRobinExact(t *testing.T) {
	srv := backends(t, 3)
	_, front := startRule(t, "RR", `["*:*"]`, srv, "")
	got := countGreetings(t, front, 30)
	for _, s := range srv {
		if got[s] != 10 {
			t.Fatalf("RR over 3 servers, 30 connections: %v, want 10 each", got)
		}
	}
}

func TestLeastConnsHeld(t *testing.T) {
	srv := backends(t, 3)
	_, front := startRule(t, "LC", `["*:*"]`, srv, "")
	n, by := holdN(t, front, "", 12)
	if n != 12 {
		t.Fatalf("held %d of 12", n)
	}
	for _, s := range srv {
		if by[s] != 4 {
			t.Fatalf("LC with 12 held connections: %v, want 4 each", by)
		}
	}
}

func TestMasterStandbyFailoverAndBack(t *testing.T) {
	primary, standby := testenv.Addr(t), testenv.Addr(t)
	p := testenv.Backend(t, "greet", primary)
	testenv.Backend(t, "greet", standby)
	_, front := startRule(t, "MS", `["*:*"]`, []string{primary, standby}, "")
	if got := countGreetings(t, front, 5); got[primary] != 5 {
		t.Fatalf("with both up: %v, want all on the primary", got)
	}
	p.Process.Kill()
	p.Wait()
	if got := countGreetings(t, front, 5); got[standby] != 5 {
		t.Fatalf("primary down: %v, want all on the standby", got)
	}
	testenv.Backend(t, "greet", primary)
	time.Sleep(1100 * time.Millisecond) // the primary's moratorium (1s) ends
	if got := countGreetings(t, front, 5); got[primary] != 5 {
		t.Fatalf("primary back: %v, want all back on the primary", got)
	}
}

func TestHashStickyPerSourceIP(t *testing.T) {
	srv := backends(t, 3)
	_, front := startRule(t, "HS", `["127.0.0.*:*"]`, srv, "")
	used := map[string]bool{}
	for i := 2; i <= 9; i++ {
		src := fmt.Sprintf("127.0.0.%d", i)
		var first string
		for j := 0; j < 4; j++ {
			c, g, err := testenv.Hold(front, src)
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			c.Close()
			if j == 0 {
				first = g
			} else if g != first {
				t.Fatalf("%s went to %q then %q", src, first, g)
			}
		}
		used[first] = true
	}
	if len(used) < 2 {
		t.Fatalf("8 source IPs all hashed to %v", used)
	}
}

func TestRandomSpreads(t *testing.T) {
	srv := backends(t, 3)
	_, front := startRule(t, "RD", `["*:*"]`, srv, "")
	got := countGreetings(t, front, 90)
	for _, s := range srv {
		if got[s] < 10 {
			t.Fatalf("RD over 90 connections: %v", got)
		}
	}
}

func TestResponseTimePrefersFast(t *testing.T) {
	fast, slow := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", fast)
	testenv.BackendArgs(t, []string{"-mode", "greet", "-delay", "150ms"}, slow)
	_, front := startRule(t, "RT", `["*:*"]`, []string{slow, fast}, "")
	countGreetings(t, front, 4) // both get measured
	if got := countGreetings(t, front, 20); got[fast] != 20 {
		t.Fatalf("RT after warm-up: %v, want every connection on the fast server", got)
	}
}

func TestClientMaxConnections(t *testing.T) {
	srv := backends(t, 2)
	_, front := startRule(t, "RR", `[{ pattern = "*:*", max_connections = 5 }]`, srv, "")
	if n, _ := holdN(t, front, "", 8); n != 5 {
		t.Fatalf("max_connections = 5 admitted %d of 8 held connections", n)
	}
}

func TestClientPerIPAndMaxIP(t *testing.T) {
	srv := backends(t, 2)
	_, front := startRule(t, "RR",
		`[{ pattern = "127.0.0.*:*", max_connections_per_ip = 2, max_ip = 2 }]`, srv, "")
	steps := []struct {
		src  string
		n    int
		want int
	}{
		{"127.0.0.2", 3, 2}, // per IP: 2
		{"127.0.0.3", 3, 2},
		{"127.0.0.4", 1, 0}, // a third IP breaks max_ip = 2
	}
	for _, s := range steps {
		if got, _ := holdN(t, front, s.src, s.n); got != s.want {
			t.Fatalf("from %s: %d of %d admitted, want %d", s.src, got, s.n, s.want)
		}
	}
}

func TestServerMaxConnections(t *testing.T) {
	srv := backends(t, 1)
	front := testenv.Addr(t)
	cfg := testenv.WriteConfig(t, ruleConfig("RR", front, `["*:*"]`,
		fmt.Sprintf(`[{ address = %q, max_connections = 3 }]`, srv[0])))
	testenv.StartMaster(t, cfg, []string{"-w", "2"})
	if n, _ := holdN(t, front, "", 5); n != 3 {
		t.Fatalf("server max_connections = 3 held %d of 5", n)
	}
}

// TestKilledWorkerReleasesCounts: connections held by killed workers no
// longer count against the client limit.
func TestKilledWorkerReleasesCounts(t *testing.T) {
	srv := backends(t, 2)
	m, front := startRule(t, "RR", `[{ pattern = "*:*", max_connections = 4 }]`, srv, "")
	var held []net.Conn
	for i := 0; i < 4; i++ {
		c, _, err := testenv.Hold(front, "")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	if _, _, err := testenv.Hold(front, ""); err == nil {
		t.Fatal("a fifth connection was admitted over max_connections = 4")
	}
	for _, pid := range m.Workers(t) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, c := range held {
		c.Close()
	}
	m.WaitLog(t, "respawning", 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if n, _ := holdN(t, front, "", 4); n != 4 {
		t.Fatalf("after the workers were killed, %d of 4 admitted: counts leaked", n)
	}
}
