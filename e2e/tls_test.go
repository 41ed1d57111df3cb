package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
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

// tlsFront is a g6 terminating TLS on front for rule "web" (an HTTP
// backend answering "web"), with the access log in JSON and the admin
// port and metrics on.
type tlsFront struct {
	m                        *testenv.Master
	front, admin, metrics    string
	access, config           string
	ca                       *testCA
	aCert, aKey, bCert, bKey string
}

func startTLSFront(t *testing.T, tlsExtra string, args ...string) *tlsFront {
	t.Helper()
	f := &tlsFront{front: testenv.Addr(t), admin: testenv.Addr(t), metrics: testenv.Addr(t), ca: newCA(t, "front")}
	f.aCert, f.aKey = f.ca.issue(t, "a.test", []string{"a.test", "127.0.0.1"}, 30, false)
	f.bCert, f.bKey = f.ca.issue(t, "b.test", []string{"b.test", "*.b.test"}, 30, false)
	web := testenv.Addr(t)
	testenv.BackendArgs(t, []string{"-mode", "http", "-name", "web"}, web)
	f.access = filepath.Join(t.TempDir(), "access.log")
	f.config = testenv.WriteConfig(t, fmt.Sprintf(`
[global]
access_log = %q
access_log_format = "json"
metrics = %q

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "web"
algorithm = "RR"
clients = ["*:*"]
listen = [{ address = %q, tls = { certificates = [{ cert = %q, key = %q }, { cert = %q, key = %q }], alpn = ["http/1.1"]%s } }]
servers = [%q]
`, f.access, f.metrics, f.admin, f.front, f.aCert, f.aKey, f.bCert, f.bKey, tlsExtra, web))
	f.m = testenv.StartMaster(t, f.config, append([]string{"-w", "2"}, args...))
	return f
}

// curlTLS fetches /id from the front as name, verifying against the CA.
func (f *tlsFront) curl(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	port := portOf(f.front)
	a := append([]string{"-sS", "--max-time", "10", "--cacert", f.ca.File, "--resolve", name + ":" + port + ":127.0.0.1"}, args...)
	out, err := testenv.Run(t, 20*time.Second, "curl", append(a, "https://"+name+":"+port+"/id")...)
	return strings.TrimSpace(string(out)), err
}

// tlsAccess reads the JSON access log's lines with TLS fields.
type tlsAccess struct {
	Rule, End, SNI string
	Version        string  `json:"tls_version"`
	Cipher         string  `json:"tls_cipher"`
	HandshakeMS    float64 `json:"handshake_ms"`
	Resumed        bool    `json:"tls_resumed"`
	ClientCert     string  `json:"client_cert"`
	Worker         int
}

func readTLSAccess(t *testing.T, path string, want int) []tlsAccess {
	t.Helper()
	return readJSONLines[tlsAccess](t, path, want)
}

// TestTLSTerminate: curl and openssl s_client reach a plain backend
// through g6's TLS; the ClientHello's name picks the certificate (exact,
// wildcard, the first for anything else), ALPN is negotiated, TLS 1.2 and
// 1.3 both work; the access log, show sessions, show certs and the
// metrics say so.
func TestTLSTerminate(t *testing.T) {
	f := startTLSFront(t, "")
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"a.test", []string{"--tlsv1.3"}},
		{"b.test", []string{"--tls-max", "1.2"}},
		{"x.b.test", nil},
	} {
		if got, err := f.curl(t, tt.name, tt.args...); got != "web" {
			t.Errorf("curl %s %v: %q (%v), want web", tt.name, tt.args, got, err)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-servername", "a.test"}, "a.test"},
		{[]string{"-servername", "b.test"}, "b.test"},
		{[]string{"-servername", "deep.b.test"}, "b.test"},
		{[]string{"-servername", "z.deep.b.test"}, "a.test"}, // a wildcard is one label: the first certificate
		{[]string{"-noservername"}, "a.test"},
	} {
		if got := sClient(t, f.front, tt.args...); !strings.Contains(got, "CN = "+tt.want) {
			t.Errorf("s_client %v: subject %q, want CN = %s", tt.args, got, tt.want)
		}
	}
	out, _ := testenv.Run(t, 20*time.Second, "sh", "-c", "echo | openssl s_client -connect "+f.front+" -servername a.test -alpn h2,http/1.1 2>&1")
	if !strings.Contains(string(out), "ALPN protocol: http/1.1") {
		t.Errorf("ALPN: s_client offered h2,http/1.1 and did not get http/1.1:\n%s", out)
	}
	lines := readTLSAccess(t, f.access, 3)
	versions := map[string]int{}
	for _, l := range lines {
		versions[l.Version]++
		if l.Version != "" && (l.Cipher == "" || l.HandshakeMS <= 0) {
			t.Errorf("access line without its TLS facts: %+v", l)
		}
	}
	if versions["TLS 1.3"] == 0 || versions["TLS 1.2"] == 0 {
		t.Errorf("access log versions %v, want TLS 1.2 and TLS 1.3", versions)
	}

	// A session held open: show sessions marks it.
	c, err := tls.Dial("tcp", f.front, &tls.Config{ServerName: "a.test", RootCAs: caPool(t, f.ca.File)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /id HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if _, err := c.Read(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	held := sessionsJSON(t, f.admin)
	if len(held) != 1 || held[0].TLS != "TLS 1.3" || held[0].SNI != "a.test" {
		t.Errorf("show sessions: %+v, want one session with tls TLS 1.3 and sni a.test", held)
	}
	if txt := adminSend(t, f.admin, "show sessions\n"); !strings.Contains(txt, "TLS 1.3") {
		t.Errorf("show sessions does not mark the TLS session:\n%s", txt)
	}
	certs := adminSend(t, f.admin, "show certs json\n")
	var doc struct {
		Certs []struct {
			File     string   `json:"file"`
			Names    []string `json:"names"`
			DaysLeft int      `json:"days_left"`
			State    string   `json:"state"`
			Used     []string `json:"used"`
		} `json:"certs"`
	}
	if err := json.Unmarshal([]byte(certs), &doc); err != nil || len(doc.Certs) != 2 {
		t.Fatalf("show certs json: %v\n%s", err, certs)
	}
	if c := doc.Certs[1]; c.File != f.bCert || c.DaysLeft < 28 || c.State != "ok" || len(c.Used) != 1 || !strings.Contains(c.Used[0], f.front) || !strings.Contains(strings.Join(c.Names, ","), "*.b.test") {
		t.Errorf("show certs: %+v", c)
	}
	fams := scrape(t, f.metrics)
	if ok := sumOf(fams["g6_tls_handshakes_total"], "result", "ok"); ok < 5 {
		t.Errorf("g6_tls_handshakes_total{result=ok} = %v, want at least 5", ok)
	}
	if h := fams["g6_tls_handshake_seconds"]; h == nil || h.Metric[0].Histogram.GetSampleCount() < 5 {
		t.Errorf("g6_tls_handshake_seconds: %v", h)
	}
	if e := sumOf(fams["g6_tls_certificate_expiry_timestamp_seconds"], "file", f.aCert); e < float64(time.Now().Unix()) {
		t.Errorf("g6_tls_certificate_expiry_timestamp_seconds{file=%s} = %v", f.aCert, e)
	}
}

func caPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(b)
	return p
}

// redisServer starts redis-server on 127.0.0.1 (no persistence); tlsArgs
// turn on its TLS port instead of the plain one. It returns the address.
func redisServer(t *testing.T, tlsArgs ...string) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (.ci/run installs it)")
	}
	addr := testenv.Addr(t)
	port := portOf(addr)
	args := []string{"--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", t.TempDir()}
	if len(tlsArgs) > 0 {
		args = append([]string{"--bind", "127.0.0.1", "--port", "0", "--tls-port", port, "--save", "", "--appendonly", "no", "--dir", t.TempDir()}, tlsArgs...)
	}
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testenv.WaitListening(t, addr)
	return addr
}

// redisRoundTrip PINGs, SETs 1 MiB of random bytes and GETs them back
// with redis-cli (args: how to reach the server).
func redisRoundTrip(t *testing.T, args ...string) {
	t.Helper()
	out, err := testenv.Run(t, 20*time.Second, "redis-cli", append(args, "PING")...)
	if strings.TrimSpace(string(out)) != "PONG" {
		t.Fatalf("redis-cli PING: %q (%v)", out, err)
	}
	val := make([]byte, 1<<20)
	rand.Read(val)
	hex := fmt.Sprintf("%x", val) // 2 MiB of text, redis-cli -x takes it verbatim
	file := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(file, []byte(hex), 0o600); err != nil {
		t.Fatal(err)
	}
	set := exec.Command("redis-cli", append(args, "-x", "SET", "big")...)
	in, _ := os.Open(file)
	defer in.Close()
	set.Stdin = in
	if out, err := set.CombinedOutput(); strings.TrimSpace(string(out)) != "OK" {
		t.Fatalf("redis-cli SET: %q (%v)", out, err)
	}
	got, err := testenv.Run(t, 20*time.Second, "redis-cli", append(args, "--raw", "GET", "big")...)
	if err != nil || !bytes.Equal(bytes.TrimSpace(got), []byte(hex)) {
		t.Fatalf("redis-cli GET: %d bytes back (%v), want the %d set", len(got), err, len(hex))
	}
}

// TestTLSRedisThroughG6: redis-cli --tls through g6 to a plain
// redis-server: PING, SET and GET of a large value.
func TestTLSRedisThroughG6(t *testing.T) {
	redis := redisServer(t)
	ca := newCA(t, "redis-front")
	cert, key := ca.issue(t, "redis.test", []string{"redis.test"}, 30, false)
	front := testenv.Addr(t)
	cfg := fmt.Sprintf(`
[[rule]]
id = "redis"
algorithm = "RR"
clients = ["*:*"]
listen = [{ address = %q, tls = { certificates = [{ cert = %q, key = %q }] } }]
servers = [%q]
`, front, cert, key, redis)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	redisRoundTrip(t, "-h", "127.0.0.1", "-p", portOf(front), "--tls", "--sni", "redis.test", "--cacert", ca.File)
}

// TestTLSMutual: with client_auth = "require", a client without a
// certificate and one with a certificate from another CA are refused
// (counted by reason); one signed by client_ca is served, its subject in
// the access log and, with its TLS facts, in the PROXY v2 header the
// server reads.
func TestTLSMutual(t *testing.T) {
	serverCA, clientCA, otherCA := newCA(t, "srv"), newCA(t, "clients"), newCA(t, "other")
	cert, key := serverCA.issue(t, "mtls.test", []string{"mtls.test"}, 30, false)
	goodCert, goodKey := clientCA.issue(t, "client1", nil, 30, true)
	badCert, badKey := otherCA.issue(t, "intruder", nil, 30, true)
	back := testenv.Addr(t)
	testenv.Backend(t, "proxy", back)
	front, metrics := testenv.Addr(t), testenv.Addr(t)
	access := filepath.Join(t.TempDir(), "access.log")
	cfg := fmt.Sprintf(`
[global]
access_log = %q
access_log_format = "json"
metrics = %q

[[rule]]
id = "mtls"
algorithm = "RR"
clients = ["*:*"]
listen = [{ address = %q, tls = { certificates = [{ cert = %q, key = %q }], client_ca = %q, client_auth = "require" } }]
servers = [{ address = %q, proxy_protocol = "v2" }]
`, access, metrics, front, cert, key, clientCA.File, back)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})

	dial := func(certFile, keyFile string) (string, error) {
		conf := &tls.Config{ServerName: "mtls.test", RootCAs: caPool(t, serverCA.File)}
		if certFile != "" {
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			// Sent whatever CAs g6 asks for: Go's client would send no
			// certificate from a CA not on g6's list.
			conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", front, conf)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line := make([]byte, 512)
		n, err := c.Read(line) // TLS 1.3: a refused certificate shows here
		return string(line[:n]), err
	}
	if got, err := dial("", ""); err == nil {
		t.Errorf("a client without a certificate was served: %q", got)
	}
	if got, err := dial(badCert, badKey); err == nil {
		t.Errorf("a client with another CA's certificate was served: %q", got)
	}
	got, err := dial(goodCert, goodKey)
	if err != nil {
		t.Fatalf("a client with a good certificate: %v", err)
	}
	// client 0x07: TLS, a certificate on this connection and session.
	if !strings.Contains(got, "tlvs 20(client=7 verify=0 version=TLSv1.3 cn=client1 cipher=TLS_") {
		t.Errorf("the server's PROXY v2 header: %q, want the SSL TLV with cn=client1", got)
	}
	var served []tlsAccess
	for _, l := range readTLSAccess(t, access, 3) {
		if l.End != "handshake failed" {
			served = append(served, l)
		}
	}
	if len(served) != 1 || !strings.Contains(served[0].ClientCert, "CN=client1") {
		t.Errorf("access log of the served session: %+v, want client_cert CN=client1", served)
	}
	fams := scrape(t, metrics)
	for _, r := range []string{"no_certificate", "client_cert_refused", "ok"} {
		if n := sumOf(fams["g6_tls_handshakes_total"], "result", r); n != 1 {
			t.Errorf("g6_tls_handshakes_total{result=%q} = %v, want 1", r, n)
		}
	}
}

// sServer starts `openssl s_server -www` with cert and key on a new
// address; extra adds flags (-Verify 1 -CAfile to require a client
// certificate).
func sServer(t *testing.T, cert, key string, extra ...string) string {
	t.Helper()
	addr := testenv.Addr(t)
	cmd := exec.Command("openssl", append([]string{"s_server", "-accept", addr, "-cert", cert, "-key", key, "-www", "-quiet"}, extra...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testenv.WaitListening(t, addr)
	return addr
}

// getPlain sends "GET / HTTP/1.0" to addr in the clear and returns the
// answer.
func getPlain(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestTLSOriginate: g6 takes plain clients to servers over TLS, verifying
// them: a server whose certificate names another host, or comes from an
// unknown CA, is isolated and the next server serves; a server that
// requires a client certificate gets g6's; redis-server's TLS port works
// the same way.
func TestTLSOriginate(t *testing.T) {
	ca, stranger := newCA(t, "backends"), newCA(t, "stranger")
	good, goodKey := ca.issue(t, "srv.test", []string{"srv.test"}, 30, false)
	wrong, wrongKey := ca.issue(t, "other.test", []string{"other.test"}, 30, false)
	unknown, unknownKey := stranger.issue(t, "srv.test", []string{"srv.test"}, 30, false)
	g6Cert, g6Key := ca.issue(t, "g6-client", nil, 30, true)
	wrongName := sServer(t, wrong, wrongKey)
	unknownCA := sServer(t, unknown, unknownKey)
	goodSrv := sServer(t, good, goodKey)
	mutual := sServer(t, good, goodKey, "-Verify", "1", "-CAfile", ca.File)
	redisTLS := redisServer(t, "--tls-cert-file", good, "--tls-key-file", goodKey, "--tls-ca-cert-file", ca.File, "--tls-auth-clients", "optional")
	front, mfront, rfront, nocert, admin := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[global]
moratorium = "60s"

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "verify"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
tls = { server_name = "srv.test", ca = %q }
servers = [%q, %q, %q]

[[rule]]
id = "mutual"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [{ address = %[8]q, tls = { server_name = "srv.test", ca = %[3]q, cert = %[9]q, key = %[10]q } }]

[[rule]]
id = "nocert"
algorithm = "RR"
clients = ["*:*"]
listen = [%[11]q]
servers = [{ address = %[8]q, tls = { server_name = "srv.test", ca = %[3]q } }]

[[rule]]
id = "redis"
algorithm = "RR"
clients = ["*:*"]
listen = [%[12]q]
server_defaults = { tls = { server_name = "srv.test", ca = %[3]q, verify = true } }
servers = [%[13]q]
`, admin, front, ca.File, wrongName, unknownCA, goodSrv, mfront, mutual, g6Cert, g6Key, nocert, rfront, redisTLS)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})

	for i := range 6 {
		if got := getPlain(t, front); !strings.Contains(got, "200 ok") {
			t.Fatalf("request %d through the verifying rule: %.200q", i, got)
		}
	}
	servers := adminSend(t, admin, "show servers\n")
	for _, s := range []string{wrongName, unknownCA} {
		if !strings.Contains(lineWith(servers, s), " down ") {
			t.Errorf("server %s with a bad certificate is not isolated:\n%s", s, servers)
		}
	}
	if !strings.Contains(m.Log(), "certificate is valid for other.test, not srv.test") || !strings.Contains(m.Log(), "certificate signed by unknown authority") {
		t.Errorf("the master's log does not say why the servers failed:\n%s", m.Log())
	}
	if got := getPlain(t, mfront); !strings.Contains(got, "200 ok") {
		t.Errorf("a server requiring a client certificate did not take g6's: %.300q", got)
	}
	if got := getPlain(t, nocert); strings.Contains(got, "200 ok") {
		t.Errorf("a server requiring a client certificate served g6 without one")
	}
	redisRoundTrip(t, "-h", "127.0.0.1", "-p", portOf(rfront))
}

// lineWith is the line of text that contains s.
func lineWith(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// TestTLSResumption: a session saved by `openssl s_client -sess_out`
// resumes 20 times over two workers, whichever takes it, and still after
// a reload (the ticket keys are the master's).
func TestTLSResumption(t *testing.T) {
	f := startTLSFront(t, "")
	sess := filepath.Join(t.TempDir(), "sess.pem")
	connect := func(arg string) string {
		out, _ := testenv.Run(t, 20*time.Second, "sh", "-c",
			"printf 'GET /id HTTP/1.0\\r\\n\\r\\n' | openssl s_client -connect "+f.front+" -servername a.test -ign_eof "+arg+" "+sess+" 2>&1")
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "New,") || strings.HasPrefix(l, "Reused,") {
				return strings.SplitN(l, ",", 2)[0]
			}
		}
		return "no session line in: " + string(out)
	}
	if got := connect("-sess_out"); got != "New" {
		t.Fatalf("first connection: %s", got)
	}
	resumeAll := func(when string) {
		for i := range 20 {
			if got := connect("-sess_in"); got != "Reused" {
				t.Errorf("%s: connection %d: %s, want Reused", when, i, got)
			}
		}
	}
	resumeAll("before the reload")
	f.m.Signal(t, syscall.SIGHUP)
	f.m.WaitCount(t, "msg=reloaded", 1, 20*time.Second)
	resumeAll("after the reload")
	resumed, workers := 0, map[int]int{}
	for _, l := range readTLSAccess(t, f.access, 41) {
		if l.Resumed {
			resumed++
			workers[l.Worker]++
		}
	}
	if resumed != 40 || len(workers) != 2 {
		t.Errorf("access log: %d sessions resumed, by worker %v; want 40, on both", resumed, workers)
	}
}

// TestTLSHostile: plain text, 1 MB of random bytes, a ClientHello one
// byte per 100 ms and 2,000 connections that never finish a handshake are
// each closed within handshake_timeout and counted by reason, while a
// real client is served meanwhile; a reload whose key does not match its
// certificate is refused, naming the file, and the old certificate serves
// on.
func TestTLSHostile(t *testing.T) {
	f := startTLSFront(t, `, handshake_timeout = "2s"`)
	closedWithin := func(c net.Conn, limit time.Duration) error {
		c.SetReadDeadline(time.Now().Add(limit))
		buf := make([]byte, 4096)
		for {
			_, err := c.Read(buf)
			if err == nil {
				continue // an alert
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return fmt.Errorf("still open after %v", limit)
			}
			return nil
		}
	}
	// Plain text and random bytes.
	plain, err := net.Dial("tcp", f.front)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(plain, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if err := closedWithin(plain, 10*time.Second); err != nil {
		t.Errorf("plain text: %v", err)
	}
	plain.Close()
	junk, err := net.Dial("tcp", f.front)
	if err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, 1<<20)
	rand.Read(noise)
	noise[0] = 0x16 // looks like a handshake record for its first byte
	go junk.Write(noise)
	if err := closedWithin(junk, 10*time.Second); err != nil {
		t.Errorf("1 MB of random bytes: %v", err)
	}
	junk.Close()

	// A ClientHello one byte per 100 ms: closed by handshake_timeout.
	slow, err := net.Dial("tcp", f.front)
	if err != nil {
		t.Fatal(err)
	}
	slowDone := make(chan error, 1)
	go func() {
		hello := clientHello(t, "a.test")
		for _, b := range hello {
			if _, err := slow.Write([]byte{b}); err != nil {
				slowDone <- nil // closed on g6's side
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		slowDone <- fmt.Errorf("all %d bytes of a 100 ms-per-byte hello were taken", len(hello))
	}()

	// 2,000 connections that send half a hello, or nothing.
	const stalled = 2000
	var conns []net.Conn
	for i := range stalled {
		c, err := net.Dial("tcp", f.front)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if i%2 == 0 {
			c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00})
		}
		conns = append(conns, c)
	}
	// Served meanwhile.
	for i := range 5 {
		if got, err := f.curl(t, "a.test"); got != "web" {
			t.Errorf("request %d while 2,000 handshakes stall: %q (%v)", i, got, err)
		}
	}
	for i, c := range conns {
		if err := closedWithin(c, 20*time.Second); err != nil {
			t.Fatalf("stalled connection %d: %v", i, err)
		}
		c.Close()
	}
	if err := <-slowDone; err != nil {
		t.Error(err)
	}
	slow.Close()
	fams := scrape(t, f.metrics)
	if n := sumOf(fams["g6_tls_handshakes_total"], "result", "timeout"); n < stalled+1 {
		t.Errorf("g6_tls_handshakes_total{result=timeout} = %v, want at least %d", n, stalled+1)
	}
	if n := sumOf(fams["g6_tls_handshakes_total"], "result", "bad_hello"); n < 2 {
		t.Errorf("g6_tls_handshakes_total{result=bad_hello} = %v, want at least 2 (plain text, random bytes)", n)
	}

	// A key that does not match its certificate: the reload is refused.
	_, otherKey := f.ca.issue(t, "stranger.test", []string{"stranger.test"}, 30, false)
	b, _ := os.ReadFile(otherKey)
	if err := os.WriteFile(f.bKey, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f.m.Signal(t, syscall.SIGHUP)
	f.m.WaitLog(t, "reload refused", 20*time.Second)
	if !strings.Contains(lineWith(f.m.Log(), "reload refused"), f.bCert) {
		t.Errorf("the refusal does not name the file:\n%s", lineWith(f.m.Log(), "reload refused"))
	}
	if got := sClient(t, f.front, "-servername", "b.test"); !strings.Contains(got, "CN = b.test") {
		t.Errorf("after the refused reload b.test gets %q", got)
	}
}

// clientHello is the first flight of a real crypto/tls client for name.
func clientHello(t *testing.T, name string) []byte {
	t.Helper()
	a, b := net.Pipe()
	go func() {
		tls.Client(a, &tls.Config{ServerName: name, InsecureSkipVerify: true}).Handshake()
	}()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	return append(hdr, body...)
}
