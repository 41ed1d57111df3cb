package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

type accessLine struct {
	Rule, Client, Server, End string
	FromClient                int64 `json:"bytes_from_client"`
	FromServer                int64 `json:"bytes_from_server"`
}

func readAccess(t *testing.T, path string, want int) []accessLine {
	t.Helper()
	return readJSONLines[accessLine](t, path, want)
}

// readJSONLines waits (6 s at most) until the JSON access log at path has
// want lines, and returns them decoded into T.
func readJSONLines[T any](t *testing.T, path string, want int) []T {
	t.Helper()
	var lines []T
	for range 300 {
		b, _ := os.ReadFile(path)
		lines = lines[:0]
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l == "" {
				continue
			}
			var a T
			if err := json.Unmarshal([]byte(l), &a); err != nil {
				t.Fatalf("access log line %q: %v", l, err)
			}
			lines = append(lines, a)
		}
		if len(lines) >= want {
			return lines
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("access log has %d lines, want %d", len(lines), want)
	return nil
}

// TestAccessLog: one JSON line per session with the bytes each way and how
// it ended; refusals too; USR1 reopens the file after rotation.
func TestAccessLog(t *testing.T) {
	back, front := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", back)
	path := filepath.Join(t.TempDir(), "access.log")
	cfg := fmt.Sprintf(`
[global]
access_log = %q
access_log_format = "json"

[[rule]]
id = "acc"
algorithm = "RR"
clients = [{ pattern = "127.0.0.*:*", max_connections = 1 }]
listen = [%q]
servers = [%q]
`, path, front, back)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	greeting := "hello from " + back + "\n"
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		r.ReadString('\n')
		fmt.Fprint(c, "ping\n")
		r.ReadString('\n')
		c.Close()
		readAccess(t, path, i+1)
	}
	lines := readAccess(t, path, 3)
	for _, l := range lines {
		if l.Rule != "acc" || l.Server != back || l.End != "client close" ||
			l.FromClient != 5 || l.FromServer != int64(len(greeting))+5 {
			t.Fatalf("access line %+v: want rule acc, server %s, client close, 5 and %d bytes", l, back, len(greeting)+5)
		}
	}
	hold, _, err := testenv.Hold(front, "")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", front); err == nil {
		io.ReadAll(c) // refused: closed at once
		c.Close()
	}
	lines = readAccess(t, path, 4)
	if lines[3].End != "limit" {
		t.Fatalf("refused connection logged as %+v", lines[3])
	}
	hold.Close()
	readAccess(t, path, 5)
	os.Rename(path, path+".1")
	syscall.Kill(m.Cmd.Process.Pid, syscall.SIGUSR1)
	time.Sleep(200 * time.Millisecond)
	testenv.Greeting(front)
	if got := readAccess(t, path, 1); len(got) != 1 {
		t.Fatalf("after USR1 the new file has %d lines, want 1", len(got))
	}
}

// TestAccessLogDiskFull: the access log on a 64 KiB tmpfs that fills up
// (issue #32: 3,722 of 4,000 lines were lost without a word and the last
// one was cut mid-line). Lines that do not fit are counted
// (g6_access_log_dropped_total) and said in the main log, no line is left
// half written, and lines come again once space is freed.
func TestAccessLogDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	filler := filepath.Join(dir, "filler")
	os.WriteFile(filler, make([]byte, 40<<10), 0o644)
	access := filepath.Join(dir, "access.log")
	_, _, front, _, cfg := opsSetup(t, 1)
	metrics := testenv.Addr(t)
	text := strings.Replace(cfg(1), "[global]\n", fmt.Sprintf("[global]\naccess_log = %q\naccess_log_format = \"json\"\nmetrics = %q\n", access, metrics), 1)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, text), []string{"-w", "2"})
	for range 1000 {
		testenv.Greeting(front)
	}
	within(t, 10*time.Second, "the drops counted", func() error {
		if v := sumOf(scrape(t, metrics)["g6_access_log_dropped_total"], "", ""); v < 500 {
			return fmt.Errorf("g6_access_log_dropped_total = %v", v)
		}
		return nil
	})
	m.WaitLog(t, "access log lines dropped", 5*time.Second)
	m.WaitLog(t, "access log lines are being dropped", 5*time.Second)
	wholeLines := func() int {
		b, _ := os.ReadFile(access)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Fatalf("the access log ends mid-line: %q", b[max(0, len(b)-80):])
		}
		n := 0
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var a accessLine
			if err := json.Unmarshal([]byte(l), &a); err != nil || a.End == "" {
				t.Fatalf("a broken access log line %q: %v", l, err)
			}
			n++
		}
		return n
	}
	before := wholeLines()
	os.Remove(filler)
	for range 20 {
		testenv.Greeting(front)
	}
	within(t, 5*time.Second, "lines written again", func() error {
		if n := wholeLines(); n < before+20 {
			return fmt.Errorf("%d lines, %d before the space was freed", n, before)
		}
		return nil
	})
	m.WaitLog(t, "access log lines are written again", 5*time.Second)
	t.Logf("%d whole lines before the space was freed", before)
}
