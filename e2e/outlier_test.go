package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"g6/internal/testenv"
)

// outlierRule is a rule with outlier ejection over servers; extra adds
// lines (isolate_after, so that a refusing server keeps being tried and
// its streak can grow).
func outlierRule(admin, front, outlier, extra string, servers ...string) string {
	q := make([]string, len(servers))
	for i, s := range servers {
		q[i] = fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf(`
[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "web"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
outlier = %s
%s
servers = [%s]
`, admin, front, outlier, extra, strings.Join(q, ", "))
}

// driveLoad runs clients against front until stop is closed: each connects,
// does what one says, and counts failures.
func driveLoad(front string, clients int, one func(net.Conn) error) (stop func() (ok, failed int64)) {
	var okN, failN atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", front, 5*time.Second)
				if err == nil {
					c.SetDeadline(time.Now().Add(20 * time.Second))
					err = one(c)
					c.Close()
				}
				if err != nil {
					failN.Add(1)
				} else {
					okN.Add(1)
				}
			}
		}()
	}
	return func() (int64, int64) { close(done); wg.Wait(); return okN.Load(), failN.Load() }
}

func readGreeting(c net.Conn) error {
	b := make([]byte, 64)
	n, err := c.Read(b)
	if n == 0 {
		return fmt.Errorf("no greeting: %v", err)
	}
	return nil
}

// TestOutlierFailures: a server that refuses is ejected after
// consecutive_failures in a row (the reason and the metric say so), is
// tried again after base_ejection and, refusing still, ejected for twice
// as long; no client fails meanwhile (each refused connect goes on to
// the next server).
func TestOutlierFailures(t *testing.T) {
	a, b, dead := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", a, b)
	front, admin, metrics := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	cfg := strings.Replace(outlierRule(admin, front, `{ consecutive_failures = 5, base_ejection = "1s", max_ejection_percent = 50 }`,
		`isolate_after = 1000`, a, b, dead), "[admin]", fmt.Sprintf("[global]\nmetrics = %q\n\n[admin]", metrics), 1)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	stop := driveLoad(front, 4, readGreeting)
	s := waitServer(t, admin, "web", dead, "ejected", "failures in a row")
	m.WaitLog(t, "ejected server returns", 20*time.Second)
	m.WaitLog(t, "ejections=2", 20*time.Second)
	ok, failed := stop()
	if failed != 0 || ok == 0 {
		t.Errorf("clients: %d served, %d failed; want none failed", ok, failed)
	}
	if !strings.Contains(s.Ejected, "failures in a row") {
		t.Errorf("show servers: %+v", s)
	}
	if !strings.Contains(lineWith(m.Log(), "ejections=2"), "for=2s") {
		t.Errorf("the second ejection is not twice base_ejection: %s", lineWith(m.Log(), "ejections=2"))
	}
	if n := sumOf(scrape(t, metrics)["g6_server_ejections_total"], "reason", "failures"); n < 2 {
		t.Errorf("g6_server_ejections_total{reason=failures} = %v, want at least 2", n)
	}
	if lineWith(adminSend(t, admin, "show servers\n"), "ejected:") == "" {
		t.Errorf("show servers says nothing of the ejection:\n%s", adminSend(t, admin, "show servers\n"))
	}
}

// TestOutlierMaxPercent: two of three servers refuse; with
// max_ejection_percent = 50 only one is ejected at a time.
func TestOutlierMaxPercent(t *testing.T) {
	a, dead1, dead2 := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", a)
	front, admin := testenv.Addr(t), testenv.Addr(t)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, outlierRule(admin, front,
		`{ consecutive_failures = 3, base_ejection = "60s", max_ejection_percent = 50 }`, `isolate_after = 1000`, a, dead1, dead2)), []string{"-w", "1"})
	stop := driveLoad(front, 2, readGreeting)
	m.WaitLog(t, "server ejected as an outlier", 20*time.Second)
	m.WaitLog(t, "outlier not ejected: max_ejection_percent", 20*time.Second)
	stop()
	out := strings.Count(adminSend(t, admin, "show servers\n"), " ejected ")
	if out != 1 {
		t.Errorf("%d servers ejected, want 1 of 3 at 50%%:\n%s", out, adminSend(t, admin, "show servers\n"))
	}
}

// TestOutlierLatency: a server that greets 200 ms late while the others
// answer at once is ejected by latency_factor; the fast ones are not.
func TestOutlierLatency(t *testing.T) {
	a, b, slow := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", a, b)
	testenv.BackendArgs(t, []string{"-mode", "greet", "-delay", "200ms"}, slow)
	front, admin := testenv.Addr(t), testenv.Addr(t)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, outlierRule(admin, front,
		`{ consecutive_failures = 0, interval = "1s", latency_factor = 3, base_ejection = "60s" }`, "", a, b, slow)), []string{"-w", "1"})
	stop := driveLoad(front, 12, readGreeting)
	s := waitServer(t, admin, "web", slow, "ejected", "first byte p99")
	stop()
	if strings.Count(m.Log(), "server ejected as an outlier") != 1 {
		t.Errorf("want exactly the slow server ejected:\n%s", m.Log())
	}
	t.Logf("ejected: %s", s.Ejected)
}

// netRun runs a command, failing the test with its output.
func netRun(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// peerNet makes a network namespace joined to the test's by a veth pair
// on 10.213.N.0/24 (the test's side .1, the peer's .2); with loss, the
// peer drops one packet in ten each way (nftables numgen). It returns a
// command prefix that runs a program in the peer.
func peerNet(t *testing.T, n int, loss bool) (ip string, in []string) {
	t.Helper()
	ns := fmt.Sprintf("g6peer%d-%d", n, testenv.FreePort(t))
	netRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	here, there := fmt.Sprintf("g6h%d", n), fmt.Sprintf("g6p%d", n)
	netRun(t, "ip", "link", "add", here, "type", "veth", "peer", "name", there, "netns", ns)
	netRun(t, "ip", "addr", "add", fmt.Sprintf("10.213.%d.1/24", n), "dev", here)
	netRun(t, "ip", "link", "set", here, "up")
	in = []string{"ip", "netns", "exec", ns}
	netRun(t, append(in, "ip", "addr", "add", fmt.Sprintf("10.213.%d.2/24", n), "dev", there)...)
	netRun(t, append(in, "ip", "link", "set", there, "up")...)
	netRun(t, append(in, "ip", "link", "set", "lo", "up")...)
	if loss {
		netRun(t, append(in, "nft", "add table inet loss; "+
			"add chain inet loss in { type filter hook input priority 0; }; add rule inet loss in numgen random mod 10 < 1 drop; "+
			"add chain inet loss out { type filter hook output priority 0; }; add rule inet loss out numgen random mod 10 < 1 drop")...)
	}
	return fmt.Sprintf("10.213.%d.2", n), in
}

// echoIn runs tools/backend's echo on addr with the command prefix in.
func echoIn(t *testing.T, in []string, addr string) {
	t.Helper()
	cmd := exec.Command(in[0], append(in[1:], testenv.Bin(t, "backend"), "-mode", "echo", "-listen", addr)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testenv.WaitListening(t, addr)
}

// TestOutlierRetransmits: a gray failure. Three echo servers sit behind
// veth links in namespaces of their own; the far side of one drops 10% of
// packets (nftables numgen). It accepts and answers, slowly, and would
// pass any check. The workers add its sockets' retransmits (TCP_INFO), and
// retrans_factor = 3 ejects it; the two clean servers are not ejected.
func TestOutlierRetransmits(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatal("nft is not installed (.ci/run installs nftables)")
	}
	testenv.Netns(t, nil)
	cleanIP, clean := peerNet(t, 1, false)
	lossyIP, lossyNS := peerNet(t, 2, true)
	a, b, lossy := cleanIP+":7001", cleanIP+":7002", lossyIP+":7003"
	echoIn(t, clean, a)
	echoIn(t, clean, b)
	echoIn(t, lossyNS, lossy)
	front, admin := testenv.Addr(t), testenv.Addr(t)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, outlierRule(admin, front,
		`{ consecutive_failures = 0, interval = "2s", retrans_factor = 3, base_ejection = "60s" }`, "", a, b, lossy)), []string{"-w", "1"})
	// The clients run on this goroutine: only its thread is in the test's
	// namespace. Each sends 64 KiB and reads it back.
	payload := bytes.Repeat([]byte("g6 gray failure "), 4096)
	got := make([]byte, len(payload))
	var s serverView
	served := 0
	for end := time.Now().Add(60 * time.Second); s.State != "ejected"; {
		if time.Now().After(end) {
			t.Fatalf("after %d sessions the lossy server is not ejected:\n%s", served, adminSend(t, admin, "show servers\n"))
		}
		c, err := net.DialTimeout("tcp", front, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		go c.Write(payload)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("session %d: %v", served, err)
		}
		c.Close()
		served++
		if served%10 == 0 {
			var doc struct{ Servers []serverView }
			json.Unmarshal([]byte(adminSend(t, admin, "show servers json\n")), &doc)
			for _, v := range doc.Servers {
				if v.Address == lossy {
					s = v
				}
			}
		}
	}
	if n := strings.Count(m.Log(), "server ejected as an outlier"); n != 1 || !strings.Contains(s.Ejected, "retransmits") {
		t.Errorf("%d ejections (%q), want only the lossy server's, for retransmits:\n%s", n, s.Ejected, m.Log())
	}
	t.Logf("ejected: %s", s.Ejected)
}
