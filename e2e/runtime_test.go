package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

// runtimeSetup starts a master (-w 2) with an admin port and one rule
// "web" over servers (extra is literal TOML added to the rule).
func runtimeSetup(t *testing.T, alg string, servers []string, extra, global string) (m *testenv.Master, adminAddr, front, path string) {
	adminAddr, front = testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[global]
moratorium = "1s"
%s

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "web"
algorithm = %q
clients = ["127.0.0.*:*"]
listen = [%q]
servers = %s
%s
`, global, adminAddr, alg, front, serverList(servers), extra)
	path = testenv.WriteConfig(t, cfg)
	m = testenv.StartMaster(t, path, []string{"-w", "2"})
	return
}

// must sends one admin line and fails unless the reply is want.
func must(t *testing.T, adminAddr, line, want string) {
	t.Helper()
	if got := adminSend(t, adminAddr, line+"\n"); got != want+"\n\n" {
		t.Fatalf("%s: replied %q, want %q", line, got, want)
	}
}

func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// holdAll opens n sessions and returns them with the server of each.
func holdAll(t *testing.T, front string, n int) ([]net.Conn, []string) {
	t.Helper()
	var cs []net.Conn
	var by []string
	for i := 0; i < n; i++ {
		c, g, err := testenv.Hold(front, "")
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		cs = append(cs, c)
		by = append(by, strings.TrimPrefix(g, "hello from "))
	}
	return cs, by
}

// closedWithin reports whether g6 closes c within d (EOF or reset).
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c) // echoed bytes may come first
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// workersOf lists the worker slots that hold sessions to server.
func workersOf(t *testing.T, adminAddr, server string) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(adminSend(t, adminAddr, "show sessions\n"), "\n") {
		if f := strings.Split(l, " | "); len(f) > 3 && strings.HasSuffix(f[2], "> "+server) {
			out[f[3]] = true
		}
	}
	return out
}

func TestAddAndDelServer(t *testing.T) {
	srv := backends(t, 3)
	_, adminAddr, front, _ := runtimeSetup(t, "RR", srv[:2], "", "")
	must(t, adminAddr, "add server web "+srv[2], "web 127.0.0.1 "+portOf(srv[2])+" added")
	if got := countGreetings(t, front, 20); got[srv[2]] == 0 {
		t.Fatalf("20 connections after add: %v, none to the added server", got)
	}
	cs, by := holdAll(t, front, 60) // 20 on the added server: all in one worker by chance is 2 in a million
	if w := workersOf(t, adminAddr, srv[2]); len(w) != 2 {
		t.Fatalf("sessions to the added server in workers %v, want both", w)
	}
	must(t, adminAddr, "add server web "+srv[2], "error: add server: rule \"web\" already has server "+srv[2])
	must(t, adminAddr, "del server web "+srv[2], "web 127.0.0.1 "+portOf(srv[2])+" removed")
	if got := countGreetings(t, front, 30); got[srv[2]] != 0 {
		t.Fatalf("after del: %v", got)
	}
	var onIt []net.Conn
	for i, s := range by {
		if s == srv[2] {
			onIt = append(onIt, cs[i])
		}
	}
	if closedWithin(onIt[0], 300*time.Millisecond) {
		t.Fatal("del server closed a live session")
	}
	if out := adminSend(t, adminAddr, "show servers json\n"); !strings.Contains(out, `"state": "removed"`) {
		t.Fatalf("show servers does not list the removed server that still has sessions:\n%s", out)
	}
	must(t, adminAddr, "add server web "+srv[2], "web 127.0.0.1 "+portOf(srv[2])+" added")
	must(t, adminAddr, "del server web "+srv[2]+" now", "web 127.0.0.1 "+portOf(srv[2])+" removed")
	for i, c := range onIt {
		if !closedWithin(c, 2*time.Second) {
			t.Fatalf("session %d is open after del server ... now", i)
		}
	}
}

func TestDelServerKeepsSessions(t *testing.T) {
	srv := backends(t, 2)
	_, adminAddr, front, _ := runtimeSetup(t, "MS", srv, "", "")
	cs, by := holdAll(t, front, 2)
	if by[0] != srv[0] || by[1] != srv[0] {
		t.Fatalf("MS sent the sessions to %v", by)
	}
	must(t, adminAddr, "del server web "+srv[0], "web 127.0.0.1 "+portOf(srv[0])+" removed")
	if closedWithin(cs[0], 500*time.Millisecond) {
		t.Fatal("del server closed a live session")
	}
	if _, err := io.WriteString(cs[0], "still here\n"); err != nil {
		t.Fatal(err)
	}
	if g, _ := testenv.Greeting(front); g != "hello from "+srv[1] {
		t.Fatalf("new connection after del went to %q", g)
	}
	// The removed server's session still carries bytes both ways.
	cs[1].SetReadDeadline(time.Now().Add(2 * time.Second))
	io.WriteString(cs[1], "ping\n")
	if b := make([]byte, 5); !func() bool { _, err := io.ReadFull(cs[1], b); return err == nil && string(b) == "ping\n" }() {
		t.Fatal("a session on the removed server no longer echoes")
	}
}

func TestSetWeightShares(t *testing.T) {
	srv := backends(t, 3)
	_, adminAddr, front, _ := runtimeSetup(t, "RR", srv, "", "")
	must(t, adminAddr, "set weight web "+srv[2]+" 2", "web 127.0.0.1 "+portOf(srv[2])+" weight 2")
	got := countGreetings(t, front, 400)
	for i, want := range []int{100, 100, 200} {
		if d := got[srv[i]] - want; d < -20 || d > 20 {
			t.Fatalf("weights 1/1/2 over 400 connections: %v", got)
		}
	}
	must(t, adminAddr, "set weight 127.0.0.1 "+portOf(srv[0])+" 0", "web 127.0.0.1 "+portOf(srv[0])+" weight 0")
	if got := countGreetings(t, front, 40); got[srv[0]] != 0 {
		t.Fatalf("weight 0 still takes connections: %v", got)
	}
	out := adminSend(t, adminAddr, "show servers json\n")
	if !strings.Contains(out, `"weight": 0,`) || !strings.Contains(out, `"weight_source": "admin"`) {
		t.Fatalf("show servers does not show the admin's weight:\n%s", out)
	}
}

func TestMaxConnectionsAtRuntime(t *testing.T) {
	srv := backends(t, 2)
	_, adminAddr, front, _ := runtimeSetup(t, "MS", srv, "", "")
	must(t, adminAddr, "set max_connections 127.0.0.1 "+portOf(srv[0])+" 2", "web 127.0.0.1 "+portOf(srv[0])+" max_connections 2")
	_, by := holdAll(t, front, 4)
	if strings.Join(by, " ") != strings.Join([]string{srv[0], srv[0], srv[1], srv[1]}, " ") {
		t.Fatalf("with max_connections 2 on the first server: %v", by)
	}
}

func TestDrainWithDeadline(t *testing.T) {
	srv := backends(t, 2)
	_, adminAddr, front, _ := runtimeSetup(t, "MS", srv, "", "")
	cs, _ := holdAll(t, front, 3)
	start := time.Now()
	must(t, adminAddr, "drain 127.0.0.1 "+portOf(srv[0])+" 2", "web 127.0.0.1 "+portOf(srv[0])+" draining")
	if got := countGreetings(t, front, 10); got[srv[0]] != 0 {
		t.Fatalf("a draining server took new connections: %v", got)
	}
	if out := adminSend(t, adminAddr, "show servers json\n"); !strings.Contains(out, `"state": "draining"`) || !strings.Contains(out, `"active": 3`) {
		t.Fatalf("show servers during the drain:\n%s", out)
	}
	for i, c := range cs {
		if !closedWithin(c, 15*time.Second) {
			t.Fatalf("session %d still open %v after drain 2", i, time.Since(start))
		}
	}
	// Not before the deadline (the drain's sweep runs every 250 ms); how
	// long after it a loaded machine takes is not the point.
	if el := time.Since(start); el < 1900*time.Millisecond {
		t.Fatalf("sessions closed %v after drain 2, before its deadline", el)
	}
	time.Sleep(100 * time.Millisecond)
	if out := adminSend(t, adminAddr, "show servers json\n"); !strings.Contains(out, `"state": "draining"`) || strings.Contains(out, `"active": 3`) {
		t.Fatalf("show servers after the drain:\n%s", out)
	}
	must(t, adminAddr, "enable 127.0.0.1 "+portOf(srv[0]), "web 127.0.0.1 "+portOf(srv[0])+" enabled")
	if g, _ := testenv.Greeting(front); g != "hello from "+srv[0] {
		t.Fatalf("after enable: %q", g)
	}
}

func TestShutdownSessions(t *testing.T) {
	srv := backends(t, 2)
	_, adminAddr, front, _ := runtimeSetup(t, "MS", srv, "", "")
	on0, _ := holdAll(t, front, 3)
	must(t, adminAddr, "disable 127.0.0.1 "+portOf(srv[0]), "web 127.0.0.1 "+portOf(srv[0])+" disabled")
	on1, _ := holdAll(t, front, 2)
	must(t, adminAddr, "enable 127.0.0.1 "+portOf(srv[0]), "web 127.0.0.1 "+portOf(srv[0])+" enabled")
	must(t, adminAddr, "shutdown sessions 127.0.0.1 "+portOf(srv[0]), "web 127.0.0.1 "+portOf(srv[0])+" closed 3 sessions")
	for i, c := range on0 {
		if !closedWithin(c, 2*time.Second) {
			t.Fatalf("session %d to the shut down server is open", i)
		}
	}
	for i, c := range on1 {
		if closedWithin(c, 300*time.Millisecond) {
			t.Fatalf("session %d to the other server was closed", i)
		}
	}
}

func TestBackupServer(t *testing.T) {
	srv := backends(t, 3)
	servers := fmt.Sprintf("[%q, %q, { address = %q, backup = true }]", srv[0], srv[1], srv[2])
	adminAddr, front := testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf("[admin]\nlisten = [%q]\nclients = [\"127.0.0.1:*\"]\n\n[[rule]]\nid = \"web\"\nalgorithm = \"RR\"\nclients = [\"*:*\"]\nlisten = [%q]\nservers = %s\n",
		adminAddr, front, servers)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	if got := countGreetings(t, front, 20); got[srv[2]] != 0 {
		t.Fatalf("the backup got connections while primaries are up: %v", got)
	}
	adminSend(t, adminAddr, "disable 127.0.0.1 "+portOf(srv[0])+"\nset weight 127.0.0.1 "+portOf(srv[1])+" 0\n")
	if got := countGreetings(t, front, 20); got[srv[2]] != 20 {
		t.Fatalf("with no primary usable: %v, want all on the backup", got)
	}
	must(t, adminAddr, "enable 127.0.0.1 "+portOf(srv[0]), "web 127.0.0.1 "+portOf(srv[0])+" enabled")
	if got := countGreetings(t, front, 20); got[srv[2]] != 0 {
		t.Fatalf("after a primary came back: %v", got)
	}
	// A backup added at runtime waits behind the primaries too.
	extra := backends(t, 1)
	must(t, adminAddr, "add server web "+extra[0]+" backup", "web 127.0.0.1 "+portOf(extra[0])+" added")
	if got := countGreetings(t, front, 20); got[extra[0]] != 0 || got[srv[0]] != 20 {
		t.Fatalf("with one primary up and two backups: %v", got)
	}
}

func TestSlowStart(t *testing.T) {
	srv := backends(t, 2)
	_, adminAddr, front, _ := runtimeSetup(t, "RR", srv, `slow_start = "4s"`, "")
	must(t, adminAddr, "disable 127.0.0.1 "+portOf(srv[1]), "web 127.0.0.1 "+portOf(srv[1])+" disabled")
	must(t, adminAddr, "enable 127.0.0.1 "+portOf(srv[1]), "web 127.0.0.1 "+portOf(srv[1])+" enabled")
	first := map[string]int{}
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		for k, v := range countGreetings(t, front, 10) {
			first[k] += v
		}
	}
	n := first[srv[0]] + first[srv[1]]
	if share := float64(first[srv[1]]) / float64(n); share > 0.25 {
		t.Fatalf("first second after enable: %v (%.0f%% on the returning server, want well under 50%%)", first, 100*share)
	}
	time.Sleep(3500 * time.Millisecond)
	later := countGreetings(t, front, 200)
	if d := later[srv[1]] - 100; d < -25 || d > 25 {
		t.Fatalf("after slow_start: %v, want about half each", later)
	}
}

func TestOnDownShutsSessions(t *testing.T) {
	s1, s2 := testenv.Addr(t), testenv.Addr(t)
	b1 := testenv.Backend(t, "greet", s1)
	testenv.Backend(t, "greet", s2)
	extra := `on_down = "shutdown-sessions"
health_check = { interval = "200ms", timeout = "300ms", rise = 1, fall = 1, send = "", expect = "hello" }`
	_, _, front, _ := runtimeSetup(t, "MS", []string{s1, s2}, extra, "")
	cs, by := holdAll(t, front, 2)
	if by[0] != s1 {
		t.Fatalf("MS sent to %v", by)
	}
	// A stopped backend keeps its sessions (the kernel holds them) but
	// answers no check.
	b1.Process.Signal(syscall.SIGSTOP)
	defer b1.Process.Signal(syscall.SIGCONT)
	for i, c := range cs {
		if !closedWithin(c, 3*time.Second) {
			t.Fatalf("session %d stays open after its server's check failed", i)
		}
	}
}

func TestRuntimeChangesSurviveReloadsAndUpgrade(t *testing.T) {
	srv := backends(t, 3)
	m, adminAddr, front, _ := runtimeSetup(t, "RR", srv[:2], "", "")
	must(t, adminAddr, "add server web "+srv[2]+" weight 3", "web 127.0.0.1 "+portOf(srv[2])+" added")
	must(t, adminAddr, "set weight 127.0.0.1 "+portOf(srv[0])+" 0", "web 127.0.0.1 "+portOf(srv[0])+" weight 0")
	check := func(step string) {
		t.Helper()
		got := countGreetings(t, front, 40)
		if got[srv[0]] != 0 || got[srv[2]] < 25 {
			t.Fatalf("%s: %v, want none on the weight-0 server and most on the added one", step, got)
		}
	}
	check("before")
	for i := 1; i <= 3; i++ {
		syscall.Kill(m.Pid(), syscall.SIGHUP)
		m.WaitCount(t, "reloaded", i, 20*time.Second)
		check(fmt.Sprintf("reload %d", i))
	}
	old := m.Pid()
	syscall.Kill(old, syscall.SIGUSR2)
	m.WaitCount(t, "upgrade complete", 1, 20*time.Second)
	waitPidChange(t, m, old)
	check("after USR2")
	if out := adminSend(t, adminAddr, "show servers json\n"); !strings.Contains(out, `"source": "admin"`) {
		t.Fatalf("after USR2 show servers lost the admin's server:\n%s", out)
	}
}

func TestStateFileSurvivesRestart(t *testing.T) {
	srv := backends(t, 3)
	state := t.TempDir() + "/state.json"
	global := fmt.Sprintf("state_file = %q", state)
	m, adminAddr, front, path := runtimeSetup(t, "RR", srv[:2], "", global)
	must(t, adminAddr, "add server web "+srv[2]+" weight 3", "web 127.0.0.1 "+portOf(srv[2])+" added")
	must(t, adminAddr, "disable 127.0.0.1 "+portOf(srv[0]), "web 127.0.0.1 "+portOf(srv[0])+" disabled")
	syscall.Kill(m.Cmd.Process.Pid, syscall.SIGTERM)
	if code := m.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("master exited %d", code)
	}
	if b, err := os.ReadFile(state); err != nil || !strings.Contains(string(b), `"added": true`) {
		t.Fatalf("state file after TERM: %s %v", b, err)
	}
	testenv.StartMaster(t, path, []string{"-w", "2"})
	// RR over weights 1 (disabled: its turn passes to the next), 1, 3: 16/24.
	got := countGreetings(t, front, 40)
	if got[srv[0]] != 0 || got[srv[2]] != 24 {
		t.Fatalf("after a fresh start with the state file: %v", got)
	}
	if out := adminSend(t, adminAddr, "show servers json\n"); !strings.Contains(out, `"state": "disabled"`) {
		t.Fatalf("the disable did not survive the restart:\n%s", out)
	}
}

func TestCorruptStateFile(t *testing.T) {
	srv := backends(t, 2)
	state := t.TempDir() + "/state.json"
	os.WriteFile(state, []byte("{not json"), 0o644)
	m, _, front, _ := runtimeSetup(t, "RR", srv, "", fmt.Sprintf("state_file = %q", state))
	m.WaitLog(t, "state file unusable; starting from the config alone", 5*time.Second)
	if !strings.Contains(m.Log(), state) {
		t.Fatalf("the error does not name %s:\n%s", state, m.Log())
	}
	if got := countGreetings(t, front, 10); got[srv[0]]+got[srv[1]] != 10 {
		t.Fatalf("not serving from the config: %v", got)
	}
	if b, err := os.ReadFile(state + ".bad"); err != nil || string(b) != "{not json" {
		t.Fatalf("the unusable file was not kept as .bad: %q %v", b, err)
	}
}

func TestNoFreeServerSlot(t *testing.T) {
	srv := backends(t, 1)
	_, adminAddr, _, _ := runtimeSetup(t, "RR", srv, "", "max_servers = 2")
	must(t, adminAddr, "add server web 127.0.0.1:1", "web 127.0.0.1 1 added")
	got := adminSend(t, adminAddr, "add server web 127.0.0.1:2\nshow rules\n")
	if !strings.HasPrefix(got, "error: add server: pool: shared: servers: no free slot") || !strings.Contains(got, "raise max_servers") ||
		!strings.Contains(got, "web | RR") {
		t.Fatalf("add beyond max_servers: %q", got)
	}
}

// TestPowerOfTwoHeld: P2 over held sessions spreads them about evenly
// (each pick takes the less loaded of two).
func TestPowerOfTwoHeld(t *testing.T) {
	srv := backends(t, 3)
	_, _, front, _ := runtimeSetup(t, "P2", srv, "", "")
	_, by := holdAll(t, front, 30)
	got := map[string]int{}
	for _, s := range by {
		got[s]++
	}
	for _, s := range srv {
		if got[s] < 6 || got[s] > 14 {
			t.Fatalf("P2 over 30 held sessions: %v", got)
		}
	}
}

// TestOnDownHeartbeatMissed: a missed heartbeat with on_down closes the
// server's sessions.
func TestOnDownHeartbeatMissed(t *testing.T) {
	srv := backends(t, 1)
	servers := fmt.Sprintf(`[{ address = %q, heartbeat = "1s", on_down = "shutdown-sessions" }]`, srv[0])
	adminAddr, front := testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf("[admin]\nlisten = [%q]\nclients = [\"127.0.0.1:*\"]\n\n[[rule]]\nid = \"web\"\nalgorithm = \"RR\"\nclients = [\"*:*\"]\nlisten = [%q]\nservers = %s\n",
		adminAddr, front, servers)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	must(t, adminAddr, "heartbeat 127.0.0.1 "+portOf(srv[0]), "web 127.0.0.1 "+portOf(srv[0])+" heartbeat")
	cs, _ := holdAll(t, front, 2)
	start := time.Now()
	for i, c := range cs {
		if !closedWithin(c, 3*time.Second) {
			t.Fatalf("session %d open %v after the last heartbeat (period 1s)", i, time.Since(start))
		}
	}
	if el := time.Since(start); el < 700*time.Millisecond {
		t.Fatalf("sessions closed after %v, before the heartbeat period ran out", el)
	}
}

// statsTotals reads show stats json's totals.
func statsTotals(t *testing.T, adminAddr string) (total, failures, fromServer int64, rate float64) {
	t.Helper()
	var st struct {
		Total      int64   `json:"connections_total"`
		Failures   int64   `json:"connect_failures"`
		FromServer int64   `json:"bytes_from_servers"`
		Rate       float64 `json:"connections_per_second"`
	}
	if err := json.Unmarshal([]byte(adminSend(t, adminAddr, "show stats json\n")), &st); err != nil {
		t.Fatal(err)
	}
	return st.Total, st.Failures, st.FromServer, st.Rate
}

// TestTotalsNeverGoBack: del server after traffic leaves show stats'
// totals and the rules' counters where they were (issue #32: connections
// went from 52,301 to 51,190 and the rate to -207.7/s), and a rule with
// no traffic for the rate's 10 s window has a rate of 0, not its lifetime
// average.
func TestTotalsNeverGoBack(t *testing.T) {
	servers := backends(t, 2)
	metrics := testenv.Addr(t)
	_, adminAddr, front, _ := runtimeSetup(t, "RR", servers, "", fmt.Sprintf("metrics = %q", metrics))
	for range 200 {
		if _, err := testenv.Greeting(front); err != nil {
			t.Fatal(err)
		}
	}
	total, _, bytes, _ := statsTotals(t, adminAddr)
	if total != 200 || bytes == 0 {
		t.Fatalf("after 200 sessions: total %d, bytes %d", total, bytes)
	}
	must(t, adminAddr, "del server web "+servers[1], "web "+strings.Replace(servers[1], ":", " ", 1)+" removed")
	if total2, _, bytes2, _ := statsTotals(t, adminAddr); total2 != total || bytes2 < bytes {
		t.Fatalf("after del server: total %d (was %d), bytes %d (was %d)", total2, total, bytes2, bytes)
	}
	if v := sumOf(scrape(t, metrics)["g6_rule_connections_total"], "rule", "web"); v != 200 {
		t.Errorf("g6_rule_connections_total = %v, want 200", v)
	}
	for range 10 {
		testenv.Greeting(front)
	}
	time.Sleep(11 * time.Second) // past the rate's window
	total3, _, _, rate := statsTotals(t, adminAddr)
	if total3 != 210 || rate != 0 {
		t.Errorf("idle: total %d (want 210), rate %v (want 0)", total3, rate)
	}
	if !strings.Contains(adminSend(t, adminAddr, "show stats\n"), "connections/s: 0.0 (last 10 s)") {
		t.Errorf("show stats:\n%s", adminSend(t, adminAddr, "show stats\n"))
	}
}
