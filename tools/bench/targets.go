package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// backends are shared by every target: one nginx worker answering a 7-byte
// body on three ports (each port a different body, to see the spread) and
// one iperf3 server.
type backends struct {
	web   []string // as the proxies reach them (their loopback)
	bulk  string
	procs []*proc
	// direct: a web port and the bulk port as the load reaches them (the
	// same on loopback; on the proxy namespace's veth address with netns).
	directWeb, directBulk string
	cert                  *benchCert // what every proxy's TLS frontends serve (tls.go)
	sink                  string     // the TLS bulk stream's backend: this program, dropping what it reads
	// dnsmasq for the UDP workloads (udp.go), as the proxies and as the
	// load reach it, and dnsperf's query file; "" unless one runs.
	dns, directDNS, queries string
}

func startBackends(dir string, udp bool) (*backends, error) {
	bulkPort := freePort()
	b := &backends{bulk: fmt.Sprintf("127.0.0.1:%d", bulkPort), directBulk: fmt.Sprintf("%s:%d", topo.proxyIP, bulkPort)}
	var servers strings.Builder
	for i := 1; i <= 3; i++ {
		port := freePort()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		b.web = append(b.web, addr)
		listen := fmt.Sprintf("listen %s backlog=4096;", addr)
		if topo.proxyNS != "" && i == 1 { // direct: the first backend on the veth address too
			listen += fmt.Sprintf(" listen %s:%d backlog=4096;", topo.proxyIP, port)
		}
		if i == 1 {
			b.directWeb = fmt.Sprintf("%s:%d", topo.proxyIP, port)
		}
		fmt.Fprintf(&servers, "  server { %s location / { return 200 \"back-%d\\n\"; } }\n", listen, i)
	}
	conf := fmt.Sprintf(`worker_processes 1;
worker_rlimit_nofile 20000;
pid %s/backend-nginx.pid;
error_log %s/backend-nginx.err warn;
events { worker_connections 20000; }
http {
  access_log off;
  default_type text/plain;
  keepalive_timeout 600s;
  keepalive_requests 10000000;
%s}
`, dir, dir, servers.String())
	path := filepath.Join(dir, "backend-nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	ng, err := start(dir, "backend-nginx", 0, "nginx", "-c", path, "-g", "daemon off;")
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, ng)
	bind := "127.0.0.1"
	if topo.proxyNS != "" {
		bind = "0.0.0.0" // the proxies on loopback, direct on the veth
	}
	ip, err := start(dir, "backend-iperf3", 0, "iperf3", "-s", "-B", bind, "-p", fmt.Sprint(bulkPort))
	if err != nil {
		b.stop()
		return nil, err
	}
	b.procs = append(b.procs, ip)
	if b.cert, err = makeBenchCert(dir); err != nil {
		b.stop()
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		b.stop()
		return nil, err
	}
	b.sink = fmt.Sprintf("127.0.0.1:%d", freePort())
	sink, err := start(dir, "backend-sink", 0, self, "-"+sinkFlag, b.sink)
	if err != nil {
		b.stop()
		return nil, err
	}
	b.procs = append(b.procs, sink)
	if udp {
		dns, back, direct, queries, err := startDNS(dir)
		if err != nil {
			b.stop()
			return nil, err
		}
		b.procs = append(b.procs, dns)
		b.dns, b.directDNS, b.queries = back, direct, queries
	}
	for _, a := range []string{b.directWeb, b.directBulk} {
		if err := waitPort(a, 5e9); err != nil {
			b.stop()
			return nil, fmt.Errorf("backend: %w (%s)", err, ng.logText())
		}
	}
	return b, nil
}

func (b *backends) stop() {
	for _, p := range b.procs {
		p.stop()
	}
}

// target is one thing under test: web and bulk are the addresses the load
// goes to; proc is nil for direct.
type target struct {
	name     string
	web      string
	bulk     string
	proc     *proc
	console  string // g6-console: the console's address
	stopPoll func() // g6-console: stops the page's polling
	// tlsWeb and tlsBulk terminate TLS in front of web and the sink; ""
	// unless a TLS workload runs (tls.go).
	tlsWeb, tlsBulk string
	// dns, udpIdle and udpBulk are UDP frontends (udpBulk a TCP one too,
	// for iperf3's control connection); "" unless a UDP workload runs.
	dns, udpIdle, udpBulk string
}

// targetKinds in report order.
var targetKinds = []string{"direct", "haproxy", "nginx", "g6", "g6-sockmap"}

// startTarget starts a fresh instance of one target on cpu0; withTLS adds
// its TLS frontends.
func startTarget(kind string, o *options, dir string, b *backends, withTLS, withUDP bool) (*target, error) {
	t := &target{name: kind}
	if kind == "direct" {
		t.web, t.bulk = b.directWeb, b.directBulk
		if withUDP {
			t.dns, t.udpIdle, t.udpBulk = b.directDNS, b.directDNS, b.directBulk
		}
		return t, nil
	}
	t.web = fmt.Sprintf("%s:%d", topo.proxyIP, freePort())
	t.bulk = fmt.Sprintf("%s:%d", topo.proxyIP, freePort())
	if withTLS {
		t.tlsWeb = fmt.Sprintf("%s:%d", topo.proxyIP, freePort())
		t.tlsBulk = fmt.Sprintf("%s:%d", topo.proxyIP, freePort())
	}
	if withUDP {
		t.dns = fmt.Sprintf("%s:%d", topo.proxyIP, freePort())
		t.udpIdle = fmt.Sprintf("%s:%d", topo.proxyIP, freePort())
		t.udpBulk = fmt.Sprintf("%s:%d", topo.proxyIP, freePort())
	}
	path := filepath.Join(dir, kind+".conf")
	var args []string
	var conf string
	switch kind {
	case "haproxy":
		conf = haproxyConf(o, t, b)
		args = []string{"haproxy", "-db", "-f", path}
	case "nginx":
		conf = nginxStreamConf(o, dir, t, b)
		args = []string{"nginx", "-c", path, "-g", "daemon off;"}
	case "g6", "g6-splice", "g6-copy", "g6-quickack", "g6-console", "g6-sockmap":
		if kind == "g6-console" {
			t.console = fmt.Sprintf("%s:%d", topo.proxyIP, freePort())
		}
		conf = g6Conf(o, t, b, spliceModes[kind], kind == "g6-quickack", t.console, kind == "g6-sockmap")
		path = filepath.Join(dir, "g6.toml")
		args = []string{o.g6, "master", "-c", path, "-w", fmt.Sprint(o.workers)}
	}
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := start(dir, kind, 0, args...)
	if err != nil {
		return nil, err
	}
	t.proc = p
	for _, a := range []string{t.web, t.bulk, t.tlsWeb, t.tlsBulk, t.udpBulk} {
		if a == "" {
			continue
		}
		if err := waitPort(a, 10e9); err != nil {
			p.stop()
			return nil, fmt.Errorf("%s: %w\n%s", kind, err, p.logText())
		}
	}
	if t.console != "" {
		t.stopPoll = pollConsole(t.console)
	}
	return t, nil
}

func (t *target) stop() {
	if t.stopPoll != nil {
		t.stopPoll()
	}
	t.proc.stop()
}

func haproxyConf(o *options, t *target, b *backends) string {
	var s strings.Builder
	global := ""
	if t.tlsWeb != "" {
		global = haproxyTLSGlobal
	}
	fmt.Fprintf(&s, `global
  nbthread %d
  maxconn 9800
%sdefaults
  mode tcp
  timeout connect 5s
  timeout client 600s
  timeout server 600s
frontend web
  bind %s backlog 4096
  default_backend web
backend web
  balance roundrobin
`, o.workers, global, t.web)
	for i, a := range b.web {
		fmt.Fprintf(&s, "  server s%d %s\n", i+1, a)
	}
	fmt.Fprintf(&s, "frontend bulk\n  bind %s backlog 4096\n  default_backend bulk\nbackend bulk\n  server b %s\n", t.bulk, b.bulk)
	if t.tlsWeb != "" {
		s.WriteString(haproxyTLS(t, b))
	}
	return s.String()
}

func nginxStreamConf(o *options, dir string, t *target, b *backends) string {
	var ups strings.Builder
	for _, a := range b.web {
		fmt.Fprintf(&ups, "    server %s;\n", a)
	}
	tlsServers := ""
	if t.tlsWeb != "" {
		tlsServers = nginxTLS(t, b)
	}
	if t.dns != "" {
		tlsServers += nginxUDP(t, b)
	}
	return fmt.Sprintf(`load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes %d;
worker_rlimit_nofile 20000;
pid %s/nginx-proxy.pid;
error_log %s/nginx-proxy.err warn;
events { worker_connections 20000; }
stream {
  upstream web {
%s  }
  upstream bulk { server %s; }
  server { listen %s backlog=4096; proxy_pass web; proxy_connect_timeout 5s; proxy_timeout 600s; }
  server { listen %s backlog=4096; proxy_pass bulk; proxy_connect_timeout 5s; proxy_timeout 600s; }
%s}
`, o.workers, dir, dir, ups.String(), b.bulk, t.web, t.bulk, tlsServers)
}

// spliceModes is g6's splice setting per target kind.
var spliceModes = map[string]string{"g6": "auto", "g6-splice": "always", "g6-copy": "off", "g6-quickack": "auto", "g6-console": "auto",
	"g6-sockmap": "auto"}

// g6Conf is g6's config for a target; quickack sets quickack = true on the
// web rule's listen address and servers, console the console's address,
// sockmap accel = "sockmap" (each written only when set, so that the
// config also runs older builds for comparison).
func g6Conf(o *options, t *target, b *backends, splice string, quickack bool, console string, sockmap bool) string {
	listenOpts, serverOpts, global := "", "", ""
	if console != "" {
		global = fmt.Sprintf("console = %q\n", console)
	}
	if sockmap {
		global += "accel = \"sockmap\"\n"
	}
	if quickack {
		listenOpts, serverOpts = ", quickack = true", "server_defaults = { quickack = true }\n"
	}
	q := make([]string, len(b.web))
	for i, a := range b.web {
		q[i] = fmt.Sprintf("%q", a)
	}
	tlsRules := ""
	if t.tlsWeb != "" {
		tlsRules = g6TLS(t, b, strings.Join(q, ", "))
	}
	if t.dns != "" {
		tlsRules += g6UDP(t, b)
	}
	return fmt.Sprintf(`[global]
workers = %d
connect_timeout = "5s"
backlog = 4096
log_level = "warn"
splice = %q
%s
[[rule]]
id = "web"
algorithm = "RR"
clients = ["*:*"]
listen = [{ address = %q, timeout = "10m"%s }]
%sservers = [%s]

[[rule]]
id = "bulk"
algorithm = "RR"
clients = ["*:*"]
listen = [{ address = %q, timeout = "10m" }]
servers = [%q]
%s`, o.workers, splice, global, t.web, listenOpts, serverOpts, strings.Join(q, ", "), t.bulk, b.bulk, tlsRules)
}

// pollConsole reads what an open console page reads (console.html's
// refresh: six /api/v1 documents every 2 s) until the returned func is
// called, so g6-console measures g6 with a console being watched.
func pollConsole(addr string) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		c := &http.Client{Timeout: 2 * time.Second}
		for {
			for _, what := range []string{"rules", "servers", "workers", "stats", "history", "actions"} {
				if resp, err := c.Get("http://" + addr + "/api/v1/" + what); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
	return func() { close(stop); <-done }
}
