package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

// pipeFds counts the pipes a process holds: the worker's splice pipes (its
// stdout and stderr are the harness's pipes, counted in every sample alike).
func pipeFds(t *testing.T, pid int) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(l, "pipe:") {
			n++
		}
	}
	return n
}

// echoRandom sends n random bytes through an echo rule on c and checks the
// same bytes come back in order.
func echoRandom(t *testing.T, c net.Conn, n int) {
	t.Helper()
	want := make([]byte, n)
	rand.Read(want)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go c.Write(want)
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("echo of %d bytes: %v", n, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo of %d bytes came back changed", n)
	}
}

// echoQueuedSmall queues 1 MiB as 1 KiB segments while the worker is
// stopped (far more buffers than a pipe has slots, so one splice cannot take
// them all), then checks all of it comes back without another byte sent.
func echoQueuedSmall(t *testing.T, c net.Conn, pid int) {
	t.Helper()
	want := make([]byte, 1<<20)
	rand.Read(want)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	syscall.Kill(pid, syscall.SIGSTOP)
	go writeSmall(c, want, 1<<10)
	time.Sleep(200 * time.Millisecond)
	syscall.Kill(pid, syscall.SIGCONT)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("echo of 1 MiB queued in 1 KiB segments: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("echo of 1 MiB queued in 1 KiB segments came back changed")
	}
}

func writeSmall(c net.Conn, b []byte, size int) {
	for len(b) > 0 {
		if _, err := c.Write(b[:size]); err != nil {
			return
		}
		b = b[size:]
	}
}

// startEchoRule starts one worker with an echo rule in the given splice
// mode and returns the rule's address.
func startEchoRule(t *testing.T, splice string) (string, *testenv.Master) {
	t.Helper()
	echo, front := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "echo", echo)
	cfg := fmt.Sprintf(`
[global]
splice = %q

[[rule]]
id = "e"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]
`, splice, front, echo)
	return front, testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
}

// TestSpliceModes: splice = "auto" splices only a direction that has carried
// 256 KiB, "always" splices a small message, "off" never takes a pipe, and
// the bytes arrive intact in every mode, also when a splice is cut short by
// the pipe's slots.
func TestSpliceModes(t *testing.T) {
	tests := []struct {
		mode                   string
		pipesSmall, pipesAfter bool // worker holds pipes after 1 KiB, after 2 MiB and 64 KiB more
	}{
		{"auto", false, true},
		{"always", true, true},
		{"off", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			front, m := startEchoRule(t, tt.mode)
			pid := m.Workers(t)[0]
			base := pipeFds(t, pid)
			c, err := net.Dial("tcp", front)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			echoRandom(t, c, 1<<10)
			if got := pipeFds(t, pid) > base; got != tt.pipesSmall {
				t.Errorf("after 1 KiB: worker holds splice pipes = %v, want %v", got, tt.pipesSmall)
			}
			// A direction switches when bytes arrive after its 256 KiB, so
			// one more message follows the 2 MiB.
			echoRandom(t, c, 2<<20)
			echoRandom(t, c, 64<<10)
			if got := pipeFds(t, pid) > base; got != tt.pipesAfter {
				t.Errorf("after 2 MiB: worker holds splice pipes = %v, want %v", got, tt.pipesAfter)
			}
			echoQueuedSmall(t, c, pid)
		})
	}
}
