package e2e

import (
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

// tlsServer starts `openssl s_server` with a self-signed certificate for
// cn, made by `openssl req`; GET /id answers name. It returns the address.
func tlsServer(t *testing.T, cn, name string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := testenv.Run(t, 30*time.Second, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
		"-nodes", "-days", "1", "-subj", "/CN="+cn, "-keyout", filepath.Join(dir, "key.pem"), "-out", filepath.Join(dir, "cert.pem")); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "id"), []byte("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testenv.Addr(t)
	cmd := exec.Command("openssl", "s_server", "-accept", addr, "-cert", "cert.pem", "-key", "key.pem", "-HTTP", "-alpn", "h2,http/1.1", "-quiet")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testenv.WaitListening(t, addr)
	return addr
}

// curlName fetches /id from front by name through curl, TLS unverified.
func curlName(t *testing.T, front, name string) string {
	t.Helper()
	port := portOf(front)
	out, err := testenv.Run(t, 20*time.Second, "curl", "-sk", "--http1.1", "--max-time", "10",
		"--resolve", name+":"+port+":127.0.0.1", "https://"+name+":"+port+"/id")
	if err != nil {
		return fmt.Sprintf("curl error %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// sClient runs `openssl s_client` with args and returns the subject of the
// certificate it was shown.
func sClient(t *testing.T, front string, args ...string) string {
	t.Helper()
	out, _ := testenv.Run(t, 20*time.Second, "sh", "-c", "echo | openssl s_client -connect "+front+" "+strings.Join(args, " ")+" 2>&1")
	for _, l := range strings.Split(string(out), "\n") {
		if s, ok := strings.CutPrefix(l, "subject="); ok {
			return strings.TrimSpace(s)
		}
	}
	return "no subject in: " + string(out)
}

// slowConn writes its first write one byte per 10 ms.
type slowConn struct {
	net.Conn
	done bool
}

func (c *slowConn) Write(b []byte) (int, error) {
	if c.done {
		return c.Conn.Write(b)
	}
	c.done = true
	for i := range b {
		if _, err := c.Conn.Write(b[i : i+1]); err != nil {
			return i, err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return len(b), nil
}

// TestSNIRouting: three rules on one port, told apart by the ClientHello:
// real TLS clients (curl, openssl s_client, Go's crypto/tls) reach the
// server of the name they ask for, ALPN narrows a rule, and what matches
// no name, has no name or is not TLS goes to the rule without sni.
// Refusals (a hello that never completes, random bytes) are closed and
// counted; show sessions and the access log carry the name.
func TestSNIRouting(t *testing.T) {
	api := tlsServer(t, "api.example.com", "api")
	org := tlsServer(t, "org.example.org", "org")
	def := tlsServer(t, "default.example.net", "default")
	front, adminAddr, metrics, only := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	access := filepath.Join(t.TempDir(), "access.log")
	cfg := fmt.Sprintf(`
[global]
access_log = %q
metrics = %q
inspect_timeout = "6s"

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "api"
algorithm = "RR"
listen = [%[4]q]
sni = ["api.example.com", "*.api.example.com", "exact.example.org"]
clients = ["*:*"]
servers = [%[5]q]

[[rule]]
id = "org"
algorithm = "LC"
listen = [%[4]q]
sni = ["*.example.org"]
alpn = ["h2"]
clients = ["*:*"]
servers = [%[6]q]

[[rule]]
id = "default-tls"
algorithm = "RR"
listen = [%[4]q]
clients = ["*:*"]
servers = [%[7]q]

[[rule]]
id = "only"
algorithm = "RR"
listen = [%[8]q]
sni = ["only.example.com"]
clients = ["*:*"]
servers = [%[5]q]
`, access, metrics, adminAddr, front, api, org, def, only)
	path := testenv.WriteConfig(t, cfg)
	m := testenv.StartMaster(t, path, []string{"-w", "2"})

	for _, tt := range []struct{ name, want string }{
		{"api.example.com", "api"},
		{"API.Example.COM", "api"},
		{"v2.api.example.com", "api"},
		{"a.b.api.example.com", "default"}, // a wildcard is one label
		{"nope.example.com", "default"},
	} {
		if got := curlName(t, front, tt.name); got != tt.want {
			t.Errorf("curl %s: %q, want %q", tt.name, got, tt.want)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-servername", "www.example.org", "-alpn", "h2"}, "CN = org.example.org"},
		{[]string{"-servername", "www.example.org", "-alpn", "http/1.1,h2"}, "CN = org.example.org"},
		{[]string{"-servername", "www.example.org", "-alpn", "http/1.1"}, "CN = default.example.net"}, // the alpn does not match
		{[]string{"-servername", "www.example.org"}, "CN = default.example.net"},                      // no ALPN offered
		{[]string{"-servername", "api.example.com", "-alpn", "h2"}, "CN = api.example.com"},
		{[]string{"-noservername"}, "CN = default.example.net"},
		{[]string{"-servername", "exact.example.org", "-alpn", "h2"}, "CN = api.example.com"}, // exact before wildcard
	} {
		if got := sClient(t, front, tt.args...); got != tt.want {
			t.Errorf("s_client %v: %q, want %q", tt.args, got, tt.want)
		}
	}

	// A ClientHello written one byte per 10 ms, while another client
	// sends half a hello and then nothing.
	stalled := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", front)
		if err != nil {
			stalled <- err
			return
		}
		defer c.Close()
		c.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x80, 0x01})
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, err = c.Read(make([]byte, 1))
		if d := time.Since(start); err == nil || d < 5*time.Second || d > 10*time.Second {
			stalled <- fmt.Errorf("a stalled hello was closed after %v (%v), want about 6s", d, err)
			return
		}
		stalled <- nil
	}()
	raw, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(20 * time.Second))
	tc := tls.Client(&slowConn{Conn: raw}, &tls.Config{ServerName: "slow.api.example.com", InsecureSkipVerify: true,
		CurvePreferences: []tls.CurveID{tls.X25519}, NextProtos: []string{"http/1.1"}})
	start := time.Now()
	if err := tc.Handshake(); err != nil {
		t.Fatalf("slow handshake: %v", err)
	}
	if cn := tc.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "api.example.com" {
		t.Fatalf("slow hello reached %q", cn)
	}
	t.Logf("a ClientHello one byte per 10 ms: handshake in %v", time.Since(start).Round(time.Millisecond))
	io.WriteString(tc, "GET /id HTTP/1.0\r\n\r\n")
	if b, _ := io.ReadAll(tc); !strings.HasSuffix(string(b), "api\n") {
		t.Fatalf("slow client got %q", b)
	}
	tc.Close()
	if err := <-stalled; err != nil {
		t.Fatal(err)
	}

	// Plain text goes to the rule without sni (whose TLS server then
	// hangs up); 1 MB of random bytes behind a TLS record header is closed.
	plain, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(plain, "GET /id HTTP/1.0\r\n\r\n")
	if !closedWithin(plain, 10*time.Second) {
		t.Fatal("the TLS server behind the default rule kept a plain-text client")
	}
	plain.Close()
	junk := make([]byte, 1<<20)
	rand.Read(junk)
	copy(junk, []byte{0x16, 0x03, 0x01, 0x40, 0x00, 0x01})
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	go func() { c.Write(junk) }()
	if !closedWithin(c, 10*time.Second) {
		t.Fatal("1 MB of random bytes kept open")
	}
	c.Close()

	// An address whose rules all have sni closes a name none of them has.
	if got := curlName(t, only, "only.example.com"); got != "api" {
		t.Errorf("curl only.example.com: %q", got)
	}
	if got := curlName(t, only, "other.example.com"); !strings.HasPrefix(got, "curl error") {
		t.Errorf("curl other.example.com on an address without a default: %q", got)
	}

	fams := scrape(t, metrics)
	refused := fams["g6_rule_refused_total"]
	for reason, want := range map[string]float64{"inspect_timeout": 1, "bad_hello": 1, "no_rule": 1} {
		if got := sumOf(refused, "reason", reason); got != want {
			t.Errorf("g6_rule_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := curlName(t, front, "api.example.com"); got != "api" {
		t.Fatalf("after the refusals: %q", got)
	}

	// show sessions while one is open: it names the server name.
	held := tls.Client(mustDial(t, front), &tls.Config{ServerName: "held.api.example.com", InsecureSkipVerify: true})
	if err := held.Handshake(); err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if got := adminSend(t, adminAddr, "show sessions\n"); !strings.Contains(got, "api | connected") || !strings.Contains(got, "| sni held.api.example.com") {
		t.Errorf("show sessions:\n%s", got)
	}
	held.Close()

	// A reload adds a rule by name to the shared port; an upgrade keeps it.
	more := cfg + fmt.Sprintf(`
[[rule]]
id = "new"
algorithm = "RR"
listen = [%q]
sni = ["new.example.com"]
clients = ["*:*"]
servers = [%q]
`, front, org)
	if err := os.WriteFile(path, []byte(more), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(m.Pid(), syscall.SIGHUP)
	m.WaitLog(t, "reloaded", 10*time.Second)
	within(t, 10*time.Second, "the new rule after a reload", func() error {
		if got := curlName(t, front, "new.example.com"); got != "org" {
			return fmt.Errorf("new.example.com: %q", got)
		}
		return nil
	})
	old := m.Pid()
	syscall.Kill(old, syscall.SIGUSR2)
	m.WaitCount(t, "upgrade complete", 1, 20*time.Second)
	waitPidChange(t, m, old)
	for name, want := range map[string]string{"new.example.com": "org", "api.example.com": "api", "nope.example.com": "default"} {
		if got := curlName(t, front, name); got != want {
			t.Errorf("after an upgrade, curl %s: %q, want %q", name, got, want)
		}
	}
	within(t, 10*time.Second, "the access log", func() error {
		b, _ := os.ReadFile(access)
		for _, want := range []string{"rule=api", "sni=v2.api.example.com", "rule=org", "sni=www.example.org",
			"rule=default-tls", "sni=nope.example.com", `end="inspect timeout"`, `end="bad hello"`} {
			if !strings.Contains(string(b), want) {
				return fmt.Errorf("no %q in\n%s", want, b)
			}
		}
		return nil
	})
}

func mustDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}
