package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"g6/internal/testenv"
)

// TestFdLimitBacksOff: a worker at its open-file limit stops polling its
// listeners for a moment instead of spinning on them (206,000 log lines in
// 7 s before), logs each kind of failure at most once a second, and the
// clients that queued meanwhile are served once descriptors are free.
func TestFdLimitBacksOff(t *testing.T) {
	echo, front := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "echo", echo)
	bin := testenv.LimitedBin(t, testenv.Bin(t, "g6"), 64)
	m := testenv.StartMasterBin(t, bin, testenv.WriteConfig(t, rrConfig(front, echo)), []string{"-w", "1"})
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 60; i++ { // more sessions than 64 descriptors allow
		c, err := net.DialTimeout("tcp", front, 2*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		held = append(held, c)
	}
	time.Sleep(2 * time.Second)
	lines := strings.Count(m.Log(), "too many open files")
	if lines == 0 {
		t.Fatal("the worker never ran out of descriptors; the test proves nothing")
	}
	if lines > 10 {
		t.Fatalf("%d log lines about descriptors in 2 s, want at most a few", lines)
	}
	for _, c := range held[:40] {
		c.Close()
	}
	served := 0
	for _, c := range held[40:] { // some of these waited in the accept queue
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("late\n")); err == nil {
			buf := make([]byte, 5)
			if n, _ := c.Read(buf); n == 5 {
				served++
			}
		}
	}
	if served == 0 {
		t.Fatal("none of the clients that waited was served once descriptors were free")
	}
	t.Logf("%d log lines about descriptors; %d of the last 20 clients served", lines, served)
}

// serverFailures reads a server's failure count from show servers json.
func serverFailures(t *testing.T, adminAddr, server string) int {
	t.Helper()
	var reply struct {
		Servers []struct {
			Address  string
			Failures int
		}
	}
	r := adminSend(t, adminAddr, "show servers json\n")
	if err := json.Unmarshal([]byte(strings.TrimSpace(r)), &reply); err != nil {
		t.Fatalf("show servers json: %v in %q", err, r)
	}
	for _, row := range reply.Servers {
		if row.Address == server {
			return row.Failures
		}
	}
	t.Fatalf("show servers json has no %s: %q", server, r)
	return 0
}

// TestLocalPortsExhaustedNotServerFault: in a namespace with two local
// ports, the third connect to the primary server fails with EADDRNOTAVAIL.
// That is this host's fault: the server is not isolated (no failure
// counted), the session goes to the next server, and once ports are free
// the primary serves again at once.
func TestLocalPortsExhaustedNotServerFault(t *testing.T) {
	testenv.Netns(t, map[string]string{"net/ipv4/ip_local_port_range": "40000 40001"})
	// The namespace is the test's own, so fixed ports are free; the
	// ephemeral range that testenv.Addr draws from has just two.
	s1, s2, adminAddr, f1, f2 := "127.0.0.1:20001", "127.0.0.1:20002", "127.0.0.1:20003", "127.0.0.1:20004", "127.0.0.1:20005"
	testenv.Backend(t, "greet", s1, s2)
	cfg := fmt.Sprintf(`
[global]
moratorium = "30s"

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "ms"
algorithm = "MS"
clients = ["*:*"]
listen = [%q, %q]
servers = [%q, %q]
`, adminAddr, f1, f2, s1, s2)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	var by []string
	for _, front := range []string{f1, f1, f2} { // two ports each way to a front; three to s1
		c, g, err := testenv.Hold(front, "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		by = append(by, strings.TrimPrefix(g, "hello from "))
	}
	if by[2] != s2 {
		t.Fatalf("sessions went to %v; the third should have found no local port for %s", by, s1)
	}
	if !strings.Contains(m.Log(), "connect failed on this host") {
		t.Fatalf("no log line about the local failure:\n%s", m.Log())
	}
	if n := serverFailures(t, adminAddr, s1); n != 0 {
		t.Fatalf("%s has %d failures counted for a local port shortage", s1, n)
	}
}
