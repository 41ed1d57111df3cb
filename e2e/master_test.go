package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

// rrConfig is a config with one RR rule from listen to servers.
func rrConfig(listen string, servers ...string) string {
	return fmt.Sprintf(`
[global]
connect_timeout = "2s"
drain_timeout = "20s"

[[rule]]
id = "t"
algorithm = "RR"
clients = ["127.0.0.*:*"]
listen = [%q]
servers = [%s]
`, listen, quoteList(servers))
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}

func port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

func TestTwoWorkersTwoSocketsPerAddress(t *testing.T) {
	back := testenv.Addr(t)
	testenv.Backend(t, "greet", back)
	l1, l2 := testenv.Addr(t), testenv.Addr(t)
	cfg := testenv.WriteConfig(t, rrConfig(l1, back)+`
[[rule]]
id = "u"
algorithm = "RR"
clients = ["*:*"]
listen = ["`+l2+`"]
servers = ["`+back+`"]
`)
	m := testenv.StartMaster(t, cfg, []string{"-w", "2"})
	if n := len(m.Workers(t)); n != 2 {
		t.Fatalf("worker processes: got %d, want 2", n)
	}
	for _, l := range []string{l1, l2} {
		if n := testenv.ListeningSockets(t, port(l)); n != 2 {
			t.Errorf("listening sockets on %s: got %d, want 2", l, n)
		}
	}
}

// TestBulkBothWays sends 8 MB each way on one connection through an echo
// backend while reading concurrently, and compares digests.
func TestBulkBothWays(t *testing.T) {
	back, front := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "echo", back)
	testenv.StartMaster(t, testenv.WriteConfig(t, rrConfig(front, back)), []string{"-w", "2"})
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	payload := make([]byte, 8<<20)
	rand.Read(payload)
	var wg sync.WaitGroup
	wg.Add(1)
	go sendAndHalfClose(c.(*net.TCPConn), payload, &wg, t)
	h := sha256.New()
	n, err := io.Copy(h, c)
	wg.Wait()
	if err != nil || n != int64(len(payload)) {
		t.Fatalf("read back %d bytes (err %v), want %d", n, err, len(payload))
	}
	want := sha256.Sum256(payload)
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("echoed bytes differ from sent bytes")
	}
}

func sendAndHalfClose(c *net.TCPConn, b []byte, wg *sync.WaitGroup, t *testing.T) {
	defer wg.Done()
	if _, err := c.Write(b); err != nil {
		t.Errorf("write: %v", err)
	}
	c.CloseWrite()
}

// TestHalfClose: a client that sends its request and shuts down its write
// side gets the whole answer and then EOF.
func TestHalfClose(t *testing.T) {
	back, front := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "echo", back)
	testenv.StartMaster(t, testenv.WriteConfig(t, rrConfig(front, back)), []string{"-w", "1"})
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		req := bytes.Repeat([]byte("request-"), 1000+i*100)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Equal(got, req) {
			t.Fatalf("round %d: got %d bytes (err %v), want %d", i, len(got), err, len(req))
		}
	}
}

func TestThousandSequentialConnections(t *testing.T) {
	b1, b2, front := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", b1, b2)
	testenv.StartMaster(t, testenv.WriteConfig(t, rrConfig(front, b1, b2)), []string{"-w", "2"})
	seen := map[string]int{}
	for i := 0; i < 1000; i++ {
		g, err := testenv.Greeting(front)
		if err != nil || !strings.HasPrefix(g, "hello from") {
			t.Fatalf("connection %d: %q, %v", i, g, err)
		}
		seen[g]++
	}
	if len(seen) != 2 {
		t.Errorf("answers came from %v, want both backends", seen)
	}
}

// TestDeadServerSkipped: the first server refuses connections; no client
// notices.
func TestDeadServerSkipped(t *testing.T) {
	dead, live, front := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", live)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, rrConfig(front, dead, live)), []string{"-w", "2"})
	for i := 0; i < 50; i++ {
		g, err := testenv.Greeting(front)
		if err != nil || g != "hello from "+live {
			t.Fatalf("connection %d: %q, %v", i, g, err)
		}
	}
	if !strings.Contains(m.Log(), "connect failed, server isolated") {
		t.Error("the dead server's isolation was not logged")
	}
}

func TestKilledWorkerIsReplaced(t *testing.T) {
	back, front := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", back)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, rrConfig(front, back)), []string{"-w", "2"})
	before := m.Workers(t)
	if len(before) != 2 {
		t.Fatalf("workers: %v", before)
	}
	syscall.Kill(before[0], syscall.SIGKILL)
	killed := time.Now()
	var after []int
	for time.Since(killed) < time.Second {
		after = m.Workers(t)
		if len(after) == 2 && after[0] != before[0] && after[1] != before[0] {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(after) != 2 || after[0] == before[0] || after[1] == before[0] {
		t.Fatalf("no replacement within 1s: before %v, after %v", before, after)
	}
	t.Logf("replaced in %v", time.Since(killed).Round(time.Millisecond))
	for i := 0; i < 200; i++ {
		if g, err := testenv.Greeting(front); err != nil || !strings.HasPrefix(g, "hello") {
			t.Fatalf("connection %d after respawn: %q, %v", i, g, err)
		}
	}
	if n := testenv.ListeningSockets(t, port(front)); n != 2 {
		t.Errorf("listening sockets after respawn: %d, want 2 (the same sockets)", n)
	}
}

// TestGracefulStop: TERM refuses new connections at once, lets a live
// session finish, and the master exits 0 once it has.
func TestGracefulStop(t *testing.T) {
	m, front, live := echoSession(t)
	m.Cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", front, 500*time.Millisecond)
		if err != nil {
			// A handshake that raced with the close is reset rather than
			// refused: either way the client fails at once.
			if !strings.Contains(err.Error(), "refused") && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("new connection after TERM: %v, want refused", err)
			}
			if strings.Contains(err.Error(), "refused") {
				break
			}
			continue
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("new connections still accepted 2s after TERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	echoOnce(t, live, "during drain")
	time.Sleep(300 * time.Millisecond)
	if m.Exited() {
		t.Fatal("master exited while a session was live")
	}
	echoOnce(t, live, "still there")
	live.Close()
	if code := m.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

// echoSession starts a 2-worker master in front of an echo backend and
// opens one session through it that has echoed once.
func echoSession(t *testing.T) (*testenv.Master, string, net.Conn) {
	back, front := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "echo", back)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, rrConfig(front, back)), []string{"-w", "2"})
	live, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	live.SetDeadline(time.Now().Add(10 * time.Second))
	echoOnce(t, live, "before")
	return m, front, live
}

func echoOnce(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	buf := make([]byte, len(msg)+1)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg+"\n" {
		t.Fatalf("echo of %q: %q, %v", msg, buf, err)
	}
}

func TestBadConfigExitsNamingFileAndLine(t *testing.T) {
	cfg := testenv.WriteConfig(t, "[global]\nworkers = 1\n\n[[rule]]\nid = \"x\"\nalgorithm = \"RR\"\nclients = [\"*:*\"]\nlisten = [\"127.0.0.1:1\"]\nservers = [\"10.0.0.300:80\"]\n")
	out, err := testenv.Run(t, 30*time.Second, testenv.Bin(t, "g6"), "master", "-c", cfg)
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1; output %s", err, out)
	}
	if want := cfg + ":9:"; !strings.Contains(string(out), want) || !strings.Contains(string(out), "10.0.0.300:80") {
		t.Fatalf("output %q does not name %s and the bad address", out, want)
	}
}

func TestBindFailureNamesAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	out, err := testenv.Run(t, 30*time.Second, testenv.Bin(t, "g6"), "master", "-c", testenv.WriteConfig(t, rrConfig(addr, "127.0.0.1:9")), "-w", "1")
	if err == nil || !strings.Contains(string(out), addr) {
		t.Fatalf("err %v, output %q: want a failure naming %s", err, out, addr)
	}
}

// TestWorkersIgnoreGroupSignals: a TERM or INT that reaches the workers
// directly (Ctrl-C in a terminal, systemd signalling the whole cgroup) does
// not kill them; only the master's orders do.
func TestWorkersIgnoreGroupSignals(t *testing.T) {
	m, _, live := echoSession(t)
	before := m.Workers(t)
	for _, pid := range before {
		syscall.Kill(pid, syscall.SIGTERM)
		syscall.Kill(pid, syscall.SIGINT)
	}
	time.Sleep(300 * time.Millisecond)
	if after := m.Workers(t); len(after) != 2 || after[0] != before[0] || after[1] != before[1] {
		t.Fatalf("workers %v became %v after TERM/INT sent to them directly", before, after)
	}
	echoOnce(t, live, "after")
}

// TestCPUAffinity: with cpu_affinity each worker slot runs on its own CPU.
func TestCPUAffinity(t *testing.T) {
	back, front := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", back)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, strings.Replace(rrConfig(front, back), "[global]\n", "[global]\ncpu_affinity = true\n", 1)), []string{"-w", "2"})
	seen := map[string]bool{}
	for _, pid := range m.Workers(t) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				seen[strings.TrimSpace(v)] = true
			}
		}
	}
	if len(seen) != 2 {
		t.Fatalf("workers run on CPU lists %v, want two different single CPUs", seen)
	}
	for l := range seen {
		if strings.ContainsAny(l, ",-") {
			t.Fatalf("worker not pinned to one CPU: %q", l)
		}
	}
}
