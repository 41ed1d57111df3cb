package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"g6/internal/testenv"
)

// panicSetup: one rule "web" over servers, one worker, a long moratorium
// (a server isolated in the test stays isolated for its whole run).
func panicSetup(t *testing.T, servers []string, extra string) (m *testenv.Master, adminAddr, front string) {
	adminAddr, front = testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[global]
moratorium = "10m"
%s

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "web"
algorithm = "RR"
clients = ["127.0.0.*:*"]
listen = [%q]
servers = %s
`, extra, adminAddr, front, serverList(servers))
	m = testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	return
}

type ruleState struct {
	ID               string `json:"id"`
	Panic            bool   `json:"panic"`
	PanicConnections int64  `json:"panic_connections"`
	Servers          []struct {
		Address  string `json:"address"`
		State    string `json:"state"`
		Failures int64  `json:"failures"`
	} `json:"servers"`
}

func webRule(t *testing.T, adminAddr string) ruleState {
	t.Helper()
	var doc struct{ Rules []ruleState }
	if err := json.Unmarshal([]byte(adminSend(t, adminAddr, "show rules json\n")), &doc); err != nil {
		t.Fatal(err)
	}
	for _, r := range doc.Rules {
		if r.ID == "web" {
			return r
		}
	}
	t.Fatal("no rule web")
	return ruleState{}
}

// TestPanicTriesIsolatedServers: both servers isolated by refused
// connects; once they are back, the next client is served, not refused
// for the moratorium (issue #31). While no server answers, show rules and
// the metric say panic; the episode is logged once each way.
func TestPanicTriesIsolatedServers(t *testing.T) {
	a, b, metrics := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	m, adminAddr, front := panicSetup(t, []string{a, b}, fmt.Sprintf("metrics = %q", metrics))
	// Both down: the first client isolates both and is closed.
	if g, err := testenv.Greeting(front); err == nil {
		t.Fatalf("served %q with both servers down", g)
	}
	r := webRule(t, adminAddr)
	if r.Servers[0].State != "down" || r.Servers[1].State != "down" || r.Panic {
		t.Fatalf("after the first client: %+v", r)
	}
	// Still down: the next client tries them anyway (panic) and fails.
	if g, err := testenv.Greeting(front); err == nil {
		t.Fatalf("served %q with both servers down", g)
	}
	r = webRule(t, adminAddr)
	if !r.Panic || r.PanicConnections != 1 {
		t.Fatalf("after a client in panic: %+v", r)
	}
	if text := adminSend(t, adminAddr, "show rules\n"); !strings.Contains(text, "| panic\n") {
		t.Errorf("show rules does not say panic:\n%s", text)
	}
	if v := sumOf(scrape(t, metrics)["g6_rule_panic"], "rule", "web"); v != 1 {
		t.Errorf("g6_rule_panic = %v in panic, want 1", v)
	}
	m.WaitLog(t, "rule in panic", 5*time.Second)
	// Back up: served at once, though both are still in their moratorium.
	testenv.Backend(t, "greet", a, b)
	for i := 0; i < 10; i++ {
		if g, err := testenv.Greeting(front); err != nil || !strings.HasPrefix(g, "hello from") {
			t.Fatalf("client %d after the servers came back: %q, %v", i, g, err)
		}
	}
	m.WaitLog(t, "rule out of panic", 5*time.Second)
	r = webRule(t, adminAddr)
	if r.Panic {
		t.Errorf("still in panic: %+v", r)
	}
	if v := sumOf(scrape(t, metrics)["g6_rule_panic"], "rule", "web"); v != 0 {
		t.Errorf("g6_rule_panic = %v after panic, want 0", v)
	}
	// The first panic connect readmitted the longest isolated server (a);
	// b stays isolated, since a takes every client now.
	if r.Servers[0].State != "up" || r.Servers[1].State != "down" {
		t.Errorf("after panic: %+v", r.Servers)
	}
	if n := strings.Count(m.Log(), "rule in panic"); n != 1 {
		t.Errorf("panic logged %d times, want once", n)
	}
}

// TestPanicNotForDisabledServers: a disabled server is never tried in
// panic; the isolated one is.
func TestPanicNotForDisabledServers(t *testing.T) {
	a, b := testenv.Addr(t), testenv.Addr(t)
	_, adminAddr, front := panicSetup(t, []string{a, b}, "")
	testenv.Backend(t, "greet", b)
	if reply := adminSend(t, adminAddr, "disable "+strings.Replace(b, ":", " ", 1)+"\n"); !strings.Contains(reply, "disabled") {
		t.Fatalf("disable: %q", reply)
	}
	testenv.Greeting(front) // isolates a
	testenv.Backend(t, "greet", a)
	for i := 0; i < 5; i++ {
		if g, err := testenv.Greeting(front); err != nil || g != "hello from "+a {
			t.Fatalf("client %d: %q, %v (want a, never the disabled b)", i, g, err)
		}
	}
}

// TestIsolateAfter: with isolate_after = 3 a server is still chosen after
// two failed connects in a row and isolated by the third.
func TestIsolateAfter(t *testing.T) {
	a := testenv.Addr(t)
	_, adminAddr, front := panicSetup(t, []string{a}, "isolate_after = 3")
	for i := 1; i <= 3; i++ {
		if g, err := testenv.Greeting(front); err == nil {
			t.Fatalf("served %q by a dead server", g)
		}
		s := webRule(t, adminAddr).Servers[0]
		want := "up"
		if i == 3 {
			want = "down"
		}
		if s.Failures != int64(i) || s.State != want {
			t.Fatalf("after %d failed connects: %+v, want %s", i, s, want)
		}
	}
}
