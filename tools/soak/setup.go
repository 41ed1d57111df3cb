package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// soak is one run's processes and addresses.
type soak struct {
	dir       string
	g6        string
	master    *exec.Cmd
	backends  []*exec.Cmd
	pidFile   string
	logPath   string
	short     string // front of the greeting rule
	stream    string // front of the echo rule
	keep      bool   // keep dir (the run failed)
	servers   []string
	accessLog string
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func freeAddrs(n int) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for len(out) < n {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out, nil
}

func setUp(g6, backend string, workers int) (*soak, error) {
	dir, err := os.MkdirTemp("", "g6-soak-")
	if err != nil {
		return nil, err
	}
	s := &soak{dir: dir, g6: g6, pidFile: filepath.Join(dir, "g6.pid"), logPath: filepath.Join(dir, "g6.log"),
		accessLog: filepath.Join(dir, "access.log")}
	addrs, err := freeAddrs(7)
	if err != nil {
		return nil, err
	}
	greet, echo := addrs[0:3], addrs[3:5]
	s.short, s.stream = addrs[5], addrs[6]
	s.servers = append(append(s.servers, greet...), echo...)
	for _, b := range [][]string{{"greet", strings.Join(greet, ",")}, {"echo", strings.Join(echo, ",")}} {
		cmd := exec.Command(backend, "-mode", b[0], "-listen", b[1])
		if err := cmd.Start(); err != nil {
			s.tearDown()
			return nil, fmt.Errorf("backend: %w", err)
		}
		s.backends = append(s.backends, cmd)
	}
	cfg := fmt.Sprintf(`
[global]
workers = %d
drain_timeout = "30s"
connect_timeout = "2s"
access_log = %q

[[rule]]
id = "short"
algorithm = "RR"
clients = ["127.0.0.1:*"]
listen = [%q]
servers = [%s]

[[rule]]
id = "stream"
algorithm = "LC"
clients = ["127.0.0.1:*"]
listen = [%q]
servers = [%s]
`, workers, s.accessLog, s.short, quoteList(greet), s.stream, quoteList(echo))
	path := filepath.Join(dir, "g6.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		s.tearDown()
		return nil, err
	}
	out, err := os.Create(s.logPath)
	if err != nil {
		s.tearDown()
		return nil, err
	}
	defer out.Close()
	s.master = exec.Command(g6, "master", "-c", path, "--pid-file", s.pidFile)
	s.master.Stdout, s.master.Stderr = out, out
	if err := s.master.Start(); err != nil {
		s.tearDown()
		return nil, err
	}
	if err := s.waitLog("g6 started", 20*time.Second); err != nil {
		s.tearDown()
		return nil, err
	}
	return s, nil
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, a := range l {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, ", ")
}

func (s *soak) log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

func (s *soak) waitLog(text string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for !strings.Contains(s.log(), text) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the master never logged %q:\n%s", text, s.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// masterPid is the current master's (it changes with every USR2).
func (s *soak) masterPid() int {
	b, err := os.ReadFile(s.pidFile)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// tearDown stops the current master (and so its workers) and the backends.
func (s *soak) tearDown() {
	if pid := s.masterPid(); pid != 0 {
		syscall.Kill(pid, syscall.SIGINT)
		for i := 0; i < 250 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if s.master != nil {
		s.master.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { s.master.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.master.Process.Kill()
		}
	}
	for _, b := range s.backends {
		b.Process.Kill()
		b.Wait()
	}
	if !s.keep {
		os.RemoveAll(s.dir)
	}
}

// logSize is how much the master log holds now.
func (s *soak) logSize() int64 {
	st, err := os.Stat(s.logPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// isolated lists the "server isolated" lines logged from offset on (the
// full-rate phase, where every server stays up).
func (s *soak) isolated(from int64) []string {
	if from == 0 {
		return nil
	}
	b, _ := os.ReadFile(s.logPath)
	var out []string
	for _, l := range strings.Split(string(b[min(from, int64(len(b))):]), "\n") {
		if strings.Contains(l, "server isolated") {
			out = append(out, l)
		}
	}
	return out
}
