package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"g6/internal/testenv"
)

// burst opens n sessions from src, one every 20 ms (n/50 seconds), and
// counts those the backend greeted; it says how long that took.
func burst(t *testing.T, front, src string, n int) (int, time.Duration) {
	admitted := 0
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < n; i++ {
		<-tick.C
		if c, g, err := testenv.Hold(front, src); err == nil {
			c.Close()
			if strings.HasPrefix(g, "hello from") {
				admitted++
			}
		}
	}
	return admitted, time.Since(start)
}

// expect is how many connections a 10/s bucket with a burst of 1 admits
// in d: the burst, then one per 100 ms.
func expect(d time.Duration) int { return 1 + int(d/(100*time.Millisecond)) }

// TestRateLimits: with two workers, max_rate = "10/s" admits about 10 of 50
// connections in one second from one IP while another IP gets its own 10;
// max_rate_total caps the sum of two IPs; refusals are counted and shown.
func TestRateLimits(t *testing.T) {
	back, front, adminAddr, metrics := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", back)
	cfg := fmt.Sprintf(`
[global]
metrics = %q

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "rated"
algorithm = "RR"
listen = [%q]
clients = [
  { pattern = "127.0.0.5:*", max_rate = "10/s" },
  { pattern = "127.0.0.6:*", max_rate = "10/s" },
  { pattern = "127.0.0.7?:*", max_rate_total = "10/s" },
]
servers = [%q]
`, metrics, adminAddr, front, back)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})

	got := map[string]int{}
	took := map[string]time.Duration{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for src, n := range map[string]int{"127.0.0.5": 50, "127.0.0.6": 50, "127.0.0.70": 50, "127.0.0.71": 50} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, d := burst(t, front, src, n)
			mu.Lock()
			got[src], took[src] = k, d
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, src := range []string{"127.0.0.5", "127.0.0.6"} {
		if want := expect(took[src]); got[src] < want-2 || got[src] > want+2 {
			t.Errorf("%s, 50 in %v at max_rate 10/s: %d admitted, want %d±2", src, took[src], got[src], want)
		}
	}
	d := max(took["127.0.0.70"], took["127.0.0.71"])
	if sum, want := got["127.0.0.70"]+got["127.0.0.71"], expect(d); sum < want-2 || sum > want+2 {
		t.Errorf("two IPs under max_rate_total 10/s for %v: %d + %d admitted, want %d±2 in all", d, got["127.0.0.70"], got["127.0.0.71"], want)
	}
	refused := 200 - got["127.0.0.5"] - got["127.0.0.6"] - got["127.0.0.70"] - got["127.0.0.71"]
	if n := sumOf(scrape(t, metrics)["g6_rule_refused_total"], "reason", "rate_limit"); int(n) != refused {
		t.Errorf("g6_rule_refused_total{reason=\"rate_limit\"} = %v, want %d", n, refused)
	}
	if s := adminSend(t, adminAddr, "show stats\n"); !strings.Contains(s, fmt.Sprintf("refused by rate limits: %d\n", refused)) {
		t.Errorf("show stats:\n%s", s)
	}
	t.Logf("admitted %v in %v", got, took)
}

// TestRuleMaxConnections: a rule's max_connections bounds its sessions
// from every pattern together, across two workers, and a place freed is
// taken again.
func TestRuleMaxConnections(t *testing.T) {
	back, front, metrics := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", back)
	cfg := fmt.Sprintf(`
[global]
metrics = %q

[[rule]]
id = "capped"
algorithm = "RR"
max_connections = 3
listen = [%q]
clients = ["127.0.0.5:*", { pattern = "127.0.0.0/8:*", max_connections = 10 }]
servers = [%q]
`, metrics, front, back)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	var held []interface{ Close() error }
	for _, src := range []string{"127.0.0.5", "127.0.0.6", "127.0.0.5"} {
		c, _, err := testenv.Hold(front, src)
		if err != nil {
			t.Fatalf("session from %s under the cap: %v", src, err)
		}
		held = append(held, c)
	}
	for _, src := range []string{"127.0.0.6", "127.0.0.5"} {
		if c, g, err := testenv.Hold(front, src); err == nil {
			c.Close()
			t.Fatalf("a fourth session from %s was served: %q", src, g)
		}
	}
	held[0].Close()
	within(t, 5*time.Second, "a freed place taken", func() error {
		c, _, err := testenv.Hold(front, "127.0.0.6")
		if err == nil {
			held = append(held, c)
		}
		return err
	})
	if n := sumOf(scrape(t, metrics)["g6_rule_refused_total"], "reason", "client_limit"); n < 2 {
		t.Errorf("client_limit refusals %v, want at least 2", n)
	}
	for _, c := range held {
		c.Close()
	}
	testenv.CheckCounts(t, m.Pid())
}
