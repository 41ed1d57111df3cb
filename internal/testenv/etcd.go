package testenv

import (
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Etcd is a real etcd (Debian's etcd-server) on loopback with its own data
// directory, for the fleet tests. Stop and Start take it down and bring it
// back on the same ports and data.
type Etcd struct {
	URL  string // client URL, http://127.0.0.1:PORT
	Addr string // its host:port
	t    testing.TB
	dir  string
	peer string
	cmd  *exec.Cmd
}

// StartEtcd starts an etcd that the test's cleanup stops.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Fatal("testenv: etcd is not installed (apt-get install etcd-server etcd-client; .ci/run does)")
	}
	e := &Etcd{t: t, dir: t.TempDir(), Addr: Addr(t), peer: Addr(t)}
	e.URL = "http://" + e.Addr
	e.Start()
	t.Cleanup(e.Stop)
	return e
}

// Start runs etcd (again) and waits until it answers.
func (e *Etcd) Start() {
	e.t.Helper()
	peerURL := "http://" + e.peer
	e.cmd = exec.Command("etcd", "--name", "t", "--data-dir", e.dir,
		"--listen-client-urls", e.URL, "--advertise-client-urls", e.URL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "t="+peerURL, "--log-level", "error")
	e.cmd.Stdout, e.cmd.Stderr = io.Discard, io.Discard
	if err := e.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	for i := 0; ; i++ {
		if out, err := e.Ctl("endpoint", "health"); err == nil && strings.Contains(out, "is healthy") {
			return
		}
		if i == 100 {
			e.t.Fatalf("testenv: etcd on %s did not become healthy", e.Addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills etcd; Start brings it back with its data.
func (e *Etcd) Stop() {
	if e.cmd != nil && e.cmd.Process != nil {
		e.cmd.Process.Kill()
		e.cmd.Wait()
		e.cmd = nil
	}
}

// Ctl runs etcdctl (API v3) against this etcd.
func (e *Etcd) Ctl(args ...string) (string, error) {
	cmd := exec.Command("etcdctl", append([]string{"--endpoints", e.URL, "--command-timeout", "2s"}, args...)...)
	cmd.Env = append(cmd.Environ(), "ETCDCTL_API=3")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("etcdctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Revision is the store's current revision (for tests that compare).
func (e *Etcd) Revision() int64 {
	out, err := e.Ctl("endpoint", "status", "--write-out", "fields")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, `"Revision" : `) {
			n, _ := strconv.ParseInt(strings.TrimPrefix(l, `"Revision" : `), 10, 64)
			return n
		}
	}
	e.t.Fatalf("no revision in %q", out)
	return 0
}
