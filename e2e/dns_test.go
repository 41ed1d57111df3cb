package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"

	"github.com/miekg/dns"
)

// spread makes n connections to front and counts the greeting of each
// ("" for a connection g6 closed without a server).
func spread(t *testing.T, front string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		g, _ := testenv.Greeting(front)
		got[strings.TrimPrefix(g, "hello from ")]++
	}
	return got
}

// servedBy is a check for within: n connections to front reach exactly
// the servers in want (and none is closed unserved), or the error says
// what they reached.
func servedBy(t *testing.T, front string, n int, want ...string) func() error {
	return func() error {
		got := spread(t, front, n)
		if len(got) != len(want) {
			return fmt.Errorf("served by %v, want %v", got, want)
		}
		for _, w := range want {
			if got[w] == 0 {
				return fmt.Errorf("served by %v, want %v", got, want)
			}
		}
		return nil
	}
}

// resolverState is one entry of show resolvers json.
type resolverState struct {
	Entry     string `json:"entry"`
	Error     string `json:"last_error"`
	HeldUntil string `json:"held_until"`
	Answer    []struct {
		Address string  `json:"address"`
		TTL     float64 `json:"ttl_seconds"`
	} `json:"answer"`
}

// showResolvers asks for show resolvers json; every config here has two
// name entries.
func showResolvers(t *testing.T, adminAddr string) []resolverState {
	t.Helper()
	var doc struct {
		Resolvers []resolverState `json:"resolvers"`
	}
	js := adminSend(t, adminAddr, "show resolvers json\n")
	if err := json.Unmarshal([]byte(js), &doc); err != nil || len(doc.Resolvers) != 2 {
		t.Fatalf("show resolvers json: %v\n%s", err, js)
	}
	return doc.Resolvers
}

// TestDNSNames runs g6 against a real dnsmasq: a name that does not
// resolve at start, A records that change under held sessions, a reload
// and an upgrade while the DNS server is away, the hold and the drop, the
// way back, and AAAA.
func TestDNSNames(t *testing.T) {
	d := testenv.StartDNS(t)
	port := testenv.FreePort(t)
	var backs []string
	for _, ip := range []string{"127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"} {
		backs = append(backs, fmt.Sprintf("%s:%d", ip, port))
	}
	testenv.Backend(t, "greet", backs...)
	six := fmt.Sprintf("[::1]:%d", testenv.FreePort(t))
	testenv.Backend(t, "greet", six)
	adminAddr, front, front6, metrics := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	path := testenv.WriteConfig(t, fmt.Sprintf(`
[global]
resolvers = [%q]
resolve_interval = "1s"
resolve_hold = "4s"
metrics = %q

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "web"
algorithm = "RR"
clients = ["127.0.0.*:*"]
listen = [%q]
servers = ["web.test:%d"]

[[rule]]
id = "six"
algorithm = "RR"
clients = ["127.0.0.*:*"]
listen = [%q]
servers = ["six.test:%s"]
`, d.Addr, metrics, adminAddr, front, port, front6, portOf(six)))
	// Nothing resolves yet: g6 starts all the same and refuses web's clients.
	m := testenv.StartMaster(t, path, []string{"-w", "2"})
	m.WaitLog(t, "name does not resolve", 5*time.Second)
	if got := spread(t, front, 3); got[""] != 3 {
		t.Fatalf("with no address: %v, want every connection closed", got)
	}
	d.SetHosts("127.0.0.11 web.test", "127.0.0.12 web.test", "127.0.0.13 web.test", "::1 six.test")
	took := within(t, 4*time.Second, "web.test's three addresses", servedBy(t, front, 9, backs[:3]...))
	t.Logf("first addresses served %s after the name appeared", took.Round(time.Millisecond))
	if g, err := testenv.Greeting(front6); err != nil || g != "hello from "+six {
		t.Fatalf("AAAA: %q, %v", g, err)
	}
	if rs := showResolvers(t, adminAddr); rs[1].Error != "" || rs[1].HeldUntil != "" || len(rs[1].Answer) != 3 || rs[1].Answer[0].TTL != 1 {
		t.Fatalf("show resolvers json, web.test resolved: %+v", rs[1])
	}
	out := adminSend(t, adminAddr, "show servers\n")
	if want := fmt.Sprintf("web.test:%d → %s", port, backs[0]); !strings.Contains(out, want) || !strings.Contains(out, "dns") {
		t.Fatalf("show servers lacks %q:\n%s", want, out)
	}

	// .11 leaves, .14 comes: a session held on .11 goes on, new ones avoid it.
	var held []string
	conns, by := holdAll(t, front, 6)
	for i, s := range by {
		if s == backs[0] {
			held = append(held, s)
			defer conns[i].Close()
		}
	}
	if len(held) == 0 {
		t.Fatalf("no session on %s among %v", backs[0], by)
	}
	d.SetHosts("127.0.0.12 web.test", "127.0.0.13 web.test", "127.0.0.14 web.test", "::1 six.test")
	took = within(t, 3*time.Second, "the new answer", servedBy(t, front, 9, backs[1:]...))
	t.Logf("new answer served %s after the records changed (TTL 1 s, interval 1 s)", took.Round(time.Millisecond))
	if got := spread(t, front, 30); got[backs[0]] != 0 || len(got) != 3 {
		t.Fatalf("after the change: %v", got)
	}
	for i, s := range by {
		if s == backs[0] && closedWithin(conns[i], 200*time.Millisecond) {
			t.Fatal("a session to the address that left was closed")
		}
	}
	out = adminSend(t, adminAddr, "show servers\n")
	if i := strings.Index(out, backs[0]); i < 0 || !strings.HasPrefix(strings.TrimLeft(out[i+len(backs[0]):], " "), "removed") {
		t.Fatalf("the address that left is not listed as removed while its session lasts:\n%s", out)
	}

	// The DNS server goes away; a reload meanwhile keeps the last answer.
	d.Stop()
	m.WaitLog(t, "name lookup failed; its last addresses are kept", 4*time.Second)
	if err := syscall.Kill(m.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	m.WaitLog(t, "reloaded", 10*time.Second)
	if got := spread(t, front, 9); len(got) != 3 || got[""] != 0 {
		t.Fatalf("after a reload with DNS away, within the hold: %v", got)
	}
	// And an upgrade: the new master starts from the handed-over answers,
	// its own first lookup failing.
	old := m.Pid()
	syscall.Kill(old, syscall.SIGUSR2)
	m.WaitCount(t, "upgrade complete", 1, 20*time.Second)
	waitPidChange(t, m, old)
	if got := spread(t, front, 9); len(got) != 3 || got[""] != 0 {
		t.Fatalf("after an upgrade with DNS away: %v", got)
	}
	m.WaitCount(t, "name lookup failed; its last addresses are kept", 3, 4*time.Second) // web and six, then web again in the new master
	rs := showResolvers(t, adminAddr)
	// The new master has not resolved yet: the answer shown is the one
	// handed over, with no TTL known.
	if r := rs[1]; r.Entry != fmt.Sprintf("web.test:%d", port) || r.Error == "" || r.HeldUntil == "" || len(r.Answer) != 3 || r.Answer[0].TTL != 0 {
		t.Fatalf("web.test while DNS is away: %+v", r)
	}
	web := fmt.Sprintf("web.test:%d", port)
	if fams := scrape(t, metrics); sumOf(fams["g6_resolver_addresses"], "entry", web) != 3 || sumOf(fams["g6_resolver_failing"], "entry", web) != 1 {
		t.Fatalf("metrics while held: addresses %v, failing %v", sumOf(fams["g6_resolver_addresses"], "entry", web), sumOf(fams["g6_resolver_failing"], "entry", web))
	}
	if txt := adminSend(t, adminAddr, "show resolvers\n"); !strings.Contains(txt, "addresses held") {
		t.Fatalf("show resolvers:\n%s", txt)
	}
	m.WaitLog(t, "longer than resolve_hold", 10*time.Second)
	within(t, 2*time.Second, "connections refused once the hold is over", servedBy(t, front, 3, ""))

	// Back: within one interval of the first good answer.
	d.Start()
	took = within(t, 4*time.Second, "servers back with the DNS server", servedBy(t, front, 9, backs[1:]...))
	t.Logf("served again %s after the DNS server came back", took.Round(time.Millisecond))
	m.WaitLog(t, "name resolves again", 2*time.Second)
	if fams := scrape(t, metrics); sumOf(fams["g6_resolver_addresses"], "entry", web) != 3 || sumOf(fams["g6_resolver_failing"], "entry", web) != 0 {
		t.Fatalf("metrics when resolving again: addresses %v, failing %v", sumOf(fams["g6_resolver_addresses"], "entry", web), sumOf(fams["g6_resolver_failing"], "entry", web))
	}
	testenv.CheckCounts(t, m.Pid())
}

// TestDNSSRV: SRV weights are the servers' weights (1:3 over 400
// connections), and a higher priority's target takes connections only when
// those of the lowest are down. g6 check --resolve prints the same.
func TestDNSSRV(t *testing.T) {
	d := testenv.StartDNS(t)
	b1, b2, b3 := "127.0.0.21:"+portOf(testenv.Addr(t)), "127.0.0.22:"+portOf(testenv.Addr(t)), "127.0.0.23:"+portOf(testenv.Addr(t))
	testenv.Backend(t, "greet", b1, b2, b3)
	d.SetHosts("127.0.0.21 t1.test", "127.0.0.22 t2.test", "127.0.0.23 t3.test")
	d.SetSRV("_app._tcp.svc.test,t1.test,"+portOf(b1)+",10,1", "_app._tcp.svc.test,t2.test,"+portOf(b2)+",10,3",
		"_app._tcp.svc.test,t3.test,"+portOf(b3)+",20,1")
	adminAddr, front := testenv.Addr(t), testenv.Addr(t)
	path := testenv.WriteConfig(t, fmt.Sprintf(`
[global]
resolvers = [%q]
resolve_interval = "1s"
moratorium = "1s"

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "app"
algorithm = "RR"
clients = ["127.0.0.*:*"]
listen = [%q]
servers = [{ srv = "_app._tcp.svc.test", max_connections = 50 }]
`, d.Addr, adminAddr, front))
	out, err := testenv.Run(t, 10*time.Second, testenv.Bin(t, "g6"), "check", "-c", path, "--resolve")
	if want := fmt.Sprintf("_app._tcp.svc.test: %s weight 1, %s weight 3, %s weight 1 backup", b1, b2, b3); err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("g6 check --resolve: %v\n%s\nwant %s", err, out, want)
	}
	m := testenv.StartMaster(t, path, []string{"-w", "2"})
	within(t, 4*time.Second, "the SRV targets", servedBy(t, front, 8, b1, b2))
	got := spread(t, front, 400)
	if got[b3] != 0 || got[b1] < 100-28 || got[b1] > 100+28 || got[b2] < 300-28 || got[b2] > 300+28 {
		t.Fatalf("weights 1:3 over 400: %v", got)
	}
	t.Logf("400 connections: %v", got)
	if out := adminSend(t, adminAddr, "show servers\n"); !strings.Contains(out, b3+" (backup)") || !strings.Contains(out, "3 (dns)") {
		t.Fatalf("show servers:\n%s", out)
	}
	for _, b := range []string{b1, b2} {
		h, p, _ := strings.Cut(b, ":")
		must(t, adminAddr, "disable "+h+" "+p, "app "+h+" "+p+" disabled")
	}
	if got := spread(t, front, 10); got[b3] != 10 {
		t.Fatalf("with priority 10 down: %v, want all on the priority-20 target", got)
	}
	testenv.CheckCounts(t, m.Pid())
	// A name that does not exist is reported, exit 1, and is no config error.
	d.SetSRV()
	out, err = testenv.Run(t, 10*time.Second, testenv.Bin(t, "g6"), "check", "-c", path, "--resolve")
	if err == nil || !strings.Contains(string(out), "ok (1 rules)") || !strings.Contains(string(out), "_app._tcp.svc.test: does not resolve") {
		t.Fatalf("g6 check --resolve with no records: %v\n%s", err, out)
	}
}

// TestDNSOneTypeRefused: a DNS server answers A and refuses AAAA (issue
// #32: g6 took the name for one that does not resolve and closed every
// client). The name resolves to its A addresses, every client is served,
// show resolvers says which query fails, the master logs it once, and
// g6 check --resolve succeeds saying the same.
func TestDNSOneTypeRefused(t *testing.T) {
	port := testenv.FreePort(t)
	backs := []string{fmt.Sprintf("127.0.0.11:%d", port), fmt.Sprintf("127.0.0.12:%d", port)}
	testenv.Backend(t, "greet", backs...)
	d := testenv.StartRefusingDNS(t, map[string][]string{"web.test": {"127.0.0.11", "127.0.0.12"}}, dns.TypeAAAA)
	adminAddr, front := testenv.Addr(t), testenv.Addr(t)
	path := testenv.WriteConfig(t, fmt.Sprintf(`
[global]
resolvers = [%q]
resolve_interval = "1s"

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "web"
algorithm = "RR"
clients = ["127.0.0.*:*"]
listen = [%q]
servers = ["web.test:%d"]
`, d.Addr, adminAddr, front, port))
	m := testenv.StartMaster(t, path, []string{"-w", "1"})
	within(t, 5*time.Second, "web.test's A addresses", servedBy(t, front, 100, backs...))
	var doc struct {
		Resolvers []struct {
			Partial string `json:"failing_queries"`
			Error   string `json:"last_error"`
		} `json:"resolvers"`
	}
	if err := json.Unmarshal([]byte(adminSend(t, adminAddr, "show resolvers json\n")), &doc); err != nil || len(doc.Resolvers) != 1 {
		t.Fatalf("show resolvers json: %v %+v", err, doc)
	}
	if r := doc.Resolvers[0]; r.Error != "" || !strings.Contains(r.Partial, "AAAA") || !strings.Contains(r.Partial, "REFUSED") {
		t.Errorf("show resolvers json: %+v, want the AAAA query failing and no error", r)
	}
	if out := adminSend(t, adminAddr, "show resolvers\n"); !strings.Contains(out, "ok, but failing") {
		t.Errorf("show resolvers:\n%s", out)
	}
	time.Sleep(2500 * time.Millisecond) // two more lookups, the same failure
	if n := strings.Count(m.Log(), "some of the name's queries fail"); n != 1 {
		t.Errorf("the failing query logged %d times, want once", n)
	}
	out, err := testenv.Run(t, 20*time.Second, testenv.Bin(t, "g6"), "check", "--resolve", "-c", path)
	if err != nil || !strings.Contains(string(out), backs[0]) || !strings.Contains(string(out), "AAAA") {
		t.Errorf("g6 check --resolve: %v\n%s", err, out)
	}
}
