package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

// handoffConfig is one echo rule (and a second, "other", on its own
// address) with handoff at its default.
func handoffConfig(front, other, back string, extra string) string {
	return fmt.Sprintf(`
[global]
drain_timeout = "60s"
%s
[[rule]]
id = "echo"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]

[[rule]]
id = "other"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]
`, extra, front, back, other, back)
}

// flow is a session streaming pseudo-random bytes to an echo server and
// reading them back, both at once, hashing each way.
type flow struct {
	c          *net.TCPConn
	stop       chan struct{}
	wrote      chan error
	read       chan error
	sent, recv hash.Hash
	nSent      int64
	nRecv      int64
}

func startFlow(t *testing.T, addr string, seed uint64) *flow {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f := &flow{c: c.(*net.TCPConn), stop: make(chan struct{}), wrote: make(chan error, 1), read: make(chan error, 1),
		sent: sha256.New(), recv: sha256.New()}
	go f.write(seed)
	go f.readAll()
	return f
}

// write sends 8 KiB every 2 ms (about 4 MB/s) until stopped.
func (f *flow) write(seed uint64) {
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	buf := make([]byte, 8<<10)
	for {
		select {
		case <-f.stop:
			f.wrote <- nil
			return
		case <-time.After(2 * time.Millisecond):
		}
		rng.Read(buf)
		f.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		n, err := f.c.Write(buf)
		f.sent.Write(buf[:n])
		f.nSent += int64(n)
		if err != nil {
			f.wrote <- err
			return
		}
	}
}

func (f *flow) readAll() {
	buf := make([]byte, 32<<10)
	for {
		f.c.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := f.c.Read(buf)
		f.recv.Write(buf[:n])
		f.nRecv += int64(n)
		if err == io.EOF {
			f.read <- nil
			return
		}
		if err != nil {
			f.read <- err
			return
		}
	}
}

// finish stops writing, half-closes and checks that every byte came back
// in order.
func (f *flow) finish(t *testing.T, name string) {
	t.Helper()
	close(f.stop)
	if err := <-f.wrote; err != nil {
		t.Errorf("%s: write: %v (after %d bytes)", name, err, f.nSent)
		return
	}
	f.c.CloseWrite()
	if err := <-f.read; err != nil {
		t.Errorf("%s: read: %v (%d of %d bytes back)", name, err, f.nRecv, f.nSent)
		return
	}
	if f.nRecv != f.nSent || !bytes.Equal(f.sent.Sum(nil), f.recv.Sum(nil)) {
		t.Errorf("%s: sent %d bytes, got %d back, sha256 equal: %v", name, f.nSent, f.nRecv, bytes.Equal(f.sent.Sum(nil), f.recv.Sum(nil)))
	}
}

// goneWithin waits until none of pids is alive.
func goneWithin(t *testing.T, d time.Duration, what string, pids ...int) {
	t.Helper()
	within(t, d, what, func() error {
		for _, p := range pids {
			if alive(p) {
				return fmt.Errorf("pid %d still runs", p)
			}
		}
		return nil
	})
}

// TestHandoffStreams: 20 sessions stream both ways without pause across
// 10 USR2 upgrades and 10 HUP reloads in a row; after each, the old
// workers (and, on USR2, the old master) are gone within 2 s although
// every session is still open, and at the end every byte came back in
// order.
func TestHandoffStreams(t *testing.T) {
	back, front, other := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "echo", back)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, handoffConfig(front, other, back, "")), []string{"-w", "2"})
	var flows []*flow
	for i := range 20 {
		flows = append(flows, startFlow(t, front, uint64(i)))
	}
	time.Sleep(300 * time.Millisecond)
	for i := 1; i <= 10; i++ {
		master := m.Pid()
		workers := testenv.Children(master)
		syscall.Kill(master, syscall.SIGUSR2)
		m.WaitCount(t, "upgrade complete", i, 20*time.Second)
		goneWithin(t, 2*time.Second, fmt.Sprintf("upgrade %d: the old master and its workers", i), append(workers, master)...)
		waitPidChange(t, m, master)
		time.Sleep(100 * time.Millisecond)

		master = m.Pid()
		workers = testenv.Children(master)
		syscall.Kill(master, syscall.SIGHUP)
		m.WaitCount(t, "msg=reloaded", i, 20*time.Second)
		goneWithin(t, 2*time.Second, fmt.Sprintf("reload %d: the old workers", i), workers...)
		time.Sleep(100 * time.Millisecond)
	}
	for i, f := range flows {
		f.finish(t, fmt.Sprintf("session %d", i))
	}
	if n := handedOver(m.Log()); n != 20*20 {
		t.Errorf("the workers logged %d sessions handed over in 20 changes of 20 sessions, want 400", n)
	}
}

// TestHandoffHalfCloseAndUnsent: a session half-closed by the client with
// 1 MiB it has not read yet, and one whose client stopped reading while
// 16 MiB are on the way (some in g6's pipe: unsent bytes that move with
// the session), are handed over by USR2 (the old master exits while they
// are open) and deliver every byte once the client reads.
func TestHandoffHalfCloseAndUnsent(t *testing.T) {
	back, front, other := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "echo", back)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, handoffConfig(front, other, back, "")), []string{"-w", "2"})
	payload := make([]byte, 16<<20)
	rand.NewChaCha8([32]byte{7}).Read(payload)
	dial := func() *net.TCPConn {
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(60 * time.Second))
		return c.(*net.TCPConn)
	}
	// 1 MiB then the client's FIN; 16 MiB to a client that reads nothing
	// until after the upgrade (the writer blocks once every buffer on the
	// way is full, some of them g6's).
	halfClosed, stalled := dial(), dial()
	if _, err := halfClosed.Write(payload[:1<<20]); err != nil {
		t.Fatal(err)
	}
	halfClosed.CloseWrite()
	wrote := make(chan error, 1)
	go func() {
		_, err := stalled.Write(payload)
		wrote <- err
	}()
	time.Sleep(time.Second) // the echo fills the buffers on the way back
	master := m.Pid()
	workers := testenv.Children(master)
	syscall.Kill(master, syscall.SIGUSR2)
	m.WaitCount(t, "upgrade complete", 1, 20*time.Second)
	goneWithin(t, 2*time.Second, "the old master and its workers", append(workers, master)...)

	got, err := io.ReadAll(halfClosed)
	if err != nil || !bytes.Equal(got, payload[:1<<20]) {
		t.Errorf("half-closed session: read %d bytes (%v), want the 1 MiB echo then EOF", len(got), err)
	}
	got = make([]byte, len(payload))
	if _, err := io.ReadFull(stalled, got); err != nil || !bytes.Equal(got, payload) {
		t.Errorf("stalled session: %v, equal %v", err, bytes.Equal(got, payload))
	}
	if err := <-wrote; err != nil {
		t.Errorf("stalled session: write: %v", err)
	}
	held := &heldEcho{c: stalled}
	held.check(t, "after the upgrade")
	if n := handedOver(m.Log()); n != 2 {
		t.Errorf("the workers logged %d sessions handed over, want 2", n)
	}
	// 16 MiB do not fit the kernel's buffers towards a client that does
	// not read: some of it was in g6's pipe or buffer and moved in the
	// batch.
	if !regexp.MustCompile(`handoff done.* unsent_bytes=[1-9]`).MatchString(m.Log()) {
		t.Errorf("no unsent bytes went with the sessions")
	}
}

// TestHandoff5000Idle: 5,000 idle sessions move to the new master's
// workers on USR2: the old master is gone within 2 s, the region's active
// count equals the open sessions before and after, and every session
// still echoes.
func TestHandoff5000Idle(t *testing.T) {
	back, front, other, metrics := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "echo", back)
	cfg := handoffConfig(front, other, back, fmt.Sprintf("metrics = %q\n", metrics))
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	const n = 5000
	conns := make([]net.Conn, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 50 {
				c, err := net.Dial("tcp", front)
				if err != nil {
					errs <- err
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	active := func() float64 { return sumOf(scrape(t, metrics)["g6_server_active_connections"], "", "") }
	within(t, 5*time.Second, "the region counting every session", func() error {
		if a := active(); a != n {
			return fmt.Errorf("active %v, want %d", a, n)
		}
		return nil
	})
	master := m.Pid()
	workers := testenv.Children(master)
	start := time.Now()
	syscall.Kill(master, syscall.SIGUSR2)
	m.WaitCount(t, "upgrade complete", 1, 20*time.Second)
	goneWithin(t, 2*time.Second, "the old master and its workers", append(workers, master)...)
	t.Logf("USR2 to the old master gone: %v", time.Since(start))
	if a := active(); a != n {
		t.Errorf("after the handoff the region counts %v active, want %d", a, n)
	}
	buf := make([]byte, 1)
	for i, c := range conns {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatalf("session %d: write: %v", i, err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || buf[0] != byte(i) {
			t.Fatalf("session %d: echo %v %v", i, buf, err)
		}
	}
}

// TestHandoffNewWorkerDies: a new worker that dies before answering a
// batch leaves every session with the old one, which drains as without
// handoff; the new master serves new connections; once the sessions end
// the old master exits.
func TestHandoffNewWorkerDies(t *testing.T) {
	back, front, other := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "echo", back)
	t.Setenv("G6_TEST_DIE_ON_ADOPT", "1")
	m := testenv.StartMaster(t, testenv.WriteConfig(t, handoffConfig(front, other, back, "")), []string{"-w", "1"})
	var held []*heldEcho
	for range 3 {
		h := holdEcho(t, front)
		h.check(t, "before")
		held = append(held, h)
	}
	old := m.Pid()
	syscall.Kill(old, syscall.SIGUSR2)
	m.WaitLog(t, "handoff channel closed; the sessions left drain here", 20*time.Second)
	for i, h := range held {
		h.check(t, fmt.Sprintf("session %d after the failed handoff", i))
	}
	if !alive(old) {
		t.Fatal("the old master exited with its sessions")
	}
	fresh := holdEcho(t, front)
	fresh.check(t, "a new connection")
	for _, h := range held {
		h.c.Close()
	}
	goneWithin(t, 5*time.Second, "the old master once its sessions ended", old)
}

// TestReloadHandoffKeepsRemovedRule: a HUP that drops a rule hands over
// the sessions of the rule that stays (the new worker's pid in show
// sessions) and drains the removed rule's in the old worker, which goes on
// forwarding them.
func TestReloadHandoffKeepsRemovedRule(t *testing.T) {
	back, front, other, adminAddr := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "echo", back)
	adminCfg := fmt.Sprintf("[admin]\nlisten = [%q]\nclients = [\"127.0.0.1:*\"]\n", adminAddr)
	path := testenv.WriteConfig(t, handoffConfig(front, other, back, "")+adminCfg)
	m := testenv.StartMaster(t, path, []string{"-w", "1"})
	kept, dropped := holdEcho(t, front), holdEcho(t, other)
	kept.check(t, "before")
	dropped.check(t, "before")
	oldWorkers := testenv.Children(m.Pid())
	cfg := fmt.Sprintf(`
[global]
drain_timeout = "60s"

[[rule]]
id = "echo"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]
`, front, back) + adminCfg
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(m.Pid(), syscall.SIGHUP)
	m.WaitCount(t, "msg=reloaded", 1, 20*time.Second)
	m.WaitLog(t, "handed=1 kept=1", 10*time.Second)
	kept.check(t, "after")
	dropped.check(t, "after")
	out := adminSend(t, adminAddr, "show sessions json\n")
	for _, pid := range oldWorkers {
		if !strings.Contains(out, fmt.Sprintf(`"pid": %d`, pid)) || !strings.Contains(out, `"rule": "other"`) {
			t.Errorf("the removed rule's session is not with the old worker %d:\n%s", pid, out)
		}
	}
	if strings.Count(out, `"rule": "echo"`) != 1 {
		t.Errorf("show sessions:\n%s", out)
	}
}

// TestHandoffOneAccessLine: a session that lived through a USR2 and a HUP
// has one access-log line, written where it ended, with the bytes of its
// whole life and a duration from its first start; while open, show
// sessions gives it its original age and byte counts.
func TestHandoffOneAccessLine(t *testing.T) {
	back, front, other, adminAddr := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "echo", back)
	logPath := filepath.Join(t.TempDir(), "access.log")
	extra := fmt.Sprintf("access_log = %q\naccess_log_format = \"json\"\n", logPath)
	cfg := handoffConfig(front, other, back, extra) + fmt.Sprintf("[admin]\nlisten = [%q]\nclients = [\"127.0.0.1:*\"]\n", adminAddr)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	h := holdEcho(t, front)
	h.check(t, "before") // "still here before\n" both ways: 18 bytes
	time.Sleep(time.Second)
	master := m.Pid()
	syscall.Kill(master, syscall.SIGUSR2)
	m.WaitCount(t, "upgrade complete", 1, 20*time.Second)
	goneWithin(t, 2*time.Second, "the old master", master)
	waitPidChange(t, m, master)
	syscall.Kill(m.Pid(), syscall.SIGHUP)
	m.WaitCount(t, "msg=reloaded", 1, 20*time.Second)
	m.WaitCount(t, "handed=1 kept=0", 2, 10*time.Second)
	h.check(t, "after") // 17 bytes more each way
	var doc struct {
		Sessions []struct {
			Age        float64 `json:"age_seconds"`
			FromClient int64   `json:"bytes_from_client"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(adminSend(t, adminAddr, "show sessions json\n")), &doc); err != nil || len(doc.Sessions) != 1 {
		t.Fatalf("show sessions: %v %+v", err, doc)
	}
	if s := doc.Sessions[0]; s.Age < 1 || s.FromClient != 18+17 {
		t.Errorf("show sessions after the handoffs: age %.2f s, %d bytes from the client; want ≥ 1 s and 35", s.Age, s.FromClient)
	}
	h.c.Close()
	readAccess(t, logPath, 1)
	time.Sleep(300 * time.Millisecond) // a second line, if one were written
	lines := readAccess(t, logPath, 1)
	if len(lines) != 1 || lines[0].FromClient != 35 || lines[0].FromServer != 35 {
		t.Errorf("access log after a session that moved twice: %+v, want one line with 35 bytes each way", lines)
	}
}

// TestHandoffFormatMismatch: a new binary that cannot read the old
// workers' session format takes no channel; the upgrade completes and the
// old master drains its sessions as without handoff.
func TestHandoffFormatMismatch(t *testing.T) {
	back, front, other := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "echo", back)
	t.Setenv("G6_TEST_HANDOFF_FORMAT", "99")
	m := testenv.StartMaster(t, testenv.WriteConfig(t, handoffConfig(front, other, back, "")), []string{"-w", "1"})
	h := holdEcho(t, front)
	h.check(t, "before")
	old := m.Pid()
	syscall.Kill(old, syscall.SIGUSR2)
	m.WaitCount(t, "upgrade complete", 1, 20*time.Second)
	m.WaitLog(t, "upgrade: the old workers' sessions drain there", 5*time.Second)
	time.Sleep(time.Second)
	if !alive(old) {
		t.Fatal("the old master exited with a session it could not hand over")
	}
	h.check(t, "after")
	h.c.Close()
	goneWithin(t, 5*time.Second, "the old master once its session ended", old)
}

// handedOver sums what the "handoff done" lines of a master's log say was
// handed over.
func handedOver(log string) int {
	n := 0
	for _, m := range regexp.MustCompile(`msg="handoff done".* handed=(\d+)`).FindAllStringSubmatch(log, -1) {
		k, _ := strconv.Atoi(m[1])
		n += k
	}
	return n
}

// TestHandoffWaitsForConnecting: a session still connecting when the
// upgrade starts (its server's accept queue is full, so the SYN is
// retried) is not cut: it is handed over once established, and the old
// master exits only then.
func TestHandoffWaitsForConnecting(t *testing.T) {
	front, other := testenv.Addr(t), testenv.Addr(t)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "slow-backend")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	back := ln.Addr().String()
	filler, err := net.Dial("tcp", back) // fills the accept queue (backlog 0 holds one)
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	cfg := strings.Replace(handoffConfig(front, other, back, ""), "[global]\n", "[global]\nconnect_timeout = \"10s\"\n", 1)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(300 * time.Millisecond) // g6's SYN is dropped: connecting
	old := m.Pid()
	syscall.Kill(old, syscall.SIGUSR2)
	m.WaitCount(t, "upgrade complete", 1, 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	if !alive(old) {
		t.Fatal("the old master left while a session was still connecting")
	}
	// Free the queue: g6's retried SYN gets in, the session is established
	// and handed over.
	var served []net.Conn
	for range 2 {
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		served = append(served, sc)
	}
	go io.Copy(served[1], served[1])
	goneWithin(t, 5*time.Second, "the old master once the session was established and handed over", old)
	h := &heldEcho{c: c}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	h.check(t, "after")
	if n := handedOver(m.Log()); n != 1 {
		t.Errorf("%d sessions handed over, want 1", n)
	}
}
