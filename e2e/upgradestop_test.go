package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

// alive reports whether pid is a live process (a zombie is not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := bytes.Fields(b[bytes.LastIndexByte(b, ')')+1:])
	return len(f) > 0 && string(f[0]) != "Z"
}

// TestTermDuringUpgradeStopsAll: a TERM that arrives while the new master
// of a USR2 is still starting stops both masters; none is left serving.
func TestTermDuringUpgradeStopsAll(t *testing.T) {
	back, front := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", back)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, rrConfig(front, back)), []string{"-w", "2"})
	m.Cmd.Process.Signal(syscall.SIGUSR2)
	m.WaitLog(t, "upgrade started", 5*time.Second)
	m.Cmd.Process.Signal(syscall.SIGTERM)
	if code := m.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("the first master exited %d", code)
	}
	mm := regexp.MustCompile(`upgrade started" .*new_master=(\d+)`).FindStringSubmatch(m.Log())
	if mm == nil {
		t.Fatalf("no new master in the log:\n%s", m.Log())
	}
	child, _ := strconv.Atoi(mm[1])
	for i := 0; alive(child); i++ {
		if i == 100 {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("the new master %d still runs after the first one stopped", child)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c, err := net.DialTimeout("tcp", front, time.Second); err == nil {
		c.Close()
		t.Fatal("something still accepts on the listen address")
	}
}
