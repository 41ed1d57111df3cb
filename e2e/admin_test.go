package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

// adminSetup starts two greeting backends and a master with an admin port;
// s2 has a heartbeat period.
func adminSetup(t *testing.T, workers string) (m *testenv.Master, adminAddr, front, s1, s2 string) {
	s1, s2 = testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", s1, s2)
	adminAddr, front = testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "web"
algorithm = "RR"
clients = ["127.0.0.*:*"]
listen = [%q]
servers = [%q, { address = %q, heartbeat = "30s" }]
`, adminAddr, front, s1, s2)
	m = testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", workers})
	return
}

// adminSend sends text on one connection, half-closes, and returns all of
// the reply.
func adminSend(t *testing.T, addr, text string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading reply: %v", err)
	}
	return string(b)
}

// TestAdminGolden runs every command in one packet and compares the
// normalised replies with testdata/admin.golden.
func TestAdminGolden(t *testing.T) {
	_, adminAddr, front, s1, s2 := adminSetup(t, "2")
	testenv.Greeting(front)
	waitIdle(t, adminAddr)
	cmds := "help\r\n?\nshow rules\nshow servers\nshow workers\nshow stats\nshow sessions\n" +
		"disable " + hostPort(s1) + " 60\nshow rules\nenable " + hostPort(s1) + "\n" +
		"heartbeat " + hostPort(s2) + "\nbeartbeat " + hostPort(s2) + "\nheartbeat " + hostPort(s1) + "\n" +
		"disable 10.9.9.9 80\ndisable 127.0.0.1\nshow\nfrobnicate\n\nshow servers\n" + runtimeCmds +
		strings.Repeat("x", 5000) + "\nquit\nshow rules\n"
	got := adminSend(t, adminAddr, cmds)
	got = normalise(got, map[string]string{s1: "S1", s2: "S2", front: "FRONT", adminAddr: "ADMIN",
		hostPort(s1): "S1", hostPort(s2): "S2"})
	golden := "testdata/admin.golden"
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("admin replies differ from %s (run go test ./master -run AdminGolden -update)\n--- got:\n%s", golden, got)
	}
}

// runtimeCmds change servers at runtime, with every kind of bad input
// (each answered with one error line, the connection going on).
const runtimeCmds = "add server web 127.0.0.1:1 weight 3 max_connections 7 backup\nset weight web 127.0.0.1:1 0\n" +
	"set max_connections 127.0.0.1 1 9\ndrain 127.0.0.1 1 30\nshow servers\nenable 127.0.0.1 1\n" +
	"shutdown sessions 127.0.0.1 1\ndel server web 127.0.0.1:1\nshow rules\n" +
	"add server nosuch 127.0.0.1:1\nadd server web localhost:80\nadd server web 127.0.0.1:1 weight 257\n" +
	"add server web 127.0.0.1:1 colour blue\nadd server web\nset weight 127.0.0.1 1 -1\nset weight 127.0.0.1 1 5\n" +
	"set weight web 127.0.0.1:1 5\nset max_connections 127.0.0.1 1 lots\ndel server web 127.0.0.1:1\ndel server web 127.0.0.1:2 later\n" +
	"drain 10.9.9.9 80\nshutdown sessions 10.9.9.9 80\nshutdown\nset\nset speed 1\n"

// waitIdle waits until the master counts no live session.
func waitIdle(t *testing.T, adminAddr string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if strings.Contains(adminSend(t, adminAddr, "show stats\n"), "\nsessions: 0\n") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("sessions never went back to 0")
}

func hostPort(addr string) string {
	h, p, _ := net.SplitHostPort(addr)
	return h + " " + p
}

var (
	epochRE  = regexp.MustCompile(`\b1[0-9]{9}\b`)
	volatile = regexp.MustCompile(`(?m)^(\d+\s+)\d+(\s+)\S+(\s+)\d+(\s+)[\d.]+(\s+)\d+`) // show workers rows
	statsRE  = regexp.MustCompile(`(?m)^(uptime|connections/s|bytes from servers|bytes to servers): .*$`)
	rtRE     = regexp.MustCompile(`\d+\.\d\d\s+\d+\.\d\d/\d+\.\d\d/\d+\.\d\d(\s+\d+ \((config|admin)\))`) // response ms, first byte quantiles
	latRE    = regexp.MustCompile(`(?m)^(rule \S+ ms p50/p90/p99:) .*$`)
)

func normalise(s string, names map[string]string) string {
	for from, to := range names {
		s = strings.ReplaceAll(s, from, to)
	}
	s = epochRE.ReplaceAllString(s, "EPOCH")
	s = volatile.ReplaceAllString(s, "${1}PID${2}UPTIME${3}N${4}CPU${5}RSS")
	s = statsRE.ReplaceAllString(s, "$1: N")
	s = latRE.ReplaceAllString(s, "$1 LATENCY")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		// Column widths follow the values, so compare columns, not spaces.
		lines[i] = strings.Join(strings.Fields(rtRE.ReplaceAllString(l, "RT$1")), " ")
	}
	return strings.Join(lines, "\n")
}

func TestAdminSessionsAcrossWorkers(t *testing.T) {
	_, adminAddr, front, _, s2 := adminSetup(t, "2")
	adminSend(t, adminAddr, "heartbeat "+hostPort(s2)+"\n")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for tries := 0; tries < 50; tries++ {
		for len(held) < 6 {
			c, _, err := testenv.Hold(front, "")
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		var doc struct {
			Sessions []struct {
				Client string
				Worker int
			}
			Missing []string
		}
		if err := json.Unmarshal([]byte(adminSend(t, adminAddr, "show sessions json\n")), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Sessions) != 6 || len(doc.Missing) != 0 {
			t.Fatalf("show sessions: %+v, want the 6 held sessions", doc)
		}
		workers := map[int]int{}
		for _, s := range doc.Sessions {
			workers[s.Worker]++
		}
		if len(workers) == 2 {
			return
		}
		held[0].Close() // all on one worker: try another source port
		held = held[1:]
	}
	t.Fatal("sessions never spread over both workers")
}

// TestAdminDisableTakesEffectEverywhere: right after disable, no new
// connection in any worker goes to that server.
func TestAdminDisableTakesEffectEverywhere(t *testing.T) {
	_, adminAddr, front, s1, s2 := adminSetup(t, "2")
	adminSend(t, adminAddr, "heartbeat "+hostPort(s2)+"\n")
	if r := adminSend(t, adminAddr, "disable "+hostPort(s1)+"\n"); r != "web 127.0.0.1 "+strings.Split(hostPort(s1), " ")[1]+" disabled\n\n" {
		t.Fatalf("disable replied %q", r)
	}
	start := time.Now()
	for i := 0; i < 40; i++ {
		if g, err := testenv.Greeting(front); err != nil || g != "hello from "+s2 {
			t.Fatalf("connection %d (%v after disable): %q, %v", i, time.Since(start), g, err)
		}
	}
	adminSend(t, adminAddr, "enable "+hostPort(s1)+"\n")
	got := countGreetings(t, front, 10)
	if got[s1] == 0 {
		t.Fatalf("after enable: %v, want the server back", got)
	}
}

// TestHeartbeatServerStartsDown: a heartbeat server gets nothing until its
// first report, and again nothing once a period passes without one.
func TestHeartbeatServerStartsDown(t *testing.T) {
	s1, s2 := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", s1, s2)
	adminAddr, front := testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[admin]
listen = [%q]
clients = ["127.0.0.1:*"]
[[rule]]
id = "hb"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q, { address = %q, heartbeat = "1s" }]
`, adminAddr, front, s1, s2)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	if got := countGreetings(t, front, 6); got[s2] != 0 {
		t.Fatalf("before any heartbeat: %v, want nothing on %s", got, s2)
	}
	adminSend(t, adminAddr, "heartbeat "+hostPort(s2)+"\n")
	if got := countGreetings(t, front, 6); got[s2] != 3 {
		t.Fatalf("after a heartbeat: %v, want 3 of 6 on %s", got, s2)
	}
	time.Sleep(1100 * time.Millisecond)
	if got := countGreetings(t, front, 6); got[s2] != 0 {
		t.Fatalf("after a missed heartbeat: %v, want nothing on %s", got, s2)
	}
}

// TestAdminStoppedWorker: a SIGSTOPped worker is named as missing, in time,
// and the master keeps supervising.
func TestAdminStoppedWorker(t *testing.T) {
	m, adminAddr, _, _, _ := adminSetup(t, "2")
	pids := m.Workers(t)
	syscall.Kill(pids[0], syscall.SIGSTOP)
	defer syscall.Kill(pids[0], syscall.SIGCONT)
	r := adminSend(t, adminAddr, "show sessions\n") // answers although a worker cannot
	if !strings.Contains(r, fmt.Sprintf("missing: worker %s", "")) || !strings.Contains(r, fmt.Sprint(pids[0])) {
		t.Fatalf("reply %q does not name the stopped worker %d", r, pids[0])
	}
	syscall.Kill(pids[1], syscall.SIGKILL)
	m.WaitLog(t, "respawning", 3*time.Second)
}

// TestAdminJunk: 1 MB of random bytes gets errors or a close, and the next
// connection still gets its answer.
func TestAdminJunk(t *testing.T) {
	_, adminAddr, _, _, _ := adminSetup(t, "1")
	c, err := net.Dial("tcp", adminAddr)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 1<<20)
	rand.Read(junk)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go io.Copy(io.Discard, c)
	c.Write(junk)
	c.Close()
	r := adminSend(t, adminAddr, "show rules\n")
	if !strings.Contains(r, "web | RR |") {
		t.Fatalf("after junk, show rules answered %q", r)
	}
}

func TestAdminRefusesOtherClients(t *testing.T) {
	adminAddr, front := testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[admin]
listen = [%q]
clients = ["127.0.0.2:*"]
[[rule]]
id = "r"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = ["127.0.0.1:9"]
`, adminAddr, front)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	if c, err := net.Dial("tcp", adminAddr); err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(c, "show rules\n")
		b, _ := io.ReadAll(c) // EOF or a reset: either way, nothing
		c.Close()
		if len(b) != 0 {
			t.Fatalf("a client outside the patterns got %q", b)
		}
	}
	c, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, mustResolve(adminAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "show rules\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "admin | G |") {
		t.Fatalf("allowed client got %q", line)
	}
}

func mustResolve(addr string) *net.TCPAddr {
	a, _ := net.ResolveTCPAddr("tcp", addr)
	return a
}

func TestAdminCLI(t *testing.T) {
	_, adminAddr, _, _, _ := adminSetup(t, "1")
	out, err := testenv.Run(t, 10*time.Second, testenv.Bin(t, "g6"), "admin", "-a", adminAddr, "show", "rules")
	if err != nil || !strings.Contains(string(out), "web | RR |") {
		t.Fatalf("g6 admin show rules: %v\n%s", err, out)
	}
	out, err = testenv.Run(t, 10*time.Second, testenv.Bin(t, "g6"), "admin", "-a", adminAddr, "enable", "10.1.1.1", "1")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.HasPrefix(string(out), "error:") {
		t.Fatalf("g6 admin on an error reply: %v\n%s", err, out)
	}
}

// TestAdminScattered errors: a script's long session with ordinary errors
// among its commands stays open (issue #32: the connection closed after
// 100 errors in all); 100 in a row close it, and the last reply says why.
func TestAdminScatteredErrors(t *testing.T) {
	_, adminAddr, _, _, _ := adminSetup(t, "1")
	var b strings.Builder
	for i := range 1000 {
		if i%10 < 3 {
			b.WriteString("disable 127.0.0.1 1\n") // no such server: an error reply
		} else {
			b.WriteString("show workers json\n")
		}
	}
	out := adminSend(t, adminAddr, b.String())
	replies := strings.Split(strings.TrimSuffix(out, "\n\n"), "\n\n")
	errs := 0
	for _, r := range replies {
		if strings.HasPrefix(r, "error:") {
			errs++
		}
	}
	if len(replies) != 1000 || errs != 300 {
		t.Fatalf("%d replies, %d errors; want 1000 and 300:\n%.500s", len(replies), errs, out)
	}
	b.Reset()
	for range 150 {
		b.WriteString("disable 127.0.0.1 1\n")
	}
	out = adminSend(t, adminAddr, b.String())
	replies = strings.Split(strings.TrimSuffix(out, "\n\n"), "\n\n")
	if len(replies) != 101 || replies[100] != "error: 100 errors in a row: closing the connection" {
		t.Fatalf("%d replies to 150 errors, the last %q", len(replies), replies[len(replies)-1])
	}
}
