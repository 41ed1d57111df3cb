package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"g6/internal/testenv"
)

// ipCmd runs `ip args...` and fails the test on an error.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := testenv.Run(t, 10*time.Second, "ip", args...); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestTransparent: in namespaces the test makes (a client network and a
// backend network on two veth pairs, g6 between them), with docs/configuration.md's
// routing lines, transparent = true connects from the client's own
// address: the backend sees 10.99.1.2, an address g6's host does not have,
// and the answer comes back through g6.
func TestTransparent(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("transparent mode needs root (CAP_NET_ADMIN) to make namespaces and use IP_TRANSPARENT")
	}
	testenv.Netns(t, nil)
	tag := fmt.Sprint(os.Getpid())
	cli, back := "g6t-cli-"+tag, "g6t-back-"+tag
	for _, ns := range []string{cli, back} {
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	for _, args := range [][]string{
		{"link", "add", "vc", "type", "veth", "peer", "name", "vcc"},
		{"link", "add", "vg", "type", "veth", "peer", "name", "vgb"},
		{"link", "set", "vcc", "netns", cli},
		{"link", "set", "vgb", "netns", back},
		{"addr", "add", "10.99.1.1/24", "dev", "vc"},
		{"link", "set", "vc", "up"},
		{"addr", "add", "10.99.2.1/24", "dev", "vg"},
		{"link", "set", "vg", "up"},
		{"-n", cli, "addr", "add", "10.99.1.2/24", "dev", "vcc"},
		{"-n", cli, "link", "set", "vcc", "up"},
		{"-n", cli, "link", "set", "lo", "up"},
		{"-n", back, "addr", "add", "10.99.2.2/24", "dev", "vgb"},
		{"-n", back, "link", "set", "vgb", "up"},
		{"-n", back, "link", "set", "lo", "up"},
		{"-n", back, "route", "add", "default", "via", "10.99.2.1"},
		// docs/configuration.md's lines: what comes back from the backend network is
		// delivered here, to g6's transparent socket, not forwarded.
		{"rule", "add", "iif", "vg", "lookup", "100"},
		{"route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100"},
	} {
		ipCmd(t, args...)
	}
	backend := exec.Command("ip", "netns", "exec", back, testenv.Bin(t, "backend"), "-mode", "whoami", "-listen", "10.99.2.2:9000")
	if err := backend.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Process.Kill(); backend.Wait() })
	testenv.WaitListening(t, "10.99.2.2:9000")

	cfg := `
[[rule]]
id = "tp"
algorithm = "RR"
transparent = true
clients = ["*:*"]
listen = ["10.99.1.1:8000", "10.99.1.1:8001"]
servers = ["10.99.2.2:9000"]
`
	path := testenv.WriteConfig(t, cfg)
	// Without the capability, the config is refused at load, by name.
	if out, err := testenv.Run(t, 10*time.Second, "setpriv", "--bounding-set", "-net_admin,-net_raw", testenv.Bin(t, "g6"), "check", "-c", path); err == nil ||
		!strings.Contains(string(out), `g6.toml:5: rule "tp": server 10.99.2.2:9000: transparent = true needs CAP_NET_ADMIN or CAP_NET_RAW`) {
		t.Fatalf("g6 check without CAP_NET_ADMIN: %v\n%s", err, out)
	}
	testenv.StartMaster(t, path, []string{"-w", "1"})
	out, err := testenv.Run(t, 10*time.Second, "ip", "netns", "exec", cli, "bash", "-c",
		"exec 3<>/dev/tcp/10.99.1.1/8000; head -1 <&3; echo ping >&3; head -1 <&3")
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(lines) != 2 || !strings.HasPrefix(lines[0], "you are 10.99.1.2:") || lines[1] != "ping" {
		t.Fatalf("the client at 10.99.1.2 through g6: %v\n%s", err, out)
	}
}
