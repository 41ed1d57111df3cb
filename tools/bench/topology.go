package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// The topology a run uses (BENCH-METHOD.md). "netns" (the default): the
// load generators (wrk, iperf3's client, this process's idle opener and
// latency probe) in one network namespace, every proxy and the backends
// in another, joined by a veth pair whose receive side is steered by RPS
// to that side's core, so the proxy's core pays for receiving its own
// packets as behind a NIC; rounds then vary by about ±3%. "loopback":
// everything on 127.0.0.1, where the sender's core does the receiving
// TCP work and one round varies by ±25%.

const (
	nsGen   = "g6bench-gen"
	nsProxy = "g6bench-prx"
	vethGen = "g6b-gen"
	vethPrx = "g6b-prx"
	ipGen   = "10.77.0.2"
	ipProxy = "10.77.0.1"
)

// topo is the run's topology; proxyNS is "" on loopback.
var topo = struct {
	name    string
	proxyNS string
	proxyIP string // where the load reaches the proxies (and direct, the backends)
}{name: "loopback", proxyIP: "127.0.0.1"}

// insideEnv marks the copy of this process that runs in nsGen.
const insideEnv = "G6_BENCH_INSIDE"

// inNetns runs this program again inside nsGen, with the namespaces made
// and taken down around it, and returns its exit code. Inside, useNetns
// points the targets at the proxy namespace.
func inNetns() int {
	if err := makeNamespaces(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: netns topology:", err, "(run as root, or -topology loopback)")
		dropNamespaces()
		return 1
	}
	defer dropNamespaces()
	self, err := os.Executable() // not /proc/self/exe: that would be ip's
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", nsGen, self}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), insideEnv+"=1")
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

func useNetns() {
	topo.name, topo.proxyNS, topo.proxyIP = "netns", nsProxy, ipProxy
}

// makeNamespaces builds the two namespaces and the veth pair; receive
// processing on the proxy's side runs on cpu0 (its core), the generator's
// on cpu1.
func makeNamespaces() error {
	dropNamespaces()
	steps := [][]string{
		{"netns", "add", nsGen},
		{"netns", "add", nsProxy},
		{"link", "add", vethGen, "type", "veth", "peer", "name", vethPrx},
		{"link", "set", vethGen, "netns", nsGen},
		{"link", "set", vethPrx, "netns", nsProxy},
		{"-n", nsGen, "addr", "add", ipGen + "/24", "dev", vethGen},
		{"-n", nsProxy, "addr", "add", ipProxy + "/24", "dev", vethPrx},
		{"-n", nsGen, "link", "set", "lo", "up"},
		{"-n", nsProxy, "link", "set", "lo", "up"},
		{"-n", nsGen, "link", "set", vethGen, "up"},
		{"-n", nsProxy, "link", "set", vethPrx, "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v %s", strings.Join(s, " "), err, out)
		}
	}
	for _, c := range []struct{ ns, dev, mask string }{{nsProxy, vethPrx, "1"}, {nsGen, vethGen, "2"}} {
		script := fmt.Sprintf("echo %s > /sys/class/net/%s/queues/rx-0/rps_cpus && sysctl -qw net.ipv4.ip_local_port_range='1024 65000' net.ipv4.tcp_tw_reuse=1 net.core.somaxconn=65535",
			c.mask, c.dev)
		if out, err := exec.Command("ip", "netns", "exec", c.ns, "sh", "-c", script).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v %s", c.ns, err, out)
		}
	}
	return nil
}

func dropNamespaces() {
	for _, ns := range []string{nsGen, nsProxy} {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

// nextPort hands out ports in the proxy namespace, where nothing else
// listens: asking the kernel from here would ask the wrong namespace.
var nextPort = 20000

// topologyText says in the report which topology ran.
func topologyText() string {
	if topo.proxyNS == "" {
		return "loopback (everything on 127.0.0.1; one round varies by about ±25%)"
	}
	return "netns (load generators in one network namespace on cpu1, proxies and backends in another on cpu0, a veth pair between them with receive steered by RPS to each side's core; rounds vary by about ±3%)"
}
