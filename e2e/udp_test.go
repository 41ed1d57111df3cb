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

	"golang.org/x/sys/unix"

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

// udpConfig is a config with an admin port, [global] lines and a UDP
// rule u on front over servers, whose clients line is clients.
func udpConfig(admin, global, front, clients, extra string, servers ...string) string {
	rule := strings.Replace(udpRule("u", front, extra, servers...), `clients = ["*:*"]`, "clients = "+clients, 1)
	return fmt.Sprintf("[global]\n%s\n[admin]\nlisten = [%q]\nclients = [\"127.0.0.1:*\"]\n%s", global, admin, rule)
}

// ruleRefused sums the rules' refusal counters of reason (as
// g6_rule_refused_total labels them), read from the shared region.
func ruleRefused(t *testing.T, m *testenv.Master, reason string) int64 {
	t.Helper()
	r, err := testenv.OpenRegion(m.Pid())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var n int64
	for i := 0; i < r.NumRules(); i++ {
		for _, c := range r.Rule(i).Refusals() {
			if c.Reason == reason {
				n += c.N.Load()
			}
		}
	}
	return n
}

// TestUDPLimits: max_connections_per_ip = 2 refuses a third session from
// one address (and takes one once a session idles out); max_sessions
// refuses past the table's size, counted; empty and 64 KiB datagrams go
// through both ways; a flood of one-datagram sessions leaves g6 serving.
func TestUDPLimits(t *testing.T) {
	back, front, admin := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.UDPBackend(t, back)
	cfg := udpConfig(admin, "max_sessions = 50", front, `[{ pattern = "127.0.0.1:*", max_connections_per_ip = 2 }, "*:*"]`,
		`listen = [{ address = "`+front+`", timeout = "1s" }]`, back)
	cfg = strings.Replace(cfg, fmt.Sprintf("listen = [%q]\n", front), "", 1)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	buf := make([]byte, 64<<10)

	// Two sessions from 127.0.0.1 are answered, a third is not.
	var clients []*udpClient
	for i := range 3 {
		u := newUDPClient(t, front)
		ok := u.ask(0, 500*time.Millisecond, buf)
		if ok != (i < 2) {
			t.Fatalf("session %d from 127.0.0.1 answered %v, want %v (max_connections_per_ip = 2)", i+1, ok, i < 2)
		}
		clients = append(clients, u)
	}
	// Once the first two idle out (timeout 1s), the third is let in.
	time.Sleep(1500 * time.Millisecond)
	if !clients[2].ask(1, time.Second, buf) {
		t.Fatal("after the sessions idled out, a new one from 127.0.0.1 is still refused")
	}

	// Empty and 64 KiB datagrams, from another address.
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 9)}, mustUDPAddr(t, front))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, size := range []int{0, 65507 - len(back) - 1, 65507} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i)
		}
		c.Write(msg)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%d-byte datagram: no answer: %v", size, err)
		}
		want := append([]byte(back+":"), msg...)
		if len(want) > 65507 {
			want = msg // the backend answers a datagram it cannot prefix with itself
		}
		if string(buf[:n]) != string(want) {
			t.Fatalf("%d-byte datagram: answer of %d bytes, want %d", size, n, len(want))
		}
	}

	// A flood of one-datagram sessions from 127.0.0.2..: max_sessions = 50
	// refuses most, counted; g6 goes on serving.
	before := ruleRefused(t, m, "sessions_full")
	for i := range 2000 {
		src := &net.UDPAddr{IP: net.IPv4(127, 0, byte(1+i/250), byte(2+i%250))}
		f, err := net.DialUDP("udp", src, mustUDPAddr(t, front))
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("flood"))
		f.Close()
	}
	var full int64
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if full = ruleRefused(t, m, "sessions_full") - before; full >= 1900 {
			break
		}
	}
	if full < 1900 {
		t.Fatalf("%d sessions refused by max_sessions = 50 out of a flood of 2000, want at least 1900", full)
	}
	time.Sleep(1500 * time.Millisecond) // the flood's sessions idle out
	u := newUDPClient(t, front)
	if !u.ask(0, time.Second, buf) {
		t.Fatal("after the flood, a new session is not answered")
	}
	if s := udpSessions(t, admin); len(s) != 1 {
		t.Fatalf("%d UDP sessions after the flood idled out, want the one just made", len(s))
	}
	if !strings.Contains(adminSend(t, admin, "show rules\n"), "dropped") {
		t.Fatal("show rules has no datagram counts for the UDP rule")
	}
	if st := adminSend(t, admin, "show stats\n"); !strings.Contains(st, "udp datagrams: ") {
		t.Fatalf("show stats has no datagram counts:\n%s", st)
	}
}

func mustUDPAddr(t *testing.T, addr string) *net.UDPAddr {
	a, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// serverActive is show servers json's active count of server addr.
func serverActive(t *testing.T, admin, addr string) int { return serverCounts(t, admin, addr)[0] }

// serverTotal is show servers json's total count of server addr.
func serverTotal(t *testing.T, admin, addr string) int { return serverCounts(t, admin, addr)[1] }

func serverCounts(t *testing.T, admin, addr string) [2]int {
	t.Helper()
	var doc struct {
		Servers []struct {
			Address       string
			Active, Total int
		}
	}
	json.Unmarshal([]byte(adminSend(t, admin, "show servers json\n")), &doc)
	for _, s := range doc.Servers {
		if s.Address == addr {
			return [2]int{s.Active, s.Total}
		}
	}
	t.Fatalf("no server %s in show servers", addr)
	return [2]int{}
}

// TestUDP100kSessions: 100,000 sessions from distinct source addresses
// (127.1.0.0 up) fit in the tables of 8 workers (a session holds a
// socket: 12,500 each, under the 20,000 open files a process may have)
// and all expire at their idle timeout. A session's socket holds a local
// port, and one source address has 28,232 of them (the default
// ip_local_port_range), so the server gets four, as TCP would need.
func TestUDP100kSessions(t *testing.T) {
	back, front, admin := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.UDPBackend(t, back)
	cfg := udpConfig(admin, "", front, `["*:*"]`, `listen = [{ address = "`+front+`", timeout = "20s" }]`+"\nsource = [\"127.0.0.2\", \"127.0.0.3\", \"127.0.0.4\", \"127.0.0.5\"]", back)
	cfg = strings.Replace(cfg, fmt.Sprintf("listen = [%q]\n", front), "", 1)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "8"})
	to := mustUDPAddr(t, front)
	dst := &unix.SockaddrInet4{Port: to.Port, Addr: [4]byte{127, 0, 0, 1}}
	const n = 100_000
	began := time.Now()
	for i := range n {
		// Raw calls: net's sockets would make this loop, not g6, the
		// slow part, and the first sessions would idle out before the
		// last began.
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, byte(1 + i>>16), byte(i >> 8), byte(i)}})
		if err == nil {
			err = unix.Sendto(fd, []byte("hello"), 0, dst)
		}
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		if i%2000 == 1999 { // a pace g6 keeps: a burst past it is the kernel's to drop
			for end := time.Now().Add(10 * time.Second); serverTotal(t, admin, back) < i+1 && time.Now().Before(end); {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	t.Logf("%d sessions begun in %v", n, time.Since(began))
	max := 0
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if max = serverActive(t, admin, back); max == n {
			break
		}
	}
	if max != n {
		t.Log(adminSend(t, admin, "show servers\n"), adminSend(t, admin, "show rules\n"))
		t.Fatalf("%d sessions in the tables, want %d", max, n)
	}
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if serverActive(t, admin, back) == 0 {
			return
		}
	}
	t.Fatalf("%d sessions left 60 s after the last began with a 20 s idle timeout", serverActive(t, admin, back))
}

// iperf3UDP runs iperf3 -u at 1 Gbit/s for 5 s against addr and returns
// the receiver's loss in percent.
func iperf3UDP(t *testing.T, addr string) float64 {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	out, err := testenv.Run(t, 30*time.Second, "iperf3", "-c", host, "-p", port, "-u", "-b", "1G", "-t", "5", "--json")
	if err != nil {
		t.Fatalf("iperf3 to %s: %v\n%s", addr, err, out)
	}
	var doc struct {
		End struct {
			Sum struct {
				LostPercent float64 `json:"lost_percent"`
				Packets     int64   `json:"packets"`
			} `json:"sum"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || doc.End.Sum.Packets == 0 {
		t.Fatalf("iperf3 to %s: %v\n%s", addr, err, out)
	}
	return doc.End.Sum.LostPercent
}

// TestUDPIperf3: iperf3 -u at 1 Gbit/s for 5 s through g6 (its control
// connection through a TCP rule on the same IP:PORT, its datagrams
// through the UDP rule) loses within 1 point of what it loses direct.
func TestUDPIperf3(t *testing.T) {
	back, front := testenv.Addr(t), testenv.Addr(t)
	_, port, _ := net.SplitHostPort(back)
	srv := exec.Command("iperf3", "-s", "-p", port)
	if err := srv.Start(); err != nil {
		t.Fatalf("iperf3 is not installed (.ci/run installs it): %v", err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	testenv.WaitListening(t, back)
	cfg := fmt.Sprintf(`
[[rule]]
id = "control"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]
%s`, front, back, udpRule("data", front, "", back))
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	direct := iperf3UDP(t, back)
	through := iperf3UDP(t, front)
	t.Logf("iperf3 -u -b 1G -t 5: %.2f%% lost direct, %.2f%% through g6", direct, through)
	if through > direct+1 {
		t.Fatalf("%.2f%% lost through g6, %.2f%% direct: more than 1 point apart", through, direct)
	}
}

// TestUDPIPv6: a UDP rule on ::1 in front of two servers on ::1 answers
// and balances, and show sessions names the IPv6 client.
func TestUDPIPv6(t *testing.T) {
	b1, b2, front, admin := addr6(t), addr6(t), addr6(t), testenv.Addr(t)
	testenv.UDPBackend(t, b1, b2)
	cfg := udpConfig(admin, "", front, `["[::1]:*"]`, "", b1, b2)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	seen := map[string]bool{}
	for i := range 4 {
		u := newUDPClient(t, front)
		if !u.ask(i, 2*time.Second, make([]byte, 2048)) {
			t.Fatalf("ask %d through %s: no answer", i, front)
		}
		for s := range u.servers {
			seen[s] = true
		}
	}
	if !seen[b1] || !seen[b2] {
		t.Fatalf("answers came from %v, want both %s and %s", seen, b1, b2)
	}
	s := udpSessions(t, admin)
	if len(s) != 4 || !strings.HasPrefix(s[0]["client"].(string), "[::1]:") {
		t.Fatalf("show sessions: %v", s)
	}
	// shutdown sessions ends the UDP sessions of one server, now.
	if r := adminSend(t, admin, "shutdown sessions "+hostPort(b1)+"\n"); !strings.Contains(r, "closed 2 sessions") {
		t.Fatalf("shutdown sessions %s: %q", b1, r)
	}
	if s := udpSessions(t, admin); len(s) != 2 || s[0]["server"] != b2 || s[1]["server"] != b2 {
		t.Fatalf("after shutdown sessions of %s: %v", b1, s)
	}
}
