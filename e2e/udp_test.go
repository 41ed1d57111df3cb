package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

// udpRule is a UDP rule on front over servers; extra is more of its keys.
func udpRule(id, front, extra string, servers ...string) string {
	q := make([]string, len(servers))
	for i, s := range servers {
		q[i] = fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf(`
[[rule]]
id = %q
protocol = "udp"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%s]
%s
`, id, front, strings.Join(q, ", "), extra)
}

// dig asks front for name's A record once (2 s, no retry); "" if no
// answer came.
func dig(t *testing.T, front, name string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(front)
	out, _ := exec.Command("dig", "@"+host, "-p", port, "+short", "+time=2", "+tries=1", name, "A").Output()
	s := strings.TrimSpace(string(out))
	if strings.Contains(s, "timed out") || strings.Contains(s, "no servers") {
		return ""
	}
	return s
}

// udpSessions is show sessions json's UDP sessions.
func udpSessions(t *testing.T, admin string) []map[string]any {
	t.Helper()
	var doc struct{ Sessions []map[string]any }
	if err := json.Unmarshal([]byte(adminSend(t, admin, "show sessions json\n")), &doc); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, s := range doc.Sessions {
		if s["protocol"] == "udp" {
			out = append(out, s)
		}
	}
	return out
}

// TestUDPDNS: two real dnsmasq answer one name differently. 200 dig
// queries through g6 (RR, responses = 1) split evenly and leave no session
// behind; with one dnsmasq stopped, its ICMP port unreachable isolates it
// and the other answers; a dns health check marks it down, and up again
// once it is back.
func TestUDPDNS(t *testing.T) {
	a, b := testenv.StartDNS(t), testenv.StartDNS(t)
	a.SetHosts("10.0.0.1 svc.test")
	b.SetHosts("10.0.0.2 svc.test")
	for _, d := range []*testenv.DNS{a, b} { // dnsmasq rereads its hosts on a signal
		for end := time.Now().Add(10 * time.Second); d.Dig("svc.test", "A") == "" && time.Now().Before(end); {
			time.Sleep(50 * time.Millisecond)
		}
	}
	front := testenv.Addr(t)
	_, admin := startChecked(t, udpRule("dns", front, "responses = 1", a.Addr, b.Addr))
	got := map[string]int{}
	for range 200 {
		got[dig(t, front, "svc.test")]++
	}
	if got["10.0.0.1"] < 80 || got["10.0.0.2"] < 80 || got["10.0.0.1"]+got["10.0.0.2"] < 198 {
		t.Fatalf("answers %v: want about 100 from each server, at most 2 lost", got)
	}
	if s := udpSessions(t, admin); len(s) != 0 {
		t.Fatalf("responses = 1 left %d sessions: %v", len(s), s)
	}
	if st := adminSend(t, admin, "show sessions\n"); !strings.Contains(st, "0 sessions") {
		t.Fatalf("show sessions:\n%s", st)
	}

	a.Stop()
	got = map[string]int{}
	for range 20 {
		got[dig(t, front, "svc.test")]++
	}
	// The query that met the stopped server is lost (the ICMP error
	// isolates it); every other goes to the one left.
	if got["10.0.0.2"] < 18 || got["10.0.0.1"] != 0 {
		t.Fatalf("with %s stopped: answers %v, want all but one or two from the other", a.Addr, got)
	}
	waitServer(t, admin, "dns", a.Addr, "down", "")
}

// TestUDPHealthCheckDNS: a dns check on a UDP rule asks the real dnsmasq
// over UDP; it goes down when dnsmasq stops and up when it is back.
func TestUDPHealthCheckDNS(t *testing.T) {
	a, b := testenv.StartDNS(t), testenv.StartDNS(t)
	a.SetHosts("10.0.0.1 svc.test")
	b.SetHosts("10.0.0.2 svc.test")
	front := testenv.Addr(t)
	_, admin := startChecked(t, udpRule("dns", front,
		`health_check = { type = "dns", name = "svc.test", interval = "200ms", timeout = "1s", rise = 1, fall = 1 }`, a.Addr, b.Addr))
	waitServer(t, admin, "dns", a.Addr, "up", "")
	a.Stop()
	waitServer(t, admin, "dns", a.Addr, "down", "")
	for range 10 {
		if ip := dig(t, front, "svc.test"); ip != "10.0.0.2" {
			t.Fatalf("with %s checked down, an answer %q, want 10.0.0.2", a.Addr, ip)
		}
	}
	a.Start()
	waitServer(t, admin, "dns", a.Addr, "up", "")
}

// udpClient is one client socket that asks and waits for each answer
// ("NAME:payload" from tools/backend -mode udp), noting which server
// answered and how many asks went unanswered.
type udpClient struct {
	c       net.Conn
	servers map[string]int
	asked   int
	lost    int
}

func newUDPClient(t *testing.T, front string) *udpClient {
	c, err := net.Dial("udp", front)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{c: c, servers: map[string]int{}}
}

// ask sends one datagram and waits up to wait for its answer; false if
// none came.
func (u *udpClient) ask(seq int, wait time.Duration, buf []byte) bool {
	u.asked++
	want := fmt.Sprintf("seq %d", seq)
	u.c.Write([]byte(want))
	deadline := time.Now().Add(wait)
	for {
		u.c.SetReadDeadline(deadline)
		n, err := u.c.Read(buf)
		if err != nil {
			u.lost++
			return false
		}
		i := strings.LastIndexByte(string(buf[:n]), ':') // the name is the backend's IP:PORT
		if i > 0 && string(buf[i+1:n]) == want {
			name := string(buf[:i]) // a late answer to an earlier ask is skipped
			u.servers[name]++
			return true
		}
	}
}

// TestUDPSessionsKeepServerAcrossUpgrades: a client sending a datagram
// every 50 ms, and 40 clients asking as fast as their answers come, keep
// their server across 5 USR2 upgrades and 5 HUP reloads; not one
// datagram is lost.
func TestUDPSessionsKeepServerAcrossUpgrades(t *testing.T) {
	b1, b2, front := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.UDPBackend(t, b1, b2)
	admin := testenv.Addr(t)
	cfg := fmt.Sprintf("[admin]\nlisten = [%q]\nclients = [\"127.0.0.1:*\"]\n%s", admin,
		udpRule("u", front, "", b1, b2))
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})

	stop := make(chan struct{})
	type result struct {
		servers     map[string]int
		asked, lost int
	}
	results := make(chan result, 41)
	run := func(pace time.Duration) {
		u := newUDPClient(t, front)
		buf := make([]byte, 2048)
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				results <- result{u.servers, u.asked, u.lost}
				return
			default:
			}
			u.ask(seq, time.Second, buf)
			time.Sleep(pace)
		}
	}
	go run(50 * time.Millisecond)
	for range 40 {
		go run(0)
	}
	time.Sleep(300 * time.Millisecond)
	for i := 1; i <= 5; i++ {
		master := m.Pid()
		syscall.Kill(master, syscall.SIGUSR2)
		m.WaitCount(t, "upgrade complete", i, 20*time.Second)
		waitPidChange(t, m, master)
		time.Sleep(200 * time.Millisecond)
		syscall.Kill(m.Pid(), syscall.SIGHUP)
		m.WaitCount(t, "msg=reloaded", i, 20*time.Second)
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	asked, lost := 0, 0
	for i := range 41 {
		r := <-results
		asked += r.asked
		lost += r.lost
		if len(r.servers) != 1 {
			t.Errorf("client %d was answered by %v: want one server throughout", i, r.servers)
		}
	}
	t.Logf("%d asks in 5 upgrades and 5 reloads, %d unanswered", asked, lost)
	if lost != 0 {
		t.Errorf("%d of %d asks unanswered", lost, asked)
	}
	if asked < 1000 {
		t.Errorf("only %d asks: the load did not run", asked)
	}
}
