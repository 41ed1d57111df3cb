package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"g6/internal/testenv"
)

// startHAProxy runs haproxy in the foreground on config text until the
// test ends, and waits for the addresses it binds.
func startHAProxy(t *testing.T, text string, binds ...string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("haproxy", "-db", "-f", path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for _, a := range binds {
		testenv.WaitListening(t, a)
	}
}

// proxyLine connects from src to addr and returns the backend's report of
// the PROXY header it got (the connection stays open until the test ends),
// or the error that closed it first.
func proxyLine(t *testing.T, src, addr string) (string, net.Conn, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), c, err
}

// TestAcceptProxyHAProxy: HAProxy in front sends PROXY v2 (with CRC32C and
// a unique-id TLV) and v1 to g6, which reads them and sends its own v2 to
// a backend that parses it: the backend, show sessions and the access log
// see the client HAProxy saw, and a per-IP limit applies to that client.
// (127.0.0.1, HAProxy's own address and that of the waits for its ports,
// is not limited.) A trusted peer without a header and an untrusted one
// are refused and counted.
func TestAcceptProxyHAProxy(t *testing.T) {
	back, g6addr, hv2, hv1 := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	adminAddr, metrics := testenv.Addr(t), testenv.Addr(t)
	access := filepath.Join(t.TempDir(), "access.log")
	testenv.Backend(t, "proxy", back)
	cfg := fmt.Sprintf(`
[global]
access_log = %q
metrics = %q

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "behind"
algorithm = "RR"
proxy_protocol = "v2"
listen = [{ address = %q, accept_proxy = "any", proxy_sources = ["127.0.0.1"], inspect_timeout = "2s" }]
clients = ["127.0.0.1:*", { pattern = "*:*", max_connections_per_ip = 1 }]
servers = [%q]
`, access, metrics, adminAddr, g6addr, back)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	startHAProxy(t, fmt.Sprintf(`
global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  retries 0
  unique-id-format %%ci:%%cp
frontend v2
  bind %s
  default_backend g6v2
backend g6v2
  server g6 %s send-proxy-v2 proxy-v2-options crc32c,unique-id
frontend v1
  bind %s
  default_backend g6v1
backend g6v1
  server g6 %s send-proxy
`, hv2, g6addr, hv1, g6addr), hv2, hv1)

	// v2 in (CRC32C checked and dropped, unique-id 0x05 passed on), v2 out.
	line, c7, err := proxyLine(t, "127.0.0.7", hv2)
	if want := "proxy from " + c7.LocalAddr().String() + " to " + hv2 + " tlvs 05"; err != nil || line != want {
		t.Fatalf("through HAProxy's send-proxy-v2 the backend saw %q (%v), want %q", line, err, want)
	}
	// The same client again (v1 in): over its per-IP limit of 1.
	if line, _, err := proxyLine(t, "127.0.0.7", hv1); err == nil {
		t.Fatalf("a second session of 127.0.0.7 reached the backend: %q", line)
	}
	// Another client through v1: v1 in, v2 out.
	line, c8, err := proxyLine(t, "127.0.0.8", hv1)
	if want := "proxy from " + c8.LocalAddr().String() + " to " + hv1; err != nil || line != want {
		t.Fatalf("through HAProxy's send-proxy the backend saw %q (%v), want %q", line, err, want)
	}
	sessions := adminSend(t, adminAddr, "show sessions\n")
	for _, c := range []net.Conn{c7, c8} {
		if !strings.Contains(sessions, "behind | connected | "+c.LocalAddr().String()+" - "+g6addr+" > "+back) {
			t.Errorf("show sessions lacks client %s:\n%s", c.LocalAddr(), sessions)
		}
	}
	if strings.Count(sessions, "| via 127.0.0.1:") != 2 {
		t.Errorf("show sessions does not say via HAProxy:\n%s", sessions)
	}

	// Straight to g6: a trusted peer that sends no header, one that sends
	// nothing, an untrusted peer.
	hello, err := net.Dial("tcp", g6addr)
	if err != nil {
		t.Fatal(err)
	}
	hello.Write([]byte("hello\n"))
	if !closedWithin(hello, 5*time.Second) {
		t.Fatal("a trusted peer without a header kept open")
	}
	hello.Close()
	if line, _, err := proxyLine(t, "127.0.0.1", g6addr); err == nil {
		t.Fatalf("no header from a trusted peer: %q", line)
	}
	if line, _, err := proxyLine(t, "127.0.0.2", g6addr); err == nil {
		t.Fatalf("an untrusted peer: %q", line)
	}
	refused := scrape(t, metrics)["g6_rule_refused_total"]
	for reason, want := range map[string]float64{"bad_proxy": 1, "inspect_timeout": 1, "proxy_untrusted": 1, "client_limit": 1} {
		if got := sumOf(refused, "reason", reason); got != want {
			t.Errorf("g6_rule_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	c7.Close()
	c8.Close()
	within(t, 10*time.Second, "the access log", func() error {
		b, _ := os.ReadFile(access)
		for _, want := range []string{"client=" + c7.LocalAddr().String(), "client=" + c8.LocalAddr().String(),
			"via=127.0.0.1:", "end=limit", `end="bad proxy"`, `end="proxy untrusted"`, `end="inspect timeout"`} {
			if !strings.Contains(string(b), want) {
				return fmt.Errorf("no %q in\n%s", want, b)
			}
		}
		return nil
	})
}
