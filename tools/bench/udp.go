package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// UDP workloads (issue #36): nginx stream (listen … udp) and g6 (a
// protocol = "udp" rule) in front of one dnsmasq and the iperf3 server;
// HAProxy carries no UDP.
//
//	udp-rr    dnsperf (100 clients, 500 queries in flight): a 64-byte query,
//	          a 128-byte answer (four A records); nginx proxy_responses 1,
//	          g6 responses = 1; queries/s
//	udp-bulk  iperf3 -u -b 0 -l 1400 (its control connection through a TCP
//	          rule on the same IP:PORT): Gbit/s received
//	udp-idle  9,000 sessions, each one query answered, then idle: RSS per session
var udpWorkloads = []string{"udp-rr", "udp-bulk", "udp-idle"}

// udpKinds are the targets of the UDP workloads.
var udpKinds = []string{"direct", "nginx", "g6"}

func isUDP(w string) bool { return strings.HasPrefix(w, "udp-") }

// dnsName is the name dnsperf asks: long enough for a 64-byte query (with
// dnsperf's EDNS record), with four addresses for a 128-byte answer.
const dnsName = "bench-0123456789abcdef01234567.test"

// startDNS starts dnsmasq on cpu0, answering dnsName from a hosts file,
// on the proxies' loopback and (netns) the veth address for direct; it
// returns the two addresses and the dnsperf query file.
func startDNS(dir string) (p *proc, back, direct, queries string, err error) {
	port := freePort()
	hosts := filepath.Join(dir, "dns-hosts")
	var lines strings.Builder
	for i := 1; i <= 4; i++ {
		fmt.Fprintf(&lines, "10.99.0.%d %s\n", i, dnsName)
	}
	queries = filepath.Join(dir, "dns-queries")
	if err := os.WriteFile(hosts, []byte(lines.String()), 0o644); err != nil {
		return nil, "", "", "", err
	}
	if err := os.WriteFile(queries, []byte(strings.Repeat(dnsName+" A\n", 1000)), 0o644); err != nil {
		return nil, "", "", "", err
	}
	args := []string{"dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces",
		"--listen-address=127.0.0.1", "--port=" + strconv.Itoa(port), "--addn-hosts=" + hosts, "--local=/#/",
		"--user=root", "--pid-file=", "--cache-size=1000", "--log-facility=-"}
	if topo.proxyNS != "" {
		args = append(args, "--listen-address="+topo.proxyIP)
	}
	p, err = start(dir, "backend-dnsmasq", 0, args...)
	if err != nil {
		return nil, "", "", "", err
	}
	back = fmt.Sprintf("127.0.0.1:%d", port)
	direct = fmt.Sprintf("%s:%d", topo.proxyIP, port)
	return p, back, direct, queries, nil
}

// udpPreflight: a query through the target's UDP frontends must come back
// with the four addresses.
func udpPreflight(t *target) error {
	for _, addr := range []string{t.dns, t.udpIdle} {
		var last string
		for range 50 {
			host, port, _ := net.SplitHostPort(addr)
			out, _ := exec.Command("dig", "@"+host, "-p", port, "+short", "+time=1", "+tries=1", dnsName, "A").Output()
			if last = string(out); strings.Count(last, "10.99.0.") == 4 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if strings.Count(last, "10.99.0.") != 4 {
			return fmt.Errorf("preflight %s: dig through %s answered %q", t.name, addr, last)
		}
	}
	return nil
}

var (
	qpsRE  = regexp.MustCompile(`Queries per second:\s+([\d.]+)`)
	lostRE = regexp.MustCompile(`Queries lost:\s+(\d+)`)
)

// runDNSPerf returns queries/s and queries lost through addr.
func runDNSPerf(addr, queries string, d time.Duration) (float64, int, error) {
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("taskset", "-c", "1", "dnsperf", "-s", host, "-p", port, "-d", queries,
		"-l", strconv.Itoa(int(d.Seconds())), "-c", "100", "-q", "500", "-t", "2").CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("dnsperf: %v\n%s", err, out)
	}
	m := qpsRE.FindSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("dnsperf output without Queries per second:\n%s", out)
	}
	qps, _ := strconv.ParseFloat(string(m[1]), 64)
	lost := 0
	if l := lostRE.FindSubmatch(out); l != nil {
		lost, _ = strconv.Atoi(string(l[1]))
	}
	return qps, lost, nil
}

// runUDPBulk returns the Gbit/s iperf3 -u received through addr, sending
// as fast as it can, and the share lost.
func runUDPBulk(addr string, d time.Duration) (float64, float64, error) {
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("taskset", "-c", "1", "iperf3", "-c", host, "-p", port, "-u", "-b", "0", "-l", "1400",
		"-t", strconv.Itoa(int(d.Seconds())), "-J").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("iperf3 -u: %v\n%s", err, out)
	}
	var j struct {
		End struct {
			Sum struct {
				LostPercent float64 `json:"lost_percent"`
			} `json:"sum"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &j); err != nil {
		return 0, 0, fmt.Errorf("iperf3 -u json: %w", err)
	}
	return j.End.SumReceived.BitsPerSecond / 1e9, j.End.Sum.LostPercent, nil
}

// runUDPIdle opens n sessions through the target's idle frontend (one
// query each, answered) and returns the RSS they added.
func runUDPIdle(t *target, n int) (idleResult, error) {
	res := idleResult{n: n, rssBefore: t.proc.rssKiB()}
	query := dnsQuery()
	buf := make([]byte, 2048)
	var conns []net.Conn
	defer func() { closeAll(conns) }()
	for i := 0; i < n; i++ {
		c, err := net.Dial("udp", t.udpIdle)
		if err != nil {
			return res, fmt.Errorf("udp idle: %w", err)
		}
		conns = append(conns, c)
		for try := 0; try < 5; try++ {
			c.Write(query)
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(buf); err == nil {
				res.answered++
				break
			}
		}
	}
	time.Sleep(2 * time.Second)
	res.rssAfter = t.proc.rssKiB()
	return res, nil
}

// dnsQuery is a query for dnsName's A records.
func dnsQuery() []byte {
	q := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, label := range strings.Split(dnsName, ".") {
		q = append(append(q, byte(len(label))), label...)
	}
	return append(q, 0, 0, 1, 0, 1)
}

// nginxUDP is nginx stream's UDP servers for t.
func nginxUDP(t *target, b *backends) string {
	return fmt.Sprintf(`  server { listen %s udp reuseport; proxy_pass %s; proxy_responses 1; proxy_timeout 600s; }
  server { listen %s udp reuseport; proxy_pass %s; proxy_timeout 600s; }
  server { listen %s udp reuseport; proxy_pass %s; proxy_timeout 600s; }
  server { listen %s backlog=4096; proxy_pass %s; proxy_connect_timeout 5s; proxy_timeout 600s; }
`, t.dns, b.dns, t.udpIdle, b.dns, t.udpBulk, b.bulk, t.udpBulk, b.bulk)
}

// g6UDP is g6's UDP rules for t (and the TCP rule for iperf3's control
// connection on the bulk address).
func g6UDP(t *target, b *backends) string {
	return fmt.Sprintf(`
[[rule]]
id = "dns"
protocol = "udp"
algorithm = "RR"
responses = 1
clients = ["*:*"]
listen = [{ address = %q, timeout = "10m" }]
servers = [%q]

[[rule]]
id = "udp-idle"
protocol = "udp"
algorithm = "RR"
clients = ["*:*"]
listen = [{ address = %q, timeout = "10m" }]
servers = [%q]

[[rule]]
id = "udp-bulk"
protocol = "udp"
algorithm = "RR"
clients = ["*:*"]
listen = [{ address = %q, timeout = "10m" }]
servers = [%q]

[[rule]]
id = "udp-bulk-control"
algorithm = "RR"
clients = ["*:*"]
listen = [{ address = %q, timeout = "10m" }]
servers = [%q]
`, t.dns, b.dns, t.udpIdle, b.dns, t.udpBulk, b.bulk, t.udpBulk, b.bulk)
}

// measureUDP runs one UDP workload against t.
func measureUDP(o *options, b *backends, t *target, kind, w string, res *results) error {
	switch w {
	case "udp-rr":
		qps, lost, err := runDNSPerf(t.dns, b.queries, o.duration)
		if err != nil {
			return err
		}
		res.add(kind, w+"_qps", qps)
		if lost > 0 {
			res.notes = append(res.notes, fmt.Sprintf("%s udp-rr: dnsperf lost %d queries", kind, lost))
		}
		fmt.Fprintf(os.Stderr, "%9.0f queries/s, %d lost", qps, lost)
	case "udp-bulk":
		g, lost, err := runUDPBulk(t.udpBulk, o.duration)
		if err != nil {
			return err
		}
		res.add(kind, w+"_gbps", g)
		fmt.Fprintf(os.Stderr, "%6.2f Gbit/s received (%.1f%% lost)", g, lost)
	case "udp-idle":
		r, err := runUDPIdle(t, o.idle)
		if err != nil {
			return err
		}
		per := float64(r.rssAfter-r.rssBefore) / float64(r.n)
		res.add(kind, w+"_kib_per_session", per)
		if r.answered != r.n {
			res.notes = append(res.notes, fmt.Sprintf("%s udp-idle: %d of %d sessions answered", kind, r.answered, r.n))
		}
		fmt.Fprintf(os.Stderr, "%5.2f KiB/session (RSS %.0f MiB), %d/%d answered", per, float64(r.rssAfter)/1024, r.answered, r.n)
	}
	return nil
}
