package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

// TestSystemdNotify: READY at start, RELOADING then READY on HUP, MAINPID
// from the new master after USR2, STOPPING on TERM.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	back, front := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", back)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, rrConfig(front, back)), []string{"-w", "1"})
	expect := func(want string) {
		t.Helper()
		buf := make([]byte, 512)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("waiting for %q: %v", want, err)
			}
			if strings.Contains(string(buf[:n]), want) {
				return
			}
		}
	}
	expect("READY=1")
	m.Cmd.Process.Signal(syscall.SIGHUP)
	expect("RELOADING=1")
	expect("READY=1")
	old := m.Pid()
	syscall.Kill(old, syscall.SIGUSR2)
	expect("MAINPID=")
	waitPidChange(t, m, old)
	syscall.Kill(m.Pid(), syscall.SIGTERM)
	expect("STOPPING=1")
}
