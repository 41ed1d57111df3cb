package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
	"g6/ipc"
)

// accelSetup: one echo rule with accel = "sockmap" and an admin port.
func accelSetup(t *testing.T, workers, extra string) (m *testenv.Master, adminAddr, front, back string) {
	return accelSetupListen(t, workers, extra, "")
}

// accelSetupListen is accelSetup with listen-entry keys (listenExtra).
func accelSetupListen(t *testing.T, workers, extra, listenExtra string) (m *testenv.Master, adminAddr, front, back string) {
	back = testenv.Addr(t)
	testenv.Backend(t, "echo", back)
	adminAddr, front = testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[global]
accel = "sockmap"
drain_timeout = "60s"
%s

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "echo"
algorithm = "RR"
clients = ["*:*"]
listen = [{ address = %q %s }]
servers = [%q]
`, extra, adminAddr, front, listenExtra, back)
	m = testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", workers})
	return
}

// sessionsJSON is show sessions json.
func sessionsJSON(t *testing.T, adminAddr string) []ipc.Session {
	t.Helper()
	var doc struct{ Sessions []ipc.Session }
	if err := json.Unmarshal([]byte(adminSend(t, adminAddr, "show sessions json\n")), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Sessions
}

// TestAccelPairsKeepAlive: a keep-alive session is paired (show sessions
// says sockmap), keeps echoing in order, and counts the bytes the kernel
// moved; a one-shot session is never paired.
func TestAccelPairsKeepAlive(t *testing.T) {
	m, adminAddr, front, _ := accelSetup(t, "1", "")
	if !strings.Contains(m.Log(), "keep-alive sessions are forwarded in the kernel") {
		t.Fatalf("the master did not say it pairs:\n%s", m.Log())
	}
	one := holdEcho(t, front)
	one.check(t, "once")
	h := pairedEcho(t, adminAddr, front)
	before := sessionsJSON(t, adminAddr)
	start := time.Now()
	want := int64(0)
	for i := range 100 {
		msg := fmt.Sprintf("round %d", i)
		h.check(t, msg)
		want += int64(len("still here " + msg + "\n"))
	}
	t.Logf("100 paired rounds in %v", time.Since(start))
	for _, s := range sessionsJSON(t, adminAddr) {
		var was ipc.Session
		for _, b := range before {
			if b.Client == s.Client {
				was = b
			}
		}
		switch s.Client {
		case h.c.LocalAddr().String():
			if s.Path != "sockmap" || s.FromClient-was.FromClient != want || s.FromServer-was.FromServer != want {
				t.Fatalf("paired session %+v (before %+v): want %d bytes more each way on the sockmap path", s, was, want)
			}
		case one.c.LocalAddr().String():
			if s.Path != "copy" {
				t.Fatalf("a session with one answer is %q, want copy", s.Path)
			}
		}
	}
	if !strings.Contains(adminSend(t, adminAddr, "show sessions\n"), "| sockmap") {
		t.Fatal("show sessions text does not say sockmap")
	}
}

// TestAccelHalfClose512MiB: 512 MiB one way through a paired session,
// the client half-closing at once: the echo backend returns every byte,
// in order, and the reply's FIN comes after them.
func TestAccelHalfClose512MiB(t *testing.T) {
	m, adminAddr, front, _ := accelSetup(t, "1", "")
	c := pairedEcho(t, adminAddr, front).c
	c.SetDeadline(time.Now().Add(3 * time.Minute))
	const size = 512 << 20
	sent := sha256.New()
	go func() {
		r := rand.New(rand.NewPCG(1, 2))
		buf := make([]byte, 1<<20)
		for range size >> 20 {
			fill(r, buf)
			sent.Write(buf)
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	got := sha256.New()
	n, err := io.Copy(got, c)
	if n > size && kernelDuplicated(t, m, adminAddr, front) {
		return
	}
	if err != nil || n != size {
		t.Fatalf("echoed %d bytes of %d, %v", n, size, err)
	}
	if fmt.Sprintf("%x", got.Sum(nil)) != fmt.Sprintf("%x", sent.Sum(nil)) {
		t.Fatal("the echoed bytes differ")
	}
}

// kernelDuplicated: more bytes came back than were sent. On kernels whose
// sockmap runs its verdict twice over the same bytes now and then under
// bulk (6.18.44 here: a direction's moved bytes exceed what its source
// received), no proxy on the sockmap path can help it; g6 must see it,
// say so, and pair nothing more. It reports whether that is what
// happened; if not, the test goes on to fail.
func kernelDuplicated(t *testing.T, m *testenv.Master, adminAddr, front string) bool {
	t.Helper()
	const said = "kernel forwarding duplicated bytes"
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(m.Log(), said); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	h := holdEcho(t, front)
	for i := range 10 {
		h.check(t, fmt.Sprintf("%02d", i))
		time.Sleep(50 * time.Millisecond)
	}
	for _, s := range sessionsJSON(t, adminAddr) {
		if s.Client == h.c.LocalAddr().String() && s.Path == "sockmap" {
			t.Fatalf("paired after the kernel duplicated bytes: %+v", s)
		}
	}
	var u syscall.Utsname
	syscall.Uname(&u)
	t.Logf("KERNEL BUG: the kernel's sockmap duplicated bytes on this run (g6 detected it and pairs nothing more); kernel %s", utsString(u.Release[:]))
	return true
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// pairedEcho opens an echo session and talks on it until it is paired
// (show sessions says sockmap), which keep-alive sessions are after 0.2 s.
func pairedEcho(t *testing.T, adminAddr, front string) *heldEcho {
	t.Helper()
	h := holdEcho(t, front)
	for i := range 40 {
		h.check(t, fmt.Sprintf("%02d", i)) // "still here NN\n": 14 bytes
		for _, s := range sessionsJSON(t, adminAddr) {
			if s.Client == h.c.LocalAddr().String() && s.Path == "sockmap" {
				return h
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("session of %s never paired: %+v", h.c.LocalAddr(), sessionsJSON(t, adminAddr))
	return nil
}

// TestAccelSlowReader: a paired client writes 128 MiB without reading, so
// the echo's answers back up. The kernel would queue redirected bytes
// without bound; the budget spills the directions to the copy path, where
// socket buffers push back: the client cannot write it all while it does
// not read. Once it reads, every byte comes back in order.
func TestAccelSlowReader(t *testing.T) {
	m, adminAddr, front, _ := accelSetup(t, "1", "")
	h := pairedEcho(t, adminAddr, front)
	c := h.c
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	const size = 128 << 20
	var written atomic.Int64
	sent := sha256.New()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := rand.New(rand.NewPCG(3, 4))
		buf := make([]byte, 256<<10)
		for range size / len(buf) {
			fill(r, buf)
			sent.Write(buf)
			n, err := c.Write(buf)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	time.Sleep(2 * time.Second)
	w := written.Load()
	t.Logf("written while not reading: %d MiB", w>>20)
	if w >= size/2 {
		t.Fatalf("the client wrote %d MiB without reading: nothing pushed back", w>>20)
	}
	got := sha256.New()
	n, err := io.Copy(got, c)
	<-done
	if n > size && kernelDuplicated(t, m, adminAddr, front) {
		return
	}
	if err != nil || n != size {
		t.Fatalf("read back %d of %d bytes: %v", n, size, err)
	}
	if fmt.Sprintf("%x", got.Sum(nil)) != fmt.Sprintf("%x", sent.Sum(nil)) {
		t.Fatal("the bytes came back changed or out of order")
	}
}

func fill(r *rand.Rand, buf []byte) {
	for i := 0; i+8 <= len(buf); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			buf[i+j] = byte(v >> (8 * j))
		}
	}
}

// TestAccelIdleTimeout: bytes the kernel moves count as activity (a paired
// session talking every 0.5 s outlives a 2 s idle timeout), and a paired
// session that goes quiet is closed by it.
func TestAccelIdleTimeout(t *testing.T) {
	_, adminAddr, front, _ := accelSetupListen(t, "1", "", `, timeout = "2s"`)
	h := pairedEcho(t, adminAddr, front)
	for i := range 8 {
		time.Sleep(500 * time.Millisecond)
		h.check(t, fmt.Sprintf("tick %d", i))
	}
	start := time.Now()
	h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := h.c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read data from an idle session")
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("closed after %v of silence, before the 2 s idle timeout", d)
	}
}

// TestAccelAccessLogAndShutdown: the access log counts the bytes the
// kernel moved; shutdown sessions closes a paired session at once.
func TestAccelAccessLogAndShutdown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	_, adminAddr, front, back := accelSetup(t, "1", fmt.Sprintf("access_log = %q\naccess_log_format = \"json\"", path))
	h := pairedEcho(t, adminAddr, front)
	was := sessionsJSON(t, adminAddr)[0].FromClient
	for i := range 10 {
		h.check(t, fmt.Sprintf("%02d", i))
	}
	h.c.Close()
	lines := readAccess(t, path, 1)
	want := was + 10*14
	if lines[0].FromClient != want || lines[0].FromServer != want {
		t.Fatalf("access log %+v, want %d bytes each way", lines[0], want)
	}
	h = pairedEcho(t, adminAddr, front)
	if r := adminSend(t, adminAddr, "shutdown sessions "+hostPort(back)+"\n"); !strings.Contains(r, "closed 1 sessions") {
		t.Fatalf("shutdown sessions: %q", r)
	}
	h.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := h.c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after shutdown sessions the paired session reads %v", err)
	}
}

// TestAccelUpgradeAndCrash: a paired session moves on USR2 and on HUP as
// it is (the old worker's maps go with it): it still echoes, is still on
// the sockmap path, now in the new worker, and the old master and workers
// are gone within 2 s. A worker killed with paired sessions takes them
// along; its replacement pairs new ones.
func TestAccelUpgradeAndCrash(t *testing.T) {
	m, adminAddr, front, _ := accelSetup(t, "1", "")
	h := pairedEcho(t, adminAddr, front)
	for i, sig := range []syscall.Signal{syscall.SIGUSR2, syscall.SIGHUP, syscall.SIGUSR2} {
		old := m.Pid()
		oldWorkers := testenv.Children(old)
		syscall.Kill(old, sig)
		within(t, 20*time.Second, "the new generation serving", func() error {
			if sig == syscall.SIGUSR2 && m.Pid() == old {
				return errors.New("pid file unchanged")
			}
			if sig == syscall.SIGHUP && strings.Count(m.Log(), "reloaded") < 1 {
				return errors.New("not reloaded")
			}
			return nil
		})
		if sig == syscall.SIGUSR2 {
			goneWithin(t, 2*time.Second, "the old master, its paired session handed over", old)
		}
		goneWithin(t, 2*time.Second, "the old workers", oldWorkers...)
		for j := range 5 {
			h.check(t, fmt.Sprintf("after step %d, %d", i, j))
		}
		ss := sessionsJSON(t, adminAddr)
		if len(ss) != 1 || ss[0].Path != "sockmap" || slices.Contains(oldWorkers, ss[0].Pid) {
			t.Fatalf("after %v: sessions %+v, want the one still paired, in a new worker", sig, ss)
		}
	}
	h.c.Close()

	h = pairedEcho(t, adminAddr, front)
	workers := testenv.Children(m.Pid())
	if len(workers) != 1 {
		t.Fatalf("workers %v", workers)
	}
	syscall.Kill(workers[0], syscall.SIGKILL)
	h.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := h.c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a paired session of a killed worker reads %v", err)
	}
	// The first master is gone: its log file is the successor's too.
	within(t, 5*time.Second, "the worker respawned", func() error {
		if !strings.Contains(m.Log(), "respawning") {
			return errors.New("not yet")
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond)
	pairedEcho(t, adminAddr, front).check(t, "on the new worker")
}

// TestAccelUrgentData: urgent bytes on a paired session travel inline and
// in order both ways, as without accel, and the session goes on.
func TestAccelUrgentData(t *testing.T) {
	_, adminAddr, front, _ := accelSetup(t, "1", "")
	h := pairedEcho(t, adminAddr, front)
	tc := h.c.(*net.TCPConn)
	for i := range 3 {
		before, after := fmt.Sprintf("line %d before", i), fmt.Sprintf("line %d after", i)
		io.WriteString(tc, before)
		sendOOB(t, tc, []byte{'!'})
		io.WriteString(tc, after)
		got := make([]byte, len(before)+1+len(after))
		if _, err := io.ReadFull(tc, got); err != nil {
			t.Fatalf("round %d: read %q so far: %v", i, got, err)
		}
		if string(got) != before+"!"+after {
			t.Fatalf("round %d: got %q, want %q", i, got, before+"!"+after)
		}
	}
	h.check(t, "after the urgent bytes")
}
