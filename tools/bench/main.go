// Command bench is `make bench`: g6 against HAProxy (mode tcp), nginx
// stream and a direct connection, with the same backends, the
// same load and the same worker count, interleaved over rounds. It prints
// medians with ratios and rewrites BENCHMARKS.md.
//
// Method (../shared/BENCH-METHOD.md): the load generators (wrk, iperf3
// client, and this process's idle opener and latency probe) run on cpu1;
// each proxy and the backends (one nginx worker with three ports, one
// iperf3 server) run on cpu0, so a proxy's cost shows as CPU taken from the
// backend. By default the two sides are in two network namespaces joined
// by veth (topology.go); -topology loopback puts everything on 127.0.0.1.
// A fresh proxy is started for every measurement, after a preflight that
// checks requests succeed and spread over the backends.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

type options struct {
	rounds   int
	duration time.Duration
	idle     int
	workers  int
	rate     int
	out      string
	g6       string
	only     string
	variants bool
	topology string
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 5, "rounds (targets interleaved, order rotated each round)")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "duration of each wrk and iperf3 run")
	flag.IntVar(&o.idle, "idle", 9000, "idle connections (2 fds each in the proxy: the 20,000-fd limit allows ~9,400)")
	flag.IntVar(&o.workers, "w", 1, "workers/threads for every proxy")
	flag.IntVar(&o.rate, "rate", 1000, "requests/s of the latency probe")
	flag.StringVar(&o.out, "o", "BENCHMARKS.md", "report file")
	flag.StringVar(&o.g6, "g6", "bin/g6", "g6 binary")
	flag.BoolVar(&o.variants, "variants", true, "also run g6's variants (g6-splice, g6-copy, g6-quickack); off to measure an older build")
	flag.StringVar(&o.only, "only", "", "comma-separated workloads to run (short,keepalive,bulk1,bulk4,idle,tls-short,tls-keepalive,tls-bulk1,tls-idle,udp-rr,udp-bulk,udp-idle,latency)")
	sink := flag.String(sinkFlag, "", "internal: run as the TLS bulk stream's backend on this address")
	flag.StringVar(&o.topology, "topology", "netns", `"netns": load generators and proxies in two network namespaces over veth, receive steered to each side's core (needs root); "loopback": all on 127.0.0.1`)
	flag.Parse()
	if *sink != "" {
		runSink(*sink)
	}
	switch {
	case o.topology == "netns" && os.Getenv(insideEnv) == "":
		os.Exit(inNetns())
	case o.topology == "netns":
		useNetns()
	case o.topology != "loopback":
		fmt.Fprintln(os.Stderr, "bench: -topology is netns or loopback")
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "bench: topology %s\n", topo.name)
	if missing := missingTools(); len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "bench: missing %s; install with:\n  apt-get update && apt-get install -y haproxy nginx libnginx-mod-stream wrk iperf3 dnsperf dnsmasq-base bind9-dnsutils\n", strings.Join(missing, ", "))
		os.Exit(1)
	}
	raiseFileLimit()
	pinSelf(1)
	res, err := run(&o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	report := res.markdown(&o)
	fmt.Print(report)
	if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func missingTools() []string {
	var out []string
	for _, t := range []string{"haproxy", "nginx", "wrk", "iperf3", "taskset", "dnsperf", "dnsmasq", "dig"} {
		if _, err := exec.LookPath(t); err != nil {
			out = append(out, t)
		}
	}
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_stream_module.so"); err != nil {
		out = append(out, "libnginx-mod-stream")
	}
	return out
}

func raiseFileLimit() {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
		rl.Cur = rl.Max
		unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
	}
}

// pinSelf keeps this process (the idle opener and latency probe) on cpu:
// every thread the runtime has started so far (threads started later
// inherit the mask), with one P to match.
func pinSelf(cpu int) {
	var set unix.CPUSet
	set.Set(cpu)
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			unix.SchedSetaffinity(tid, &set)
		}
	}
	runtime.GOMAXPROCS(1)
}
