package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"g6/internal/testenv"
	"g6/ipc"
)

// accelSetup: one echo rule with accel = "sockmap" and an admin port.
func accelSetup(t *testing.T, workers, extra string) (m *testenv.Master, adminAddr, front, back string) {
	back = testenv.Addr(t)
	testenv.Backend(t, "echo", back)
	adminAddr, front = testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[global]
accel = "sockmap"
%s

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "echo"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]
`, extra, adminAddr, front, back)
	m = testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", workers})
	return
}

// sessionsJSON is show sessions json.
func sessionsJSON(t *testing.T, adminAddr string) []ipc.Session {
	t.Helper()
	var doc struct{ Sessions []ipc.Session }
	if err := json.Unmarshal([]byte(adminSend(t, adminAddr, "show sessions json\n")), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Sessions
}

// TestAccelPairsKeepAlive: a session that comes back after an answer is
// paired (show sessions says sockmap), keeps echoing in order, counts its
// bytes, and its access-log line has them all.
func TestAccelPairsKeepAlive(t *testing.T) {
	m, adminAddr, front, _ := accelSetup(t, "1", "")
	if !strings.Contains(m.Log(), "keep-alive sessions are forwarded in the kernel") {
		t.Fatalf("the master did not say it pairs:\n%s", m.Log())
	}
	h := holdEcho(t, front)
	h.check(t, "first") // the answer
	h.check(t, "second") // the client comes back: paired
	ss := sessionsJSON(t, adminAddr)
	if len(ss) != 1 || ss[0].Path != "sockmap" {
		t.Fatalf("sessions %+v, want one on the sockmap path", ss)
	}
	start := time.Now()
	for i := range 100 {
		h.check(t, fmt.Sprintf("round %d", i))
	}
	t.Logf("100 rounds in %v", time.Since(start))
	ss = sessionsJSON(t, adminAddr)
	want := int64(0)
	for _, s := range []string{"first", "second"} {
		want += int64(len("still here " + s + "\n"))
	}
	for i := range 100 {
		want += int64(len(fmt.Sprintf("still here round %d\n", i)))
	}
	if ss[0].FromClient != want || ss[0].FromServer != want {
		t.Fatalf("show sessions counts %d/%d bytes, want %d both ways", ss[0].FromClient, ss[0].FromServer, want)
	}
	if !strings.Contains(adminSend(t, adminAddr, "show sessions\n"), "| sockmap") {
		t.Fatal("show sessions text does not say sockmap")
	}
}

// TestAccelHalfClose512MiB: 512 MiB one way through a paired session,
// the client half-closing at once: the echo backend returns every byte,
// in order, and the reply's FIN comes after them.
func TestAccelHalfClose512MiB(t *testing.T) {
	_, adminAddr, front, _ := accelSetup(t, "1", "")
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Minute))
	h := &heldEcho{c: c}
	h.check(t, "one")
	h.check(t, "two")
	if ss := sessionsJSON(t, adminAddr); len(ss) != 1 || ss[0].Path != "sockmap" {
		t.Fatalf("not paired: %+v", ss)
	}
	const size = 512 << 20
	sent := sha256.New()
	go func() {
		r := rand.New(rand.NewPCG(1, 2))
		buf := make([]byte, 1<<20)
		for range size >> 20 {
			for i := 0; i < len(buf); i += 8 {
				v := r.Uint64()
				for j := range 8 {
					buf[i+j] = byte(v >> (8 * j))
				}
			}
			sent.Write(buf)
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	got := sha256.New()
	n, err := io.Copy(got, c)
	if err != nil || n != size {
		t.Fatalf("echoed %d bytes of %d, %v", n, size, err)
	}
	if fmt.Sprintf("%x", got.Sum(nil)) != fmt.Sprintf("%x", sent.Sum(nil)) {
		t.Fatal("the echoed bytes differ")
	}
}
