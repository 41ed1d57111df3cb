// Package testenv runs g6 for integration tests: it builds the binaries once
// per test process, starts test backends and masters as real processes on
// loopback, and cleans them up when the test ends.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"g6/shared"

	"golang.org/x/sys/unix"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Bin returns the path of a built binary: "g6" (built with -race, so the
// workers are race-checked too), "backend", or "g6-plain" (without -race,
// built on first use: for tests that measure memory, which the race
// detector's shadow memory would swamp and never give back).
func Bin(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(build)
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	if name == "g6-plain" {
		plainOnce.Do(func() { plainErr = goBuild("build", "-o", filepath.Join(binDir, name), ".") })
		if plainErr != nil {
			t.Fatalf("build: %v", plainErr)
		}
	}
	return filepath.Join(binDir, name)
}

var (
	plainOnce sync.Once
	plainErr  error
)

func goBuild(args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = Root()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %v\n%s", args, err, out)
	}
	return nil
}

func build() {
	binDir, buildErr = os.MkdirTemp("", "g6-test-bin-")
	if buildErr != nil {
		return
	}
	for _, b := range [][]string{
		{"build", "-race", "-o", filepath.Join(binDir, "g6"), "."},
		{"build", "-o", filepath.Join(binDir, "backend"), "./tools/backend"},
	} {
		if buildErr = goBuild(b...); buildErr != nil {
			return
		}
	}
}

var (
	portsMu sync.Mutex
	given   = map[int]bool{}
)

// FreePort returns a loopback port that was free a moment ago and has not
// been handed out before in this test process (the kernel readily gives the
// same free port twice in a row, and two servers of one test must not meet).
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !given[port] {
			given[port] = true
			return port
		}
	}
}

// Addr is "127.0.0.1:PORT" for a free port.
func Addr(t testing.TB) string { return "127.0.0.1:" + strconv.Itoa(FreePort(t)) }

// Backend starts tools/backend on addrs (mode echo, greet or http).
func Backend(t testing.TB, mode string, addrs ...string) *exec.Cmd {
	t.Helper()
	return BackendArgs(t, []string{"-mode", mode}, addrs...)
}

// BackendArgs starts tools/backend with extra flags; kill the returned
// command to take the backend down.
func BackendArgs(t testing.TB, args []string, addrs ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Bin(t, "backend"), append(args, "-listen", strings.Join(addrs, ","))...)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for _, a := range addrs {
		WaitListening(t, a)
	}
	return cmd
}

// UDPBackend starts tools/backend -mode udp on addrs (each answers a
// datagram with "ADDR:" and the datagram) and waits until each answers.
func UDPBackend(t testing.TB, addrs ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Bin(t, "backend"), "-mode", "udp", "-listen", strings.Join(addrs, ","))
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for _, a := range addrs {
		if _, err := UDPAsk(a, []byte("ping"), 50); err != nil {
			t.Fatalf("testenv: udp backend on %s: %v", a, err)
		}
	}
	return cmd
}

// UDPAsk sends b to addr from a new socket and returns the first answer,
// trying up to tries times, 100 ms apart.
func UDPAsk(addr string, b []byte, tries int) ([]byte, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	for i := 0; ; i++ {
		c.Write(b)
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil {
			return buf[:n], nil
		}
		if i == tries-1 {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond) // an ICMP error returns at once
	}
}

// Hold dials addr from source IP src ("" = any), reads the greeting and
// returns the open connection with it. A refused client sees EOF.
func Hold(addr, src string) (net.Conn, string, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		return nil, "", err
	}
	c.SetReadDeadline(time.Time{})
	return c, strings.TrimSpace(line), nil
}

// WaitListening waits until addr accepts connections.
func WaitListening(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s is not listening", addr)
}

// Master is a running `g6 master`. Its output (and that of every process
// it starts, including a master that replaces it by USR2) goes to a file, so
// waiting for it does not wait for its successors.
type Master struct {
	Cmd     *exec.Cmd
	Config  string
	PidFile string
	logPath string
	done    chan struct{}
	err     error
}

// WriteConfig writes a config file into the test's temp dir.
func WriteConfig(t testing.TB, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "g6.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// StartMaster starts `g6 master -c config args...` and waits until it says
// it serves: every listening socket bound, workers ready, admin and metrics
// ports open. No probe connection is made; it would be a session that
// counts in the test.
func StartMaster(t testing.TB, config string, args []string) *Master {
	t.Helper()
	return StartMasterBin(t, Bin(t, "g6"), config, args)
}

// StartMasterBin is StartMaster with a given g6 binary.
func StartMasterBin(t testing.TB, bin, config string, args []string) *Master {
	t.Helper()
	return startMaster(t, bin, config, append([]string{"-c", config}, args...))
}

// StartMasterArgs starts `g6 master ARGS...` with no -c (a config from the
// fleet's store).
func StartMasterArgs(t testing.TB, args []string) *Master {
	t.Helper()
	return startMaster(t, Bin(t, "g6"), "", args)
}

func startMaster(t testing.TB, bin, config string, args []string) *Master {
	t.Helper()
	dir := t.TempDir()
	m := &Master{Config: config, done: make(chan struct{}),
		PidFile: filepath.Join(dir, "g6.pid"), logPath: filepath.Join(dir, "g6.log")}
	out, err := os.Create(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	m.Cmd = exec.Command(bin, append([]string{"master", "--pid-file", m.PidFile}, args...)...)
	m.Cmd.Stdout, m.Cmd.Stderr = out, out
	m.Cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1 atexit_sleep_ms=0")
	if err := m.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go waitProcess(m)
	t.Cleanup(func() {
		// A master started by USR2 is not our child: stop it by its pid file.
		if pid := m.Pid(); pid != 0 && pid != m.Cmd.Process.Pid {
			syscall.Kill(pid, syscall.SIGINT)
			for i := 0; i < 250 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
		m.Cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-m.done:
		case <-time.After(5 * time.Second):
			m.Cmd.Process.Kill()
			<-m.done
		}
		if t.Failed() {
			t.Logf("master log:\n%s", m.Log())
		}
		if strings.Contains(m.Log(), "WARNING: DATA RACE") {
			t.Errorf("data race in g6:\n%s", m.Log())
		}
	})
	m.WaitLog(t, "g6 started", 20*time.Second)
	return m
}

// WaitLog waits until the master's log contains text.
func (m *Master) WaitLog(t testing.TB, text string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(m.Log(), text) {
		if time.Now().After(deadline) || m.Exited() {
			t.Fatalf("master log never said %q:\n%s", text, m.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitProcess(m *Master) {
	m.err = m.Cmd.Wait()
	close(m.done)
}

// Wait waits up to d for the master to exit and returns its exit code.
func (m *Master) Wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-m.done:
	case <-time.After(d):
		t.Fatalf("master did not exit within %v", d)
	}
	if m.err == nil {
		return 0
	}
	if ee, ok := m.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("master: %v", m.err)
	return -1
}

// Exited reports whether the master process has ended.
func (m *Master) Exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// Log returns what the master (and its workers) logged so far.
func (m *Master) Log() string {
	b, _ := os.ReadFile(m.logPath)
	return string(b)
}

// Pid is the pid in the master's pid file (the current master after
// upgrades), 0 if there is none.
func (m *Master) Pid() int {
	b, err := os.ReadFile(m.PidFile)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Signal sends sig to the master in the pid file; with no pid there it
// fails the test rather than kill(0, sig), which would signal the test's
// own process group.
func (m *Master) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	pid := m.Pid()
	if pid <= 0 {
		t.Fatalf("no master pid in %s", m.PidFile)
	}
	syscall.Kill(pid, sig)
}

// WaitCount waits until text occurs at least n times in the log.
func (m *Master) WaitCount(t testing.TB, text string, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for strings.Count(m.Log(), text) < n {
		if time.Now().After(deadline) {
			t.Fatalf("log has %q %d times, want %d:\n%s", text, strings.Count(m.Log(), text), n, m.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Workers returns the pids of the master's live worker processes.
func (m *Master) Workers(t testing.TB) []int {
	t.Helper()
	return Children(m.Cmd.Process.Pid)
}

// Children lists the pids whose parent is pid (zombies excluded).
func Children(pid int) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		child, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[0] != "Z" && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// ListeningSockets counts LISTEN sockets on a local TCP port (IPv4).
func ListeningSockets(t testing.TB, port int) int {
	t.Helper()
	// Not /proc/net (= /proc/self/net): that is the main thread's view, and
	// a test that took Netns may have left the main thread in its namespace.
	f, err := os.Open("/proc/thread-self/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 3 && strings.HasSuffix(fields[1], want) && fields[3] == "0A" {
			n++
		}
	}
	return n
}

// Greeting dials addr and returns the first line it sends.
func Greeting(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// CheckCounts maps the shared region of the master with pid (found among its
// descriptors) and fails the test unless every connection count adds up
// (shared.CheckCounts) within a few seconds, the time for the sessions that
// just ended to be reaped.
func CheckCounts(t testing.TB, pid int) {
	t.Helper()
	r := openRegion(t, pid)
	defer r.Close()
	var bad []string
	for i := 0; i < 100; i++ {
		if bad = r.CheckCounts(); len(bad) == 0 {
			return
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Fatalf("connection counts do not add up:\n%s", strings.Join(bad, "\n"))
}

func openRegion(t testing.TB, pid int) *shared.Region {
	t.Helper()
	r, err := OpenRegion(pid)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// OpenRegion maps the shared region of the g6 master with pid, found among
// its descriptors through /proc (the same memfd across USR2 upgrades).
func OpenRegion(pid int) (*shared.Region, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		link, _ := os.Readlink(filepath.Join(dir, e.Name()))
		if !strings.HasPrefix(link, "/memfd:g6-shared") {
			continue
		}
		fd, err := unix.Open(filepath.Join(dir, e.Name()), unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		r, err := shared.Open(fd)
		if err != nil {
			unix.Close(fd)
		}
		return r, err
	}
	return nil, fmt.Errorf("process %d holds no shared region", pid)
}

// Netns moves the calling test into a network namespace of its own, with
// only a loopback interface (up), and applies sysctls there (name → value,
// e.g. "net/ipv4/ip_local_port_range": "40000 40001"). It locks the test's
// goroutine to its thread for good, so the thread (and with it the
// namespace) ends with the test; processes the test starts from then on,
// and sockets it opens, are in the namespace. Tests that cannot make one
// (not root) are skipped.
func Netns(t testing.TB, sysctls map[string]string) {
	t.Helper()
	runtime.LockOSThread() // never unlocked: the runtime then retires the thread
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Skipf("no network namespace here: %v", err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		t.Fatalf("netns: lo up: %v", err)
	}
	for k, v := range sysctls {
		if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0); err != nil {
			t.Fatalf("netns: sysctl %s: %v", k, err)
		}
	}
}

// LimitedBin returns a script that runs bin with the open-file limit set
// to n (soft and hard), for tests of descriptor exhaustion.
func LimitedBin(t testing.TB, bin string, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "limited-"+filepath.Base(bin))
	script := fmt.Sprintf("#!/bin/sh\nulimit -n %d || exit 111\nexec %q \"$@\"\n", n, bin)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// Run runs a command that should end by itself and returns its combined
// output. It is killed after d, and its output pipes are let go a second
// later even if a child still holds them, so a command that unexpectedly
// keeps running fails its test instead of hanging the whole package.
func Run(t testing.TB, d time.Duration, name string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: still running after %v (output %q)", name, args, d, out)
	}
	return out, err
}
