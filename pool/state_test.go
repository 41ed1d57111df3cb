package pool

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"g6/conf"
	"g6/shared"
)

func TestParseState(t *testing.T) {
	tests := []struct {
		name, text, want string // want: "" = ok, else a part of the error
	}{
		{"empty", `{"version": 1, "servers": []}`, ""},
		{"added", `{"version": 1, "servers": [{"rule": "web", "address": "127.0.0.1:9", "added": true, "weight": 3}]}`, ""},
		{"ipv6 spelled out", `{"version": 1, "servers": [{"rule": "web", "address": "[::1]:80", "removed": true}]}`, ""},
		{"not json", `{"version": 1,`, "unexpected end"},
		{"old version", `{"version": 7, "servers": []}`, "version 7, want 1"},
		{"no rule", `{"version": 1, "servers": [{"address": "127.0.0.1:9"}]}`, "server 1: no rule"},
		{"bad address", `{"version": 1, "servers": [{"rule": "w", "address": "localhost:9"}]}`, `server 1: address "localhost:9" is not IP:PORT`},
		{"weight too big", `{"version": 1, "servers": [{"rule": "w", "address": "127.0.0.1:9", "weight": 300}]}`, "weight 300 is not 0-256"},
		{"negative limit", `{"version": 1, "servers": [{"rule": "w", "address": "127.0.0.1:9", "max_connections": -1}]}`, "negative max_connections"},
		{"resolved", `{"version": 1, "servers": [], "resolved": [{"entry": "db.test:5432", "servers": [{"address": "10.0.0.7:5432"}, {"address": "[::1]:5432", "weight": 3, "backup": true}]}]}`, ""},
		{"resolved, no entry", `{"version": 1, "servers": [], "resolved": [{"servers": []}]}`, "resolved 1: no entry"},
		{"resolved, no address", `{"version": 1, "servers": [], "resolved": [{"entry": "a.test:1", "servers": [{"weight": 2}]}]}`, "a.test:1: server 1 has no address"},
		{"resolved, bad address", `{"version": 1, "servers": [], "resolved": [{"entry": "a.test:1", "servers": [{"address": "a.test:1"}]}]}`, `ParseAddr("a.test")`},
		{"resolved, weight", `{"version": 1, "servers": [], "resolved": [{"entry": "a.test:1", "servers": [{"address": "10.0.0.1:1", "weight": 999}]}]}`, "weight 999 is not 0-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseState([]byte(tt.text))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"version": 1, "servers": [{"rule": "web", "address": "127.0.0.1:9", "added": true, "weight": 3}]}`))
	f.Add([]byte(`{"version": 1, "servers": [{"rule": "w", "address": "[::1]:80", "disabled_until": 9223372036854775807}]}`))
	f.Add([]byte(`{"version": 1, "servers": [], "resolved": [{"entry": "db.test:5432", "servers": [{"address": "[::1]:5432", "weight": 3, "backup": true}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseState(b)
		if err != nil {
			return
		}
		// What parses must save and parse back to the same.
		out, err := EncodeState(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseState(out); err != nil {
			t.Fatalf("saved state does not parse: %v\n%s", err, out)
		}
	})
}

func TestSaveStateAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	w := 5
	st := State{Overrides: []Override{{Rule: "web", Address: "127.0.0.1:9", Added: true, Weight: &w}}}
	if err := SaveState(path, st); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(path)
	if err != nil || len(got.Overrides) != 1 || *got.Overrides[0].Weight != 5 {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
	if err := SaveState(filepath.Join(dir, "no", "such", "dir", "s.json"), st); err == nil || !strings.Contains(err.Error(), "pool: state file") {
		t.Fatalf("save into a missing directory: %v", err)
	}
}

const twoServers = `
[[rule]]
id = "web"
algorithm = "RR"
clients = ["*:*"]
listen = ["127.0.0.1:8080"]
servers = ["127.0.0.1:9001", { address = "127.0.0.1:9002", weight = 2 }]
`

func table(t *testing.T, text string) (*Table, *conf.Config) {
	t.Helper()
	cfg, err := conf.ParseTOML("t.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	region, err := shared.Create(shared.Sizes{Rules: 4, Servers: 8, Clients: 4, IPs: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { region.Close() })
	tb := New(region, State{}, true)
	if err := tb.Publish(cfg, []int{0}); err != nil {
		t.Fatal(err)
	}
	return tb, cfg
}

func summary(tb *Table) string {
	es, _ := tb.Entries()
	var out []string
	for _, e := range es[0] {
		out = append(out, e.Server.Address+" w"+itoa(e.Server.Weight)+" "+e.Origin+"/"+e.WeightFrom)
	}
	return strings.Join(out, ", ")
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestReloadRule pins the rule for runtime changes across a reload: the
// file wins for an entry it changed; otherwise the runtime change stays;
// an added server stays unless the file lists it.
func TestReloadRule(t *testing.T) {
	tb, _ := table(t, twoServers)
	a9 := mustAddr("127.0.0.1:9009")
	if _, err := tb.SetWeight("", mustAddr("127.0.0.1:9001"), 4); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.SetWeight("", mustAddr("127.0.0.1:9002"), 5); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Add("web", a9, nil, nil, false); err != nil {
		t.Fatal(err)
	}
	if got, want := summary(tb), "127.0.0.1:9001 w4 config/admin, 127.0.0.1:9002 w5 config/admin, 127.0.0.1:9009 w1 admin/config"; got != want {
		t.Fatalf("after the changes: %s, want %s", got, want)
	}
	// Reload with 9002's entry changed (weight 2 → 3): the file wins there only.
	cfg2, _ := conf.ParseTOML("t.toml", []byte(strings.Replace(twoServers, "weight = 2", "weight = 3", 1)))
	if err := tb.Publish(cfg2, []int{0}); err != nil {
		t.Fatal(err)
	}
	if got, want := summary(tb), "127.0.0.1:9001 w4 config/admin, 127.0.0.1:9002 w3 config/config, 127.0.0.1:9009 w1 admin/config"; got != want {
		t.Fatalf("after the reload: %s, want %s", got, want)
	}
	// The file now lists the added server: its entry applies.
	cfg3, _ := conf.ParseTOML("t.toml", []byte(strings.Replace(twoServers, `"127.0.0.1:9001", `, `"127.0.0.1:9001", { address = "127.0.0.1:9009", weight = 7 }, `, 1)))
	if err := tb.Publish(cfg3, []int{0}); err != nil {
		t.Fatal(err)
	}
	if got, want := summary(tb), "127.0.0.1:9001 w4 config/admin, 127.0.0.1:9009 w7 config/config, 127.0.0.1:9002 w2 config/config"; got != want {
		t.Fatalf("after the file listed the added server: %s, want %s", got, want)
	}
}

func TestDelAndAddBack(t *testing.T) {
	tb, _ := table(t, twoServers)
	a1 := mustAddr("127.0.0.1:9001")
	if _, err := tb.Del("web", a1); err != nil {
		t.Fatal(err)
	}
	if got := summary(tb); got != "127.0.0.1:9002 w2 config/config" {
		t.Fatalf("after del: %s", got)
	}
	if _, err := tb.Del("web", a1); err == nil || !strings.Contains(err.Error(), `rule "web" has no server 127.0.0.1:9001`) {
		t.Fatalf("second del: %v", err)
	}
	if _, err := tb.Add("nope", a1, nil, nil, false); err == nil || !strings.Contains(err.Error(), `no such rule "nope"`) {
		t.Fatalf("add to an unknown rule: %v", err)
	}
	if _, err := tb.Add("web", a1, nil, nil, false); err != nil {
		t.Fatal(err)
	}
	if got := summary(tb); got != "127.0.0.1:9001 w1 config/config, 127.0.0.1:9002 w2 config/config" {
		t.Fatalf("after adding it back: %s", got)
	}
	if st := tb.State(); len(st.Overrides) != 0 {
		t.Fatalf("overrides left after del and add back: %+v", st.Overrides)
	}
}

func TestNoFreeSlotChangesNothing(t *testing.T) {
	tb, _ := table(t, twoServers)
	var err error
	for p := 1; err == nil && p < 20; p++ {
		_, err = tb.Add("web", mustAddr("10.0.0.1:"+itoa(p)), nil, nil, false)
	}
	if err == nil || !strings.Contains(err.Error(), "raise max_servers") {
		t.Fatalf("adding past the region's slots: %v", err)
	}
	es, _ := tb.Entries()
	if len(es[0]) != 8 {
		t.Fatalf("%d servers after the failed add, want the 8 that fit", len(es[0]))
	}
}

func mustAddr(s string) (ap netip.AddrPort) {
	ap, err := conf.ParseHostPort(s)
	if err != nil {
		panic(err)
	}
	return ap
}
