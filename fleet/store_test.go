package fleet

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"g6/conf"
	"g6/internal/testenv"
	"g6/pool"
	"g6/shared"
)

const oneRule = `
[[rule]]
id = "web"
algorithm = "RR"
clients = ["*:*"]
listen = ["127.0.0.1:1"]
servers = ["127.0.0.1:9001"]
`

// node opens a Store for a fresh table on etcd under prefix.
func node(t *testing.T, etcd *testenv.Etcd, prefix, name string, info NodeInfo) *Store {
	t.Helper()
	cfg, err := conf.ParseTOML("t.toml", []byte(oneRule))
	if err != nil {
		t.Fatal(err)
	}
	region, err := shared.Create(shared.Sizes{Rules: 2, Servers: 8, Clients: 2, IPs: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { region.Close() })
	tb := pool.New(region, pool.State{}, true)
	if err := tb.Publish(cfg, []int{0}); err != nil {
		t.Fatal(err)
	}
	c := &conf.Cluster{Etcd: []string{etcd.URL}, Prefix: prefix, Node: name, Timeout: conf.DefaultEtcdTimeout}
	s, err := Open(c, tb, func() NodeInfo { return info }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for i := 0; ; i++ {
		s.mu.Lock()
		up := s.up
		s.mu.Unlock()
		if up {
			return s
		}
		if i == 100 {
			t.Fatal("store never in sync")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStaleWriteRefused: a node whose idea of a key's revision is older
// than the store's cannot overwrite it.
func TestStaleWriteRefused(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	a := node(t, etcd, "/t/stale", "a", NodeInfo{})
	b := node(t, etcd, "/t/stale", "b", NodeInfo{})
	w := 3
	o := pool.Override{Rule: "web", Address: "127.0.0.1:9001", Weight: &w}
	if err := a.write([]pool.Override{o}); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ { // b's watch has seen a's write
		b.mu.Lock()
		seen := b.revs[b.key(o)] != 0
		b.mu.Unlock()
		if seen {
			break
		}
		if i == 100 {
			t.Fatal("b never saw a's write")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.mu.Lock()
	b.revs[b.key(o)] = 0 // as if b had been cut off before a's write
	b.mu.Unlock()
	w2 := 5
	o.Weight = &w2
	if err := b.write([]pool.Override{o}); err == nil || !strings.Contains(err.Error(), "changed on another node meanwhile") {
		t.Fatalf("stale write: %v", err)
	}
	out, _ := etcd.Ctl("get", "--print-value-only", a.key(o))
	if !strings.Contains(out, `"weight":3`) {
		t.Fatalf("the store holds %q, want a's weight 3", out)
	}
}

// TestNodesMajorityHash: show nodes flags the nodes whose config hash is
// not the one most nodes have, and marks the node asking.
func TestNodesMajorityHash(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	a := node(t, etcd, "/t/nodes", "a", NodeInfo{ConfigHash: "aaa"})
	node(t, etcd, "/t/nodes", "b", NodeInfo{ConfigHash: "aaa"})
	node(t, etcd, "/t/nodes", "c", NodeInfo{ConfigHash: "ccc"})
	var got []NodeInfo
	for i := 0; len(got) < 3; i++ {
		if i == 100 {
			t.Fatalf("nodes: %+v", got)
		}
		got, _ = a.Nodes()
		time.Sleep(20 * time.Millisecond)
	}
	for _, n := range got {
		if n.ConfigDiffers != (n.Node == "c") || n.Self != (n.Node == "a") {
			t.Fatalf("node %s: differs %v self %v", n.Node, n.ConfigDiffers, n.Self)
		}
	}
}
