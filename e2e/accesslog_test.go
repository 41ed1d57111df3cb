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
	var lines []accessLine
	for i := 0; i < 200; i++ {
		b, _ := os.ReadFile(path)
		lines = lines[:0]
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l == "" {
				continue
			}
			var a accessLine
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
