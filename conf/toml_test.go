package conf

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

const minimal = `
[[rule]]
id = "r"
algorithm = "RR"
clients = ["*:*"]
listen = ["127.0.0.1:8080"]
servers = ["127.0.0.1:9001"]
`

func TestParseTOMLErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unknown global key", "[global]\nworkerz = 2\n" + minimal, `t.toml:2: unknown key "global.workerz"`},
		{"unknown rule key", strings.Replace(minimal, `id = "r"`, "id = \"r\"\nbalance = \"RR\"", 1), `t.toml:4: unknown key "rule.balance"`},
		{"unknown server key", strings.Replace(minimal, `servers = ["127.0.0.1:9001"]`, `servers = [{ address = "127.0.0.1:9001", wieght = 2 }]`, 1), `t.toml:7: rule.servers: unknown key "wieght"`},
		{"wrong type", "[global]\nworkers = \"two\"\n" + minimal, `t.toml:2: global.workers: incompatible types`},
		{"bad duration", "[global]\nmoratorium = \"10 seconds\"\n" + minimal, `t.toml:2: global.moratorium: invalid duration "10 seconds"`},
		{"negative duration", "[global]\ntimeout = -5\n" + minimal, "t.toml:2: global.timeout: duration -5 is negative"},
		{"bad count", "[global]\nmax_ip = \"1.5k\"\n" + minimal, `invalid count "1.5k"`},
		{"duplicate id", minimal + strings.Replace(minimal, "8080", "8081", 1), `t.toml:10: rule "r": duplicate rule id (first at line 2)`},
		{"listen used twice", minimal + strings.Replace(minimal, `"r"`, `"s"`, 1), `t.toml:13: rule "s": listen address 127.0.0.1:8080 is already used by rule "r"`},
		{"server neither address nor name", strings.Replace(minimal, "127.0.0.1:9001", "9001", 1), `t.toml:7: rule "r": server address "9001" is not IP:PORT`},
		{"name with a bad label", strings.Replace(minimal, "127.0.0.1:9001", "db_1.internal:9001", 1), `t.toml:7: rule "r": server "db_1.internal:9001": "db_1.internal": '_' is not a letter, digit or '-'`},
		{"name label ending in -", strings.Replace(minimal, "127.0.0.1:9001", "db-.internal:9001", 1), `a label may not start or end with '-'`},
		{"name with an empty label", strings.Replace(minimal, "127.0.0.1:9001", "db..internal:9001", 1), `has an empty label`},
		{"name with port 0", strings.Replace(minimal, "127.0.0.1:9001", "db.internal:0", 1), `server "db.internal:0": port must be 1-65535`},
		{"name without a port", strings.Replace(minimal, `"127.0.0.1:9001"`, `"db.internal"`, 1), `server address "db.internal" is not IP:PORT`},
		{"name label too long", strings.Replace(minimal, "127.0.0.1:9001", strings.Repeat("a", 64)+".x:1", 1), "label longer than 63"},
		{"name too long", strings.Replace(minimal, "127.0.0.1:9001", strings.Repeat("abcdefghi.", 26)+"x:1", 1), "longer than 253"},
		{"name twice", strings.Replace(minimal, `["127.0.0.1:9001"]`, `["db.internal:1", "DB.internal.:1"]`, 1), `server DB.internal.:1 is listed twice`},
		{"srv not tcp", strings.Replace(minimal, `["127.0.0.1:9001"]`, `[{ srv = "_pg._udp.db.internal" }]`, 1), `t.toml:7: rule "r": srv "_pg._udp.db.internal" must be _SERVICE._tcp.NAME`},
		{"srv without service", strings.Replace(minimal, `["127.0.0.1:9001"]`, `[{ srv = "db.internal" }]`, 1), `must be _SERVICE._tcp.NAME`},
		{"srv bad domain", strings.Replace(minimal, `["127.0.0.1:9001"]`, `[{ srv = "_pg._tcp.db!" }]`, 1), `'!' is not a letter`},
		{"srv and address", strings.Replace(minimal, `["127.0.0.1:9001"]`, `[{ srv = "_pg._tcp.db", address = "127.0.0.1:1" }]`, 1), `has both address and srv`},
		{"srv not a string", strings.Replace(minimal, `["127.0.0.1:9001"]`, `[{ srv = 5 }]`, 1), `srv must be a string`},
		{"name weight over the range", strings.Replace(minimal, `["127.0.0.1:9001"]`, `[{ address = "db.internal:1", weight = 300 }]`, 1), `server db.internal:1: weight must be 0-256`},
		{"bad resolver", "[global]\nresolvers = [\"ns1:53\"]\n" + minimal, `t.toml:2: global: resolver "ns1:53" is not IP or IP:PORT`},
		{"resolve_interval too short", "[global]\nresolve_interval = \"100ms\"\n" + minimal, `t.toml:2: global: resolve_interval must be at least 1s, not 100ms`},
		{"octal ip", strings.Replace(minimal, "127.0.0.1:9001", "010.0.0.1:9001", 1), `t.toml:7: rule "r": server address "010.0.0.1:9001" is not IP:PORT`},
		{"port too big", strings.Replace(minimal, "127.0.0.1:9001", "127.0.0.1:70000", 1), `is not IP:PORT`},
		{"port with a leading zero", strings.Replace(minimal, "127.0.0.1:9001", "127.0.0.1:09001", 1), `t.toml:7: rule "r": server address "127.0.0.1:09001": port must be written without leading zeros`},
		{"unknown top-level key", "# a comment\n\n\ng6_bogus = 1\n" + minimal, `t.toml:4: unknown key "g6_bogus"`},
		{"empty servers", strings.Replace(minimal, `["127.0.0.1:9001"]`, "[]", 1), `t.toml:7: rule "r": no servers to balance over`},
		{"no clients", strings.Replace(minimal, `clients = ["*:*"]`, "", 1), `rule "r": no clients`},
		{"bad pattern", strings.Replace(minimal, `"*:*"`, `"10.0.0.1"`, 1), `t.toml:5: rule "r": client pattern "10.0.0.1": want IP:PORT`},
		{"bad algorithm", strings.Replace(minimal, `"RR"`, `"rr"`, 1), `t.toml:4: rule "r": algorithm "rr" is not one of`},
		{"repeated server", strings.Replace(minimal, `["127.0.0.1:9001"]`, `["127.0.0.1:9001", "127.0.0.1:9001"]`, 1), "listed twice"},
		{"weight over the range", strings.Replace(minimal, `["127.0.0.1:9001"]`, `[{ address = "127.0.0.1:9001", weight = 257 }]`, 1), "weight must be 0-256"},
		{"bad on_down", strings.Replace(minimal, `["127.0.0.1:9001"]`, `[{ address = "127.0.0.1:9001", on_down = "kill" }]`, 1), `on_down must be "shutdown-sessions"`},
		{"isolate_after 0", strings.Replace(minimal, `["127.0.0.1:9001"]`, `[{ address = "127.0.0.1:9001", isolate_after = 0 }]`, 1), `t.toml:7: rule "r": server 127.0.0.1:9001: isolate_after must be 1-1000, not 0`},
		{"isolate_after too big", "[global]\nisolate_after = 5000\n" + minimal, `isolate_after must be 1-1000, not 5000`},
		{"backup not a bool", strings.Replace(minimal, `["127.0.0.1:9001"]`, `[{ address = "127.0.0.1:9001", backup = "yes" }]`, 1), "backup must be true or false"},
		{"hash factor too small", "[global]\nhash_balance_factor = 0.5\n" + minimal, "hash_balance_factor must be above 1"},
		{"max_servers too big", "[global]\nmax_servers = 9999999\n" + minimal, "t.toml:2: global: max_servers must hold the config's 1 servers and be at most 262144, not 9999999"},
		{"max_servers negative", "[global]\nmax_servers = -1\n" + minimal, "max_servers must hold"},
		{"cluster without etcd", "[cluster]\nprefix = \"/g6\"\nnode = \"a\"\n" + minimal, "cluster: etcd must list at least one endpoint"},
		{"cluster bad endpoint", "[cluster]\netcd = [\"127.0.0.1:2379\"]\nprefix = \"/g6\"\n" + minimal, `t.toml:2: cluster: etcd endpoint "127.0.0.1:2379": want http:// or https://`},
		{"cluster endpoint without port", "[cluster]\netcd = [\"http://etcd1\"]\nprefix = \"/g6\"\n" + minimal, "want a host and a port"},
		{"cluster credentials in the url", "[cluster]\netcd = [\"http://u:p@etcd1:2379\"]\nprefix = \"/g6\"\n" + minimal, "credentials go in username/password"},
		{"cluster no prefix", "[cluster]\netcd = [\"http://127.0.0.1:2379\"]\n" + minimal, "prefix \"\": must be set"},
		{"cluster relative prefix", "[cluster]\netcd = [\"http://127.0.0.1:2379\"]\nprefix = \"g6\"\n" + minimal, "t.toml:3: cluster: prefix \"g6\": must start with /"},
		{"cluster bad node", "[cluster]\netcd = [\"http://127.0.0.1:2379\"]\nprefix = \"/g6\"\nnode = \"a/b\"\n" + minimal, "t.toml:4: cluster: node \"a/b\": must be 1-64 printable"},
		{"cluster half a certificate", "[cluster]\netcd = [\"https://127.0.0.1:2379\"]\nprefix = \"/g6\"\ncert_file = \"c.pem\"\n" + minimal, "cert_file and key_file go together"},
		{"cluster unknown key", "[cluster]\netcd = [\"http://127.0.0.1:2379\"]\nprefix = \"/g6\"\nttl = 3\n" + minimal, `t.toml:4: unknown key "cluster.ttl"`},
		{"syntax", "[global\n", "t.toml:2: expected"},
		{"bad splice mode", "[global]\nsplice = \"yes\"\n" + minimal, `t.toml:2: global: splice must be "auto", "always" or "off", not "yes"`},
		{"bad worker steering", "[global]\nworkers = 2\nworker_steering = \"fewest\"\n" + minimal, `t.toml:3: global: worker_steering must be "least" or "hash", not "fewest"`},
		{"bad accel", "[global]\naccel = \"ebpf\"\n" + minimal, `t.toml:2: global: accel must be "sockmap", "off" or "auto", not "ebpf"`},
		{"worker steering not a string", "[global]\nworker_steering = 1\n" + minimal, `t.toml:2`},
		{"bad log level", "[global]\nlog_level = \"loud\"\n" + minimal, `t.toml:2: global: log level "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTOML("t.toml", []byte(tt.text))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, tt.want)
			}
		})
	}
}

// TestIsolateAfter: global → rule → server_defaults → entry; G6's 1 by default.
func TestIsolateAfter(t *testing.T) {
	tests := []struct {
		name, text string
		want       []int
	}{
		{"default", minimal, []int{1}},
		{"global", "[global]\nisolate_after = 3\n" + minimal, []int{3}},
		{"rule over global", "[global]\nisolate_after = 3\n" + strings.Replace(minimal, `id = "r"`, "id = \"r\"\nisolate_after = 5", 1), []int{5}},
		{"server over rule", strings.Replace(strings.Replace(minimal, `id = "r"`, "id = \"r\"\nisolate_after = 5", 1),
			`["127.0.0.1:9001"]`, `[{ address = "127.0.0.1:9001", isolate_after = 2 }, "127.0.0.1:9002"]`, 1), []int{2, 5}},
		{"server_defaults", strings.Replace(minimal, `servers = ["127.0.0.1:9001"]`, "server_defaults = { isolate_after = 4 }\nservers = [\"127.0.0.1:9001\"]", 1), []int{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseTOML("t.toml", []byte(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, s := range cfg.Rules[0].Servers {
				got = append(got, s.IsolateAfter)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("isolate_after %v, want %v", got, tt.want)
			}
		})
	}
}

// TestInheritance: global → list default → address, most specific wins,
// explicit 0 cancels.
func TestInheritance(t *testing.T) {
	cfg, err := ParseTOML("t.toml", []byte(`
[global]
timeout = 30
max_connections = 50
[[rule]]
id = "r"
algorithm = "RR"
client_defaults = { max_ip = 3 }
clients = ["10.0.0.1:*", { pattern = "10.0.0.*:*", max_connections = 5, max_ip = 0 }]
listen_defaults = { timeout = "60s" }
listen = [{ address = "127.0.0.1:8080", timeout = "10s" }, "127.0.0.1:8081", { address = "127.0.0.1:8082", timeout = 0 }]
server_defaults = { max_connections = 100, heartbeat = "1m" }
servers = [{ address = "127.0.0.1:9001", max_connections = 20 }, { address = "127.0.0.1:9002", heartbeat = 0, weight = 3 }]
`))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Rules[0]
	type cl struct{ mc, mip int64 }
	if got := (cl{r.Clients[0].MaxConnections, r.Clients[0].MaxIP}); got != (cl{50, 3}) {
		t.Errorf("client 0 = %+v, want {50 3}", got)
	}
	if got := (cl{r.Clients[1].MaxConnections, r.Clients[1].MaxIP}); got != (cl{5, 0}) {
		t.Errorf("client 1 = %+v, want {5 0}", got)
	}
	for i, want := range []time.Duration{10 * time.Second, 60 * time.Second, 0} {
		if got := r.Listen[i].Timeout.D(); got != want {
			t.Errorf("listen %d timeout %v, want %v", i, got, want)
		}
	}
	s0, s1 := r.Servers[0], r.Servers[1]
	if s0.MaxConnections != 20 || s0.Heartbeat.D() != time.Minute || s0.Weight != 1 {
		t.Errorf("server 0 = %+v", s0)
	}
	if s1.MaxConnections != 100 || s1.Heartbeat != 0 || s1.Weight != 3 {
		t.Errorf("server 1 = %+v", s1)
	}
	if cfg.Global.Moratorium != DefaultMoratorium || cfg.Global.ConnectTimeout != DefaultConnectTimeout ||
		cfg.Global.WorkerSteering != SteerHash || cfg.Global.Accel != AccelOff {
		t.Errorf("defaults not applied: %+v", cfg.Global)
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"192.168.0.*", "192.168.0.255", true},
		{"192.168.*.1", "192.168.11.1", true},
		{"*.1", "10.0.0.1", true},
		{"1*1", "1001", true},
		{"8*", "8080", true},
		{"6?", "65", true},
		{"*", "", true},
		{"*1", "11", true},  // G6 got this wrong: docs/g6-differences.md B22
		{"*1", "101", true}, // and this
		{"*80", "8080", true},
		{"", "1.2.3.4", false}, // G6 matched everything
		{"6?", "6", false},
		{"192.168.0.*", "192.168.1.1", false},
		{"127.0.0.?", "127.0.0.10", false},
	}
	for _, tt := range tests {
		if got := Glob(tt.pattern, []byte(tt.s)); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestIsLegacy(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"admin G 127.0.0.1:* - 127.0.0.1:8600 ;", true},
		{"// c\n( timeout = 5 ) ;", true},
		{"/* x */ r1 RR *:* - 127.0.0.1:1 > 127.0.0.1:2 ;", true},
		{"[global]\nworkers = 1", false},
		{"# comment\n[[rule]]", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsLegacy([]byte(tt.text)); got != tt.want {
			t.Errorf("IsLegacy(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestClusterResolved(t *testing.T) {
	cfg, err := ParseTOML("t.toml", []byte("[cluster]\netcd = [\"http://127.0.0.1:2379\", \"https://etcd2:2379\"]\nprefix = \"/g6/prod/\"\nnode = \"lb1\"\n"+minimal))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster
	if c == nil || len(c.Etcd) != 2 || c.Prefix != "/g6/prod" || c.Node != "lb1" || c.Timeout != DefaultEtcdTimeout {
		t.Fatalf("cluster resolved to %+v", c)
	}
	cfg, err = ParseTOML("t.toml", []byte("[cluster]\netcd = [\"http://127.0.0.1:2379\"]\nprefix = \"/g6\"\n"+minimal))
	if host, _ := os.Hostname(); err != nil || cfg.Cluster.Node != host {
		t.Fatalf("default node %q, want the hostname %q (%v)", cfg.Cluster.Node, host, err)
	}
}

// TestNameEntries: name and SRV entries leave Servers, keep their place
// and options, and WeightSet tells a written weight from the default.
func TestNameEntries(t *testing.T) {
	cfg, err := ParseTOML("t.toml", []byte(`
[global]
resolvers = ["127.0.0.53", "[::1]:5353"]
resolve_interval = "3s"
resolve_hold = 0

[[rule]]
id = "db"
algorithm = "MS"
clients = ["*:*"]
listen = ["127.0.0.1:8080"]
server_defaults = { max_connections = 7 }
servers = [
  "db.internal:5432",
  { srv = "_postgres._tcp.db.internal", max_connections = 100, backup = true },
  "10.0.1.9:5432",
  { address = "Cache-1.example.:6379", weight = 3 },
]
`))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Global
	if len(g.Resolvers) != 2 || g.ResolveInterval != Duration(3*time.Second) || g.ResolveHold != 0 {
		t.Errorf("global: %+v", g)
	}
	r := cfg.Rules[0]
	if len(r.Servers) != 1 || r.Servers[0].Address != "10.0.1.9:5432" {
		t.Fatalf("servers: %+v", r.Servers)
	}
	want := []Name{
		{Entry: "db.internal:5432", Host: "db.internal", Port: 5432, At: 0, Server: Server{MaxConnections: 7, Weight: 1, IsolateAfter: 1}},
		{Entry: "_postgres._tcp.db.internal", Host: "_postgres._tcp.db.internal", SRV: true, At: 0, Server: Server{MaxConnections: 100, Weight: 1, IsolateAfter: 1, Backup: true}},
		{Entry: "Cache-1.example.:6379", Host: "Cache-1.example.", Port: 6379, At: 1, Server: Server{MaxConnections: 7, Weight: 3, IsolateAfter: 1}, WeightSet: true},
	}
	if len(r.Names) != len(want) {
		t.Fatalf("names: %+v", r.Names)
	}
	for i := range want {
		if !reflect.DeepEqual(r.Names[i], want[i]) {
			t.Errorf("name %d:\n got %+v\nwant %+v", i, r.Names[i], want[i])
		}
	}
	if n := cfg.ServerSlots(); n != MinServerSlots {
		t.Errorf("ServerSlots = %d", n)
	}
	if got := cfg.NameEntries(); len(got) != 3 {
		t.Errorf("NameEntries = %+v", got)
	}
}

func TestParseResolver(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"127.0.0.53", "127.0.0.53:53"},
		{"10.0.0.1:5353", "10.0.0.1:5353"},
		{"::1", "[::1]:53"},
		{"[::1]:5353", "[::1]:5353"},
		{"ns1", ""},
		{"10.0.0.1:0", ""},
	} {
		ap, err := ParseResolver(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("%q: no error", tt.in)
			}
			continue
		}
		if err != nil || ap.String() != tt.want {
			t.Errorf("%q = %v, %v; want %s", tt.in, ap, err, tt.want)
		}
	}
}
