package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// TLS workloads (issue #34): every proxy terminates TLS 1.3 with the same
// ECDSA P-256 certificate in front of the same plain backends. Session
// tickets and caches are off on the TLS frontends, so every new
// connection is a full handshake whatever the client keeps.
//
//	tls-short      wrk -c50 over https with Connection: close: full handshakes/s
//	tls-keepalive  wrk -c100 over https, keep-alive: requests/s
//	tls-bulk1      one TLS stream from this process to a sink behind the proxy: Gbit/s
//	tls-idle       idle TLS connections (handshake and one request done), RSS per connection
var tlsWorkloads = []string{"tls-short", "tls-keepalive", "tls-bulk1", "tls-idle"}

// tlsKinds are the targets of the TLS workloads.
var tlsKinds = []string{"haproxy", "nginx", "g6"}

func isTLS(w string) bool { return strings.HasPrefix(w, "tls-") }

// benchCert makes the certificate every proxy serves: cert and key files,
// and both in one file (HAProxy's crt).
type benchCert struct{ cert, key, both string }

func makeBenchCert(dir string) (*benchCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench.test"},
		DNSNames: []string{"bench.test"}, IPAddresses: []net.IP{net.ParseIP(topo.proxyIP)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	c := &benchCert{cert: filepath.Join(dir, "bench.crt"), key: filepath.Join(dir, "bench.key"), both: filepath.Join(dir, "bench.pem")}
	cp := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kp := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	for file, b := range map[string][]byte{c.cert: cp, c.key: kp, c.both: append(append([]byte{}, cp...), kp...)} {
		if err := os.WriteFile(file, b, 0o600); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// sinkFlag: this program as the tls-bulk1 backend, reading and dropping
// everything sent to the address.
const sinkFlag = "sink"

func runSink(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench sink:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go drain(c)
	}
}

func drain(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 256<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

func haproxyTLS(t *target, b *backends) string {
	return fmt.Sprintf(`frontend tlsweb
  bind %s ssl crt %s ssl-min-ver TLSv1.3 no-tls-tickets backlog 4096
  default_backend web
frontend tlsbulk
  bind %s ssl crt %s ssl-min-ver TLSv1.3 no-tls-tickets backlog 4096
  default_backend sink
backend sink
  server k %s
`, t.tlsWeb, b.cert.both, t.tlsBulk, b.cert.both, b.sink)
}

// haproxyTLSGlobal turns HAProxy's session cache off (tickets are off per
// bind).
const haproxyTLSGlobal = "  tune.ssl.cachesize 0\n"

func nginxTLS(t *target, b *backends) string {
	return fmt.Sprintf(`  upstream sink { server %s; }
  ssl_certificate %s;
  ssl_certificate_key %s;
  ssl_protocols TLSv1.3;
  ssl_session_cache off;
  ssl_session_tickets off;
  server { listen %s ssl backlog=4096; proxy_pass web; proxy_connect_timeout 5s; proxy_timeout 600s; }
  server { listen %s ssl backlog=4096; proxy_pass sink; proxy_connect_timeout 5s; proxy_timeout 600s; }
`, b.sink, b.cert.cert, b.cert.key, t.tlsWeb, t.tlsBulk)
}

func g6TLS(t *target, b *backends, web string) string {
	tlsTable := fmt.Sprintf(`tls = { certificates = [{ cert = %q, key = %q }], min_version = "1.3", session_tickets = false }`, b.cert.cert, b.cert.key)
	return fmt.Sprintf(`
[[rule]]
id = "tls-web"
algorithm = "RR"
clients = ["*:*"]
listen = [{ address = %q, timeout = "10m", %s }]
servers = [%s]

[[rule]]
id = "tls-bulk"
algorithm = "RR"
clients = ["*:*"]
listen = [{ address = %q, timeout = "10m", %s }]
servers = [%q]
`, t.tlsWeb, tlsTable, web, t.tlsBulk, tlsTable, b.sink)
}

// clientTLS is how this process speaks TLS to the proxies: TLS 1.3, no
// verification (the same self-signed certificate everywhere), no session
// cache.
var clientTLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}

// tlsPreflight: a request over TLS must be answered.
func tlsPreflight(t *target) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", t.tlsWeb, clientTLS)
	if err != nil {
		return fmt.Errorf("preflight %s over TLS: %w", t.name, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprint(c, request)
	if _, err := readResponse(bufio.NewReader(c)); err != nil {
		return fmt.Errorf("preflight %s over TLS: %w", t.name, err)
	}
	return nil
}

// runTLSBulk sends over one TLS connection for d and returns Gbit/s
// written (the sink reads as fast as it can; what sits in the socket
// buffers at the end is a few MB of many GB).
func runTLSBulk(addr string, d time.Duration) (float64, error) {
	c, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		return 0, fmt.Errorf("tls bulk: %w", err)
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	rand.Read(buf)
	var n int64
	start := time.Now()
	end := start.Add(d)
	for time.Now().Before(end) {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		k, err := c.Write(buf)
		n += int64(k)
		if err != nil {
			return 0, fmt.Errorf("tls bulk: %w", err)
		}
	}
	return float64(n) * 8 / time.Since(start).Seconds() / 1e9, nil
}

// runIdleTLS opens n TLS connections, each with one request answered,
// holds them 2 s and reports the proxy's RSS before and after.
func runIdleTLS(t *target, n int) (idleResult, error) {
	res := idleResult{n: n, rssBefore: t.proc.rssKiB()}
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 50)
	for i := range conns {
		sem <- struct{}{}
		wg.Add(1)
		go dialIdleTLS(t.tlsWeb, &conns[i], sem, &wg, &mu, &firstErr)
	}
	wg.Wait()
	defer closeAll(conns)
	if firstErr != nil {
		return res, firstErr
	}
	time.Sleep(2 * time.Second)
	res.rssAfter = t.proc.rssKiB()
	for _, c := range conns {
		if c != nil {
			res.answered++
		}
	}
	return res, nil
}

func dialIdleTLS(addr string, out *net.Conn, sem chan struct{}, wg *sync.WaitGroup, mu *sync.Mutex, firstErr *error) {
	defer wg.Done()
	defer func() { <-sem }()
	fail := func(err error) {
		mu.Lock()
		if *firstErr == nil {
			*firstErr = fmt.Errorf("idle tls: %w", err)
		}
		mu.Unlock()
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, clientTLS)
	if err != nil {
		fail(err)
		return
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		c.Close()
		fail(err)
		return
	}
	if _, err := readResponse(bufio.NewReader(c)); err != nil {
		c.Close()
		fail(err)
		return
	}
	c.SetDeadline(time.Time{})
	*out = c
}
