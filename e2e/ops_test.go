package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
	"g6/tools/load"
)

// loadLoop keeps short connections going (500/s asked), each of which must get
// a backend's greeting, until stopped.
type loadLoop struct {
	cancel context.CancelFunc
	done   chan *load.Result
}

func startLoad(addr string) *loadLoop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loadLoop{cancel: cancel, done: make(chan *load.Result, 1)}
	go runLoad(ctx, addr, l.done)
	return l
}

func runLoad(ctx context.Context, addr string, out chan<- *load.Result) {
	out <- load.Run(ctx, load.Options{Addr: addr, Rate: 500, Concurrency: 64,
		Duration: 3 * time.Minute, Expect: "hello from", Timeout: 5 * time.Second})
}

func (l *loadLoop) stop(t *testing.T) *load.Result {
	l.cancel()
	r := <-l.done
	t.Logf("load: %v", r)
	// The load must have run; how fast depends on what else the machine
	// does (the loop asks for 500/s).
	if n := r.OK + r.Failed; n < 10 {
		t.Errorf("only %d connections in %v: the load did not run", n, r.Elapsed.Round(time.Millisecond))
	}
	return r
}

// heldEcho is a session kept open across operations; check proves it
// still forwards both ways.
type heldEcho struct{ c net.Conn }

func holdEcho(t *testing.T, addr string) *heldEcho {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	return &heldEcho{c: c}
}

func (h *heldEcho) check(t *testing.T, step string) {
	t.Helper()
	msg := "still here " + step
	if _, err := fmt.Fprintln(h.c, msg); err != nil {
		t.Fatalf("%s: held session write: %v", step, err)
	}
	buf := make([]byte, len(msg)+1)
	if _, err := io.ReadFull(h.c, buf); err != nil || string(buf) != msg+"\n" {
		t.Fatalf("%s: held session read %q, %v", step, buf, err)
	}
}

// opsSetup: greeting backends behind "front", echo backends behind "echo".
func opsSetup(t *testing.T, nServers int) (servers []string, echoBack, front, echoFront string, cfg func(n int) string) {
	servers = backends(t, nServers)
	echoBack = testenv.Addr(t)
	testenv.Backend(t, "echo", echoBack)
	front, echoFront = testenv.Addr(t), testenv.Addr(t)
	cfg = func(n int) string {
		return fmt.Sprintf(`
[global]
connect_timeout = "2s"
drain_timeout = "60s"

[[rule]]
id = "greet"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = %s

[[rule]]
id = "echo"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]
`, front, serverList(servers[:n]), echoFront, echoBack)
	}
	return
}

func TestUpgradesUnderLoad(t *testing.T) {
	_, _, front, echoFront, cfg := opsSetup(t, 2)
	path := testenv.WriteConfig(t, cfg(2))
	m := testenv.StartMaster(t, path, []string{"-w", "2"})
	held := holdEcho(t, echoFront)
	held.check(t, "before")
	l := startLoad(front)
	for i := 1; i <= 10; i++ {
		old := m.Pid()
		syscall.Kill(old, syscall.SIGUSR2)
		m.WaitCount(t, "upgrade complete", i, 20*time.Second)
		waitPidChange(t, m, old)
		held.check(t, fmt.Sprintf("upgrade %d", i))
		time.Sleep(100 * time.Millisecond) // let the load run on each generation
	}
	r := l.stop(t)
	if r.Failed != 0 {
		t.Fatalf("%d connections failed during 10 upgrades: %v", r.Failed, r.Errors)
	}
	first := m.Cmd.Process.Pid
	held.c.Close()
	if code := m.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("first master %d exited %d", first, code)
	}
}

func waitPidChange(t *testing.T, m *testenv.Master, old int) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if p := m.Pid(); p != 0 && p != old {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid file still says %d", old)
}

func TestReloadsUnderLoad(t *testing.T) {
	servers, _, front, echoFront, cfg := opsSetup(t, 3)
	path := testenv.WriteConfig(t, cfg(2))
	m := testenv.StartMaster(t, path, []string{"-w", "2"})
	held := holdEcho(t, echoFront)
	l := startLoad(front)
	for i := 1; i <= 10; i++ {
		n := 2 + i%2 // 3 servers on odd reloads, 2 on even ones
		os.WriteFile(path, []byte(cfg(n)), 0o644)
		m.Cmd.Process.Signal(syscall.SIGHUP)
		m.WaitCount(t, "msg=reloaded", i, 20*time.Second)
		held.check(t, fmt.Sprintf("reload %d", i))
		time.Sleep(100 * time.Millisecond)
		got := countGreetings(t, front, 30)
		if (n == 3) != (got[servers[2]] > 0) {
			t.Fatalf("reload %d (%d servers): greetings %v", i, n, got)
		}
	}
	r := l.stop(t)
	if r.Failed != 0 {
		t.Fatalf("%d connections failed during 10 reloads: %v", r.Failed, r.Errors)
	}
	if got := len(m.Workers(t)); got < 2 {
		t.Fatalf("%d workers after the reloads", got)
	}
}

// TestBadReloadKeepsServing: a config with an error is refused with a log
// line naming the place; the old config keeps serving.
func TestBadReloadKeepsServing(t *testing.T) {
	_, _, front, _, cfg := opsSetup(t, 2)
	path := testenv.WriteConfig(t, cfg(2))
	m := testenv.StartMaster(t, path, []string{"-w", "1"})
	os.WriteFile(path, []byte(cfg(2)+"\n[[rule]]\nid = \"greet\"\n"), 0o644)
	m.Cmd.Process.Signal(syscall.SIGHUP)
	m.WaitLog(t, "reload refused", 10*time.Second)
	if !strings.Contains(m.Log(), path+":") {
		t.Errorf("the refusal does not name the file and line:\n%s", m.Log())
	}
	countGreetings(t, front, 5)
}

func TestKilledWorkersUnderLoad(t *testing.T) {
	_, _, front, _, cfg := opsSetup(t, 2)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg(2)), []string{"-w", "2"})
	l := startLoad(front)
	for i := 1; i <= 10; i++ {
		m.WaitCount(t, "worker serving", 2+i-1, 10*time.Second)
		ws := waitWorkers(t, m, 2)
		syscall.Kill(ws[rand.IntN(len(ws))], syscall.SIGKILL)
		m.WaitCount(t, "respawning", i, 10*time.Second)
		time.Sleep(200 * time.Millisecond)
	}
	r := l.stop(t)
	// Only connections in flight on a killed worker may fail; queued ones
	// are served by its replacement on the same sockets.
	t.Logf("failed connections over 10 kills: %d", r.Failed)
	if r.Failed > 10*64 {
		t.Fatalf("%d failures over 10 kills: more than the connections in flight (%v)", r.Failed, r.Errors)
	}
}

func waitWorkers(t *testing.T, m *testenv.Master, n int) []int {
	t.Helper()
	for i := 0; i < 500; i++ {
		if ws := m.Workers(t); len(ws) >= n {
			return ws
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("fewer than %d workers for 5s", n)
	return nil
}

func TestUpgradeWithBadConfigRollsBack(t *testing.T) {
	_, _, front, _, cfg := opsSetup(t, 2)
	path := testenv.WriteConfig(t, cfg(2))
	m := testenv.StartMaster(t, path, []string{"-w", "1"})
	l := startLoad(front)
	time.Sleep(200 * time.Millisecond)
	os.WriteFile(path, []byte("[[rule]]\nid = 5\n"), 0o644)
	pid := m.Pid()
	syscall.Kill(pid, syscall.SIGUSR2)
	m.WaitLog(t, "upgrade failed; this master keeps serving", 20*time.Second)
	// The old master's log says why (the new one's stderr may go nowhere).
	if !regexp.MustCompile(`msg="upgrade failed; this master keeps serving".*could not start: .*id`).MatchString(m.Log()) {
		t.Errorf("the failed upgrade's reason is not in the old master's log:\n%s", m.Log())
	}
	time.Sleep(200 * time.Millisecond)
	if r := l.stop(t); r.Failed != 0 {
		t.Fatalf("%d connections failed around a failed upgrade: %v", r.Failed, r.Errors)
	}
	if m.Pid() != pid || m.Exited() {
		t.Fatal("the old master did not keep serving")
	}
}

// TestUpgradeWhoseWorkersFailRollsBack: the new master's workers die as
// they start; the old master keeps serving on its sockets (the failing
// master once shut the shared listening sockets down as it gave up, and
// the old workers spun on accept's EINVAL).
func TestUpgradeWhoseWorkersFailRollsBack(t *testing.T) {
	_, _, front, _, cfg := opsSetup(t, 2)
	fail := filepath.Join(t.TempDir(), "fail")
	t.Setenv("G6_TEST_WORKER_FAIL_FILE", fail)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg(2)), []string{"-w", "2"})
	os.WriteFile(fail, nil, 0o644)
	pid := m.Pid()
	m.Signal(t, syscall.SIGUSR2)
	m.WaitLog(t, "upgrade failed; this master keeps serving", 20*time.Second)
	os.Remove(fail)
	l := startLoad(front)
	time.Sleep(time.Second)
	if r := l.stop(t); r.Failed != 0 {
		t.Fatalf("%d connections failed after a failed upgrade: %v", r.Failed, r.Errors)
	}
	if m.Pid() != pid || strings.Contains(m.Log(), "no longer listens") {
		t.Fatalf("the old master's sockets were taken from it:\n%s", m.Log())
	}
}

func TestUpgradeToBrokenBinaryRollsBack(t *testing.T) {
	_, _, front, _, cfg := opsSetup(t, 2)
	dir := t.TempDir()
	bin := filepath.Join(dir, "g6")
	good, err := os.ReadFile(testenv.Bin(t, "g6"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bin, good, 0o755)
	m := testenv.StartMasterBin(t, bin, testenv.WriteConfig(t, cfg(2)), []string{"-w", "1"})
	l := startLoad(front)
	// Replace the binary on disk with one that exits at once.
	os.Remove(bin)
	os.WriteFile(bin, []byte("#!/bin/sh\nexit 3\n"), 0o755)
	pid := m.Pid()
	syscall.Kill(pid, syscall.SIGUSR2)
	m.WaitLog(t, "upgrade failed; this master keeps serving", 20*time.Second)
	// Put a good binary back: the next upgrade goes through.
	os.Remove(bin)
	os.WriteFile(bin, good, 0o755)
	syscall.Kill(pid, syscall.SIGUSR2)
	m.WaitLog(t, "upgrade complete", 20*time.Second)
	waitPidChange(t, m, pid)
	if r := l.stop(t); r.Failed != 0 {
		t.Fatalf("%d connections failed: %v", r.Failed, r.Errors)
	}
}

// TestAdoptsG6Sockets: a listening socket handed down the way G6 does it
// (G6_LISTEN_SOCKFDS, not in a reuseport group) is served, not rebound.
func TestAdoptsG6Sockets(t *testing.T) {
	servers := backends(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := ln.Addr().String()
	f, _ := ln.(*net.TCPListener).File()
	ln.Close()
	path := testenv.WriteConfig(t, ruleConfig("RR", front, `["*:*"]`, serverList(servers)))
	cmd := exec.Command(testenv.Bin(t, "g6"), "master", "-c", path, "-w", "2")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(os.Environ(), "G6_LISTEN_SOCKFDS=1|3|")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer func() { cmd.Process.Signal(syscall.SIGINT); cmd.Wait() }()
	for i := 0; i < 200; i++ {
		if g, err := testenv.Greeting(front); err == nil && strings.HasPrefix(g, "hello") {
			got := countGreetings(t, front, 20)
			if got[servers[0]] != 20 {
				t.Fatalf("greetings %v", got)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("g6 did not serve the inherited socket; output:\n%s", out)
}
