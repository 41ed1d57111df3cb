package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"g6/internal/testenv"
)

// keepaliveTimers lists, for the established sockets with local or peer
// port port, the keepalive timers `ss -tno` shows ("" for a socket
// without one): one entry per socket, keyed by its local and peer address.
func keepaliveTimers(t *testing.T, port string) map[string]string {
	t.Helper()
	out, err := testenv.Run(t, 10*time.Second, "ss", "-tnoH", "state", "established", "( sport = :"+port+" or dport = :"+port+" )")
	if err != nil {
		t.Fatalf("ss: %v\n%s", err, out)
	}
	timer := regexp.MustCompile(`timer:\(keepalive,([^,]+),`)
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		key := f[2] + " " + f[3]
		got[key] = ""
		if m := timer.FindStringSubmatch(l); m != nil {
			got[key] = m[1]
		}
	}
	return got
}

// TestKeepalive: `ss -tno` shows a keepalive timer with the configured
// idle time on g6's client socket (listen level) and on its server socket
// (server level), and none where keepalive is off.
func TestKeepalive(t *testing.T) {
	back, plainBack := testenv.Addr(t), testenv.Addr(t)
	front, plain := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", back)
	testenv.Backend(t, "greet", plainBack)
	cfg := fmt.Sprintf(`
[[rule]]
id = "ka"
algorithm = "RR"
clients = ["*:*"]
listen = [{ address = %q, keepalive = { idle = "77s", interval = "7s", count = 3 }, quickack = true }]
servers = [{ address = %q, keepalive = { idle = "99s" }, quickack = true }]

[[rule]]
id = "plain"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]
`, front, back, plain, plainBack)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	c, _, err := testenv.Hold(front, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, _, err := testenv.Hold(plain, "")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	clientSide := front + " " + c.LocalAddr().String() // g6's accepted socket: local = the listen address
	ka := keepaliveTimers(t, portOf(front))
	if got := ka[clientSide]; !strings.HasPrefix(got, "1min1") {
		t.Errorf("client side keepalive timer %q, want about 77s (1min17sec); sockets: %v", got, ka)
	}
	var serverTimer string
	for k, v := range keepaliveTimers(t, portOf(back)) {
		if strings.HasSuffix(k, " "+back) { // g6's socket to the backend
			serverTimer = v
		}
	}
	if !strings.HasPrefix(serverTimer, "1min3") {
		t.Errorf("server side keepalive timer %q, want about 99s (1min39sec)", serverTimer)
	}
	// Off: neither of g6's sockets (the one whose local address is the
	// listen address, the one whose peer is the backend) has a timer. The
	// Go client and backend set their own keepalive on theirs.
	checked := 0
	for _, port := range []string{portOf(plain), portOf(plainBack)} {
		for k, v := range keepaliveTimers(t, port) {
			if strings.HasPrefix(k, plain+" ") || strings.HasSuffix(k, " "+plainBack) {
				checked++
				if v != "" {
					t.Errorf("keepalive off, but g6's socket %s has a keepalive timer %q", k, v)
				}
			}
		}
	}
	if checked != 2 {
		t.Errorf("found %d of g6's 2 sockets of the plain session", checked)
	}
}
