package worker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// writePair writes a self-signed ECDSA P-256 certificate and key for
// tls.test into dir.
func writePair(t testing.TB, dir string) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tls.test"}, DNSNames: []string{"tls.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// idleSessionBytes opens n sessions through h, each with one byte each
// way (over TLS if tlsOn), and returns the worker's live heap per idle
// session. The clients' own TLS state is dropped (their sockets kept by
// a dup) so that only the worker's shows.
func idleSessionBytes(t *testing.T, h *harness, n int, tlsOn bool) float64 {
	var fds []int
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	backendDone := make(chan []int, 1)
	go func() { // the backend: answers one byte on each connection, keeps it
		var afds []int
		for range n {
			afd, _, err := unix.Accept4(h.bfd, unix.SOCK_CLOEXEC)
			if err != nil {
				break
			}
			var b [1]byte
			unix.Read(afd, b[:])
			unix.Write(afd, b[:])
			afds = append(afds, afd)
		}
		backendDone <- afds
	}()
	runtime.GC()
	runtime.GC() // and the victim caches of sync.Pools
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var done atomic.Int32
	clientFds := make(chan int, n)
	slots := make(chan struct{}, 8) // the harness's listen backlog is 16
	for range n {
		go func() {
			slots <- struct{}{}
			defer func() { <-slots; done.Add(1) }()
			c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(h.port)))
			if err != nil {
				t.Error(err)
				return
			}
			if tlsOn {
				c = tls.Client(c, &tls.Config{ServerName: "tls.test", InsecureSkipVerify: true})
			}
			c.SetDeadline(time.Now().Add(stepDeadline))
			var b [1]byte
			if _, err := c.Write([]byte("x")); err != nil {
				t.Error(err)
			} else if _, err := c.Read(b[:]); err != nil {
				t.Error(err)
			}
			var raw net.Conn = c
			if tc, ok := c.(*tls.Conn); ok {
				raw = tc.NetConn()
			}
			sc, _ := raw.(*net.TCPConn).SyscallConn()
			sc.Control(func(fd uintptr) {
				d, _ := unix.Dup(int(fd))
				clientFds <- d
			})
			c.Close() // the dup keeps the connection open
		}()
	}
	h.until("every client served", func() bool { return int(done.Load()) == n })
	for range n {
		fds = append(fds, <-clientFds)
	}
	fds = append(fds, <-backendDone...)
	h.until("idle", func() bool { return len(h.w.live) == n })
	for range 3 {
		h.w.step(1)
	}
	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if p := os.Getenv("G6_TEST_HEAP_PROFILE"); p != "" && tlsOn {
		f, _ := os.Create(p)
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	runtime.KeepAlive(h.w) // or the GC takes the worker and its sessions before ReadMemStats
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
}

// TestTLSIdleSessionMemory: what an idle session costs the worker's heap,
// plain and with TLS terminated (handshake and one byte each way done).
// crypto/tls keeps its record and handshake buffers (~3.5 KiB for a
// ClientHello with a post-quantum key share) and its ciphers (~1.7 KiB);
// the bound is there so that a change that keeps more per session shows.
// G6_TEST_HEAP_PROFILE=FILE writes the heap profile of the TLS sessions.
func TestTLSIdleSessionMemory(t *testing.T) {
	if os.Getenv("G6_TEST_HEAP_PROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	const n = 300
	plain := idleSessionBytes(t, newHarness(t, harnessOpts{}), n, false)
	dir := t.TempDir()
	cert, key := writePair(t, dir)
	h := newHarness(t, harnessOpts{listen: `{ address = "127.0.0.1:%d", tls = { certificates = [{ cert = "` + cert + `", key = "` + key + `" }] } }`})
	withTLS := idleSessionBytes(t, h, n, true)
	t.Logf("live heap per idle session: plain %.0f B, TLS terminated %.0f B", plain, withTLS)
	if withTLS > 10<<10 {
		t.Errorf("an idle TLS session keeps %.0f B of heap, want at most 10 KiB", withTLS)
	}
}
