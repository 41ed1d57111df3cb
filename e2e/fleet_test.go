package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

// fleetNode is one g6 master of a test fleet.
type fleetNode struct {
	m            *testenv.Master
	admin, front string
}

// startFleet starts n masters (-w 2) with rule "web" over servers, all on
// etcd under one prefix.
func startFleet(t *testing.T, etcd *testenv.Etcd, n int, alg string, servers []string) []fleetNode {
	prefix := "/g6/" + strings.ReplaceAll(t.Name(), "/", "_")
	var nodes []fleetNode
	for i := 1; i <= n; i++ {
		nd := fleetNode{admin: testenv.Addr(t), front: testenv.Addr(t)}
		cfg := fmt.Sprintf(`
[cluster]
etcd = [%q]
prefix = %q
node = "n%d"

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "web"
algorithm = %q
clients = ["127.0.0.*:*"]
listen = [%q]
servers = %s
`, etcd.URL, prefix, i, nd.admin, alg, nd.front, serverList(servers))
		nd.m = testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
		nd.m.WaitLog(t, "cluster store reachable", 10*time.Second)
		nodes = append(nodes, nd)
	}
	return nodes
}

// within retries check until it passes or d is over, and says how long
// that took.
func within(t *testing.T, d time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	end := start.Add(d)
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func noneTo(t *testing.T, front, server string, n int) func() error {
	return func() error {
		if got := countGreetings(t, front, n); got[server] != 0 {
			return fmt.Errorf("%v", got)
		}
		return nil
	}
}

func someTo(t *testing.T, front, server string, n int) func() error {
	return func() error {
		if got := countGreetings(t, front, n); got[server] == 0 {
			return fmt.Errorf("%v", got)
		}
		return nil
	}
}

func TestFleetSharesRuntimeChanges(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := backends(t, 3)
	nodes := startFleet(t, etcd, 3, "RR", srv[:2])
	must(t, nodes[0].admin, "disable 127.0.0.1 "+portOf(srv[0]), "web 127.0.0.1 "+portOf(srv[0])+" disabled")
	for i, nd := range nodes[1:] {
		within(t, time.Second, fmt.Sprintf("node %d after disable on node 1", i+2), noneTo(t, nd.front, srv[0], 10))
	}
	must(t, nodes[1].admin, "add server web "+srv[2], "web 127.0.0.1 "+portOf(srv[2])+" added")
	for _, i := range []int{0, 2} {
		within(t, time.Second, fmt.Sprintf("node %d after add on node 2", i+1), someTo(t, nodes[i].front, srv[2], 10))
	}
	if out := adminSend(t, nodes[0].admin, "show servers json\n"); !strings.Contains(out, `"source": "fleet"`) {
		t.Fatalf("node 1 does not say the added server came from the fleet:\n%s", out)
	}
	if out := adminSend(t, nodes[1].admin, "show servers json\n"); !strings.Contains(out, `"source": "admin"`) {
		t.Fatalf("node 2 does not say the added server came from its admin:\n%s", out)
	}
	must(t, nodes[2].admin, "enable 127.0.0.1 "+portOf(srv[0]), "web 127.0.0.1 "+portOf(srv[0])+" enabled")
	for i, nd := range nodes {
		within(t, time.Second, fmt.Sprintf("node %d after enable on node 3", i+1), someTo(t, nd.front, srv[0], 12))
	}
	if out, err := etcd.Ctl("get", "--prefix", "--keys-only", "/g6/"+t.Name()+"/servers/"); err != nil || !strings.Contains(out, "/servers/web/"+srv[2]) {
		t.Fatalf("the added server is not in etcd: %q %v", out, err)
	}
}

func TestFleetStoreDown(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := backends(t, 2)
	nodes := startFleet(t, etcd, 2, "RR", srv)
	must(t, nodes[0].admin, "disable 127.0.0.1 "+portOf(srv[1]), "web 127.0.0.1 "+portOf(srv[1])+" disabled")
	within(t, time.Second, "node 2 after the disable", noneTo(t, nodes[1].front, srv[1], 6))
	etcd.Stop()
	for _, nd := range nodes {
		nd.m.WaitLog(t, "cluster store unreachable", 15*time.Second)
		// Serving goes on, with the last known state.
		if got := countGreetings(t, nd.front, 10); got[srv[0]] != 10 {
			t.Fatalf("with etcd down: %v", got)
		}
	}
	must(t, nodes[0].admin, "enable 127.0.0.1 "+portOf(srv[1]), "error: cluster store unavailable")
	must(t, nodes[0].admin, "add server web 127.0.0.1:1", "error: cluster store unavailable")
	etcd.Start()
	// A change made straight in etcd while the nodes were cut off: the
	// disable is gone.
	if _, err := etcd.Ctl("del", "--prefix", "/g6/"+t.Name()+"/servers/"); err != nil {
		t.Fatal(err)
	}
	for i, nd := range nodes {
		within(t, 15*time.Second, fmt.Sprintf("node %d after etcd came back", i+1), someTo(t, nd.front, srv[1], 6))
	}
	must(t, nodes[1].admin, "disable 127.0.0.1 "+portOf(srv[0]), "web 127.0.0.1 "+portOf(srv[0])+" disabled")
	within(t, time.Second, "node 1 after a disable on node 2", noneTo(t, nodes[0].front, srv[0], 6))
}

// TestFleetNodes: show nodes on any node lists the fleet; a killed node
// drops out once its lease runs out.
func TestFleetNodes(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := backends(t, 1)
	nodes := startFleet(t, etcd, 3, "RR", srv)
	within(t, 5*time.Second, "show nodes lists 3", func() error {
		out := adminSend(t, nodes[1].admin, "show nodes\n")
		for _, n := range []string{"n1 ", "n2 ", "n3 "} {
			if !strings.Contains(out, "\n"+n) {
				return fmt.Errorf("%q", out)
			}
		}
		if !strings.Contains(out, "this node") || strings.Count(out, "this node") != 1 {
			return fmt.Errorf("which node answered? %q", out)
		}
		return nil
	})
	if out := adminSend(t, nodes[0].admin, "show nodes json\n"); !strings.Contains(out, `"node": "n3"`) || !strings.Contains(out, `"config_hash"`) {
		t.Fatalf("show nodes json: %s", out)
	}
	// The fleet view of health: all 3 nodes report what they can use.
	within(t, 5*time.Second, "show servers says 3/3 up", func() error {
		if out := adminSend(t, nodes[1].admin, "show servers\n"); !strings.Contains(out, "up on 3/3 nodes") {
			return fmt.Errorf("%q", out)
		}
		return nil
	})
	must(t, nodes[0].admin, "disable 127.0.0.1 "+portOf(srv[0]), "web 127.0.0.1 "+portOf(srv[0])+" disabled")
	within(t, 5*time.Second, "show servers says 0/3 up", func() error {
		if out := adminSend(t, nodes[1].admin, "show servers json\n"); !strings.Contains(out, `"fleet_up": 0`) && !strings.Contains(out, `"fleet_nodes": 3`) {
			return fmt.Errorf("%q", out)
		}
		if out := adminSend(t, nodes[1].admin, "show servers\n"); !strings.Contains(out, "up on 0/3 nodes") {
			return fmt.Errorf("%q", out)
		}
		return nil
	})
	start := time.Now()
	nodes[2].m.Cmd.Process.Kill()
	within(t, 15*time.Second, "the killed node drops out", func() error {
		if out := adminSend(t, nodes[0].admin, "show nodes\n"); strings.Contains(out, "\nn3 ") {
			return fmt.Errorf("%q", out)
		}
		return nil
	})
	t.Logf("killed node gone from show nodes after %v", time.Since(start).Round(100*time.Millisecond))
}

// TestFleetHashSameEverywhere: HS sends a client IP to the same server on
// every node, and still does after a server is added on one node.
func TestFleetHashSameEverywhere(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := backends(t, 4)
	nodes := startFleet(t, etcd, 3, "HS", srv[:3])
	homes := func() map[string]string {
		out := map[string]string{}
		for ip := 10; ip <= 29; ip++ {
			src := fmt.Sprintf("127.0.0.%d", ip)
			for i, nd := range nodes {
				c, g, err := testenv.Hold(nd.front, src)
				if err != nil {
					t.Fatalf("%s via node %d: %v", src, i+1, err)
				}
				c.Close()
				if prev, ok := out[src]; ok && prev != g {
					t.Fatalf("%s went to %q on one node and %q on node %d", src, prev, g, i+1)
				}
				out[src] = g
			}
		}
		return out
	}
	before := homes()
	must(t, nodes[1].admin, "add server web "+srv[3], "web 127.0.0.1 "+portOf(srv[3])+" added")
	time.Sleep(time.Second) // every node has applied it (the fleet's 1 s)
	after := homes()
	moved := 0
	for ip, g := range after {
		if g != before[ip] {
			moved++
			if g != "hello from "+srv[3] {
				t.Fatalf("%s moved from %q to %q, not to the added server", ip, before[ip], g)
			}
		}
	}
	t.Logf("%d of 20 client IPs moved to the added server", moved)
}

// TestFleetPushConfig: nodes started with --etcd take the pushed config,
// refuse a broken one (show nodes says so) and take a good one within 2 s.
func TestFleetPushConfig(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := backends(t, 2)
	admin, front := testenv.Addr(t), testenv.Addr(t)
	prefix := "/g6/push"
	cfgText := func(servers []string) string {
		return fmt.Sprintf("[admin]\nlisten = [%q]\nclients = [\"127.0.0.1:*\"]\n\n[[rule]]\nid = \"web\"\nalgorithm = \"RR\"\nclients = [\"127.0.0.*:*\"]\nlisten = [%q]\nservers = %s\n",
			admin, front, serverList(servers))
	}
	push := func(text string) (string, error) {
		out, err := testenv.Run(t, 30*time.Second, testenv.Bin(t, "g6"), "push", "-c", testenv.WriteConfig(t, text), "--etcd", etcd.URL, "--prefix", prefix)
		return string(out), err
	}
	if out, err := push(cfgText(srv[:1])); err != nil || !strings.Contains(out, "pushed to /g6/push/config") {
		t.Fatalf("push: %s %v", out, err)
	}
	if out, err := push("[[rule]]\nid = \"web\"\nalgorithm = \"XX\"\n"); err == nil || !strings.Contains(out, "not pushed") {
		t.Fatalf("a broken config was pushed: %s", out)
	}
	m := testenv.StartMasterArgs(t, []string{"--etcd", etcd.URL, "--prefix", prefix, "--node", "p1", "-w", "2"})
	m.WaitLog(t, "cluster store reachable", 10*time.Second)
	if got := countGreetings(t, front, 6); got[srv[0]] != 6 {
		t.Fatalf("with the pushed config: %v", got)
	}
	// A config that g6 push would refuse, put straight into etcd: refused
	// by the node, which keeps serving and says why.
	if _, err := etcd.Ctl("put", prefix+"/config", "[[rule]]\nid = \"web\"\nalgorithm = \"XX\"\n"); err != nil {
		t.Fatal(err)
	}
	within(t, 3*time.Second, "show nodes shows the refused config", func() error {
		if out := adminSend(t, admin, "show nodes\n"); !strings.Contains(out, "refused a config") {
			return fmt.Errorf("%q", out)
		}
		return nil
	})
	if got := countGreetings(t, front, 6); got[srv[0]] != 6 {
		t.Fatalf("after a refused config: %v", got)
	}
	start := time.Now()
	if out, err := push(cfgText(srv)); err != nil {
		t.Fatalf("push: %s %v", out, err)
	}
	within(t, 2*time.Second, "the good config applied", someTo(t, front, srv[1], 6))
	t.Logf("pushed config serving after %v", time.Since(start).Round(10*time.Millisecond))
}

// cutter is a TCP relay between g6 and etcd whose connections a test can
// cut at will, and which can refuse for a while (an etcd outage as g6 sees
// it, without restarting etcd).
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	refuse bool
	delay  time.Duration // replies from the target are held this long
}

func newCutter(t *testing.T, target string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); c.cut(false) })
	go c.serve()
	return c
}

func (c *cutter) serve() {
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		refuse := c.refuse
		c.mu.Unlock()
		if refuse {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", c.target)
		if err != nil {
			in.Close()
			continue
		}
		c.mu.Lock()
		c.conns = append(c.conns, in, out)
		c.mu.Unlock()
		go func() { io.Copy(out, in); out.Close() }()
		go func() { c.replies(in, out); in.Close() }()
	}
}

// replies copies what the target sends back, each chunk held for the
// delay at the time it arrived (a constant latency, not one that adds up).
func (c *cutter) replies(to, from net.Conn) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		for {
			b := make([]byte, 32<<10)
			n, err := from.Read(b)
			if n > 0 {
				c.mu.Lock()
				d := c.delay
				c.mu.Unlock()
				q <- chunk{b[:n], time.Now().Add(d)}
			}
			if err != nil {
				return
			}
		}
	}()
	for ch := range q {
		time.Sleep(time.Until(ch.at))
		if _, err := to.Write(ch.b); err != nil {
			return
		}
	}
}

// setDelay holds the target's replies for d from now on.
func (c *cutter) setDelay(d time.Duration) {
	c.mu.Lock()
	c.delay = d
	c.mu.Unlock()
}

// cut closes every relayed connection; with refuse, new ones are closed
// at once until cut(false).
func (c *cutter) cut(refuse bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.conns {
		x.Close()
	}
	c.conns, c.refuse = nil, refuse
}

// TestFleetNoLeakOverReconnects: 100 cuts of the master's etcd connections
// (and 5 outages long enough to be noticed and resynced) leave the master
// with the goroutines and fds it had.
func TestFleetNoLeakOverReconnects(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	relay := newCutter(t, etcd.Addr)
	srv := backends(t, 1)
	admin, front, metrics := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf("[global]\nmetrics = %q\n\n[cluster]\netcd = [\"http://%s\"]\nprefix = \"/g6/leak\"\nnode = \"l1\"\n\n[admin]\nlisten = [%q]\nclients = [\"127.0.0.1:*\"]\n\n[[rule]]\nid = \"web\"\nalgorithm = \"RR\"\nclients = [\"*:*\"]\nlisten = [%q]\nservers = [%q]\n",
		metrics, relay.ln.Addr(), admin, front, srv[0])
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	m.WaitLog(t, "cluster store reachable", 10*time.Second)
	counts := func() (int, int) {
		fams := scrape(t, metrics)
		return int(sumOf(fams["go_goroutines"], "", "")), int(sumOf(fams["process_open_fds"], "", ""))
	}
	must(t, admin, "disable 127.0.0.1 "+portOf(srv[0]), "web 127.0.0.1 "+portOf(srv[0])+" disabled")
	time.Sleep(3 * time.Second) // settle: the registry, the watches, the first keep-alives
	g0, f0 := counts()
	for i := 0; i < 100; i++ {
		relay.cut(false)
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 5; i++ {
		relay.cut(true)
		m.WaitCount(t, "cluster store unreachable", i+1, 10*time.Second)
		if i == 0 {
			// Changed in etcd while this node is cut off (etcd itself is
			// up): the disable goes away, and must once the node is back.
			if g, err := testenv.Greeting(front); err == nil {
				t.Fatalf("the disabled (only) server served while cut off: %q", g)
			}
			if _, err := etcd.Ctl("del", "--prefix", "/g6/leak/servers/"); err != nil {
				t.Fatal(err)
			}
		}
		relay.cut(false)
		m.WaitCount(t, "cluster store reachable", i+2, 15*time.Second)
	}
	var g1, f1 int
	within(t, 10*time.Second, "goroutines and fds back", func() error {
		g1, f1 = counts()
		if g1 > g0+5 || f1 > f0+3 {
			return fmt.Errorf("goroutines %d → %d, fds %d → %d", g0, g1, f0, f1)
		}
		return nil
	})
	t.Logf("goroutines %d → %d, fds %d → %d over 100 cuts and 5 outages", g0, g1, f0, f1)
	if got := countGreetings(t, front, 3); got[srv[0]] != 3 {
		t.Fatalf("serving after the cuts: %v", got)
	}
}

// TestFleetRefusedBind: a pushed config that validates but cannot be
// applied on a node (a listen address another process holds without
// SO_REUSEPORT) is refused there, the old one keeps serving, and show
// nodes (text and json) says why (issue #32: it said nothing).
func TestFleetRefusedBind(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := backends(t, 1)
	admin, front := testenv.Addr(t), testenv.Addr(t)
	held, err := net.Listen("tcp", "127.0.0.1:0") // no SO_REUSEPORT
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	prefix := "/g6/bind"
	cfgText := func(listen ...string) string {
		return fmt.Sprintf("[admin]\nlisten = [%q]\nclients = [\"127.0.0.1:*\"]\n\n[[rule]]\nid = \"web\"\nalgorithm = \"RR\"\nclients = [\"127.0.0.*:*\"]\nlisten = [%s]\nservers = %s\n",
			admin, quoteList(listen), serverList(srv))
	}
	push := func(text string) {
		t.Helper()
		if out, err := testenv.Run(t, 30*time.Second, testenv.Bin(t, "g6"), "push", "-c", testenv.WriteConfig(t, text), "--etcd", etcd.URL, "--prefix", prefix); err != nil {
			t.Fatalf("push: %s %v", out, err)
		}
	}
	push(cfgText(front))
	m := testenv.StartMasterArgs(t, []string{"--etcd", etcd.URL, "--prefix", prefix, "--node", "b1", "-w", "1"})
	m.WaitLog(t, "cluster store reachable", 10*time.Second)
	push(cfgText(front, held.Addr().String()))
	within(t, 5*time.Second, "show nodes shows the refusal", func() error {
		if out := adminSend(t, admin, "show nodes\n"); !strings.Contains(out, "refused a config") || !strings.Contains(out, "address already in use") {
			return fmt.Errorf("%q", out)
		}
		var doc struct{ Nodes []struct{ Error string } }
		if err := json.Unmarshal([]byte(adminSend(t, admin, "show nodes json\n")), &doc); err != nil || len(doc.Nodes) != 1 || !strings.Contains(doc.Nodes[0].Error, "address already in use") {
			return fmt.Errorf("show nodes json: %v %+v", err, doc)
		}
		return nil
	})
	if got := countGreetings(t, front, 3); got[srv[0]] != 3 {
		t.Fatalf("after the refused config: %v", got)
	}
}

// TestSlowStoreDoesNotStallSupervision: while etcd's replies take 1.5 s
// (a relay holds them) an admin change waits on its transaction; meanwhile
// show servers answers and a killed worker is replaced, both before the
// change returns (issue #32: the pool's lock was held across the
// transaction, and the master's snapshot and its exit handling waited
// behind it). show workers and show stats read no store; show servers and
// show nodes read the fleet's registry, so they take the store's time.
func TestSlowStoreDoesNotStallSupervision(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	relay := newCutter(t, etcd.Addr)
	srv := backends(t, 2)
	admin, front := testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf("[cluster]\netcd = [\"http://%s\"]\nprefix = \"/g6/slow\"\nnode = \"s1\"\n\n[admin]\nlisten = [%q]\nclients = [\"127.0.0.1:*\"]\n\n[[rule]]\nid = \"web\"\nalgorithm = \"RR\"\nclients = [\"*:*\"]\nlisten = [%q]\nservers = %s\n",
		relay.ln.Addr(), admin, front, serverList(srv))
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	m.WaitLog(t, "cluster store reachable", 10*time.Second)
	before := m.Workers(t)
	relay.setDelay(1500 * time.Millisecond)
	start := time.Now()
	disabled := make(chan string, 1)
	go func() { disabled <- adminSend(t, admin, "disable 127.0.0.1 "+portOf(srv[1])+"\n") }()
	time.Sleep(100 * time.Millisecond) // the change is in its transaction
	shown := make(chan string, 1)
	go func() { shown <- adminSend(t, admin, "show stats\nshow workers\n") }()
	syscall.Kill(before[0], syscall.SIGKILL)
	var events []string
	respawned := false
	for len(events) < 3 {
		select {
		case r := <-disabled:
			events = append(events, "change returned")
			t.Logf("the change returned %q after %v", strings.TrimSpace(r), time.Since(start).Round(time.Millisecond))
			disabled = nil
		case out := <-shown:
			if !strings.Contains(out, "connections:") || !strings.Contains(out, "SLOT") {
				t.Errorf("show stats, show workers: %q", out)
			}
			events = append(events, "show answered")
			shown = nil
		case <-time.After(20 * time.Millisecond):
			if after := m.Workers(t); !respawned && len(after) == 2 && after[0] != before[0] && after[1] != before[0] {
				respawned = true
				events = append(events, "worker replaced")
			}
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("events so far: %v", events)
		}
	}
	if events[2] != "change returned" {
		t.Fatalf("order: %v; show and the respawn must not wait for the store", events)
	}
	if time.Since(start) < time.Second {
		t.Fatalf("the change returned before the store's slow answer: %v (nothing waited on it)", events)
	}
}
