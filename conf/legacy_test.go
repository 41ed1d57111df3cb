package conf

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestConvertUpstream: every G6 sample converts to its golden TOML, the
// TOML loads back to the same effective config, and a GBK original gives
// the same result as its UTF-8 copy.
func TestConvertUpstream(t *testing.T) {
	files, _ := filepath.Glob("testdata/upstream/*")
	if len(files) == 0 {
		t.Fatal("no upstream samples")
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			src, _ := os.ReadFile(f)
			if !IsLegacy(src) {
				t.Fatal("not detected as a legacy file")
			}
			cfg, err := ParseLegacy(name, src)
			if err != nil {
				t.Fatal(err)
			}
			out := cfg.TOML(strings.TrimSuffix(name, ".utf8"))
			golden := filepath.Join("testdata/convert", strings.TrimSuffix(name, ".utf8")+".toml")
			if *update && !strings.HasSuffix(name, ".utf8") {
				os.WriteFile(golden, out, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != string(want) {
				t.Fatalf("convert output differs from %s:\n%s", golden, out)
			}
			back, err := ParseTOML(golden, out)
			if err != nil {
				t.Fatalf("converted TOML does not load: %v", err)
			}
			if !sameConfig(cfg, back) {
				t.Fatalf("TOML loads to a different config:\nlegacy %+v\ntoml   %+v", cfg, back)
			}
		})
	}
}

// sameConfig compares effective values (not the source lines).
func sameConfig(a, b *Config) bool {
	return reflect.DeepEqual(noLines(a.Rules), noLines(b.Rules)) && a.Global.Moratorium == b.Global.Moratorium &&
		reflect.DeepEqual(stripLine(a.Admin), stripLine(b.Admin))
}

func noLines(rs []Rule) []Rule {
	out := append([]Rule(nil), rs...)
	for i := range out {
		out[i].Line = 0
	}
	return out
}

func stripLine(a *Admin) *Admin {
	if a == nil {
		return nil
	}
	c := *a
	c.Line = 0
	return &c
}

func legacyRule(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := ParseLegacy("G6.conf", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return cfg
}

const exampleB = `( timeout = 30 , max_connections = 50 ) ;
my_rule9_id RR
    ( max_connections = 100 )
    192.168.0.1:* ( max_connections = 10 )
    192.168.0.2:* ( max_connections = 5 )
    192.168.0.*:* ( max_connections = 1 )
    -
    ( timeout = 60 )
    192.168.0.50:8080 ( timeout = 10 )
    192.168.0.50:8081
    >
    ( max_connections = 100 , heartbeat = 60 )
    192.168.0.101:80 ( max_connections = 20 )
    192.168.0.102:80 ( max_connections = 10 )
    192.168.0.103:80
    192.168.0.104:80
    192.168.0.105:80 ( heartbeat = 30 )
    ;
`

// TestWorkedExamples are docs/g6-differences.md §1.9 with g6's effective values.
func TestWorkedExamples(t *testing.T) {
	s := time.Second
	t.Run("B inheritance", func(t *testing.T) {
		r := legacyRule(t, exampleB).Rules[0]
		var mc []int64
		for _, c := range r.Clients {
			mc = append(mc, c.MaxConnections)
		}
		if !reflect.DeepEqual(mc, []int64{10, 5, 1}) {
			t.Errorf("client max_connections %v, want [10 5 1]", mc)
		}
		if r.Listen[0].Timeout.D() != 10*s || r.Listen[1].Timeout.D() != 60*s {
			t.Errorf("listen timeouts %v %v, want 10s 60s", r.Listen[0].Timeout, r.Listen[1].Timeout)
		}
		var smc []int64
		var hb []time.Duration
		for _, sv := range r.Servers {
			smc = append(smc, sv.MaxConnections)
			hb = append(hb, sv.Heartbeat.D())
		}
		if !reflect.DeepEqual(smc, []int64{20, 10, 100, 100, 100}) {
			t.Errorf("server max_connections %v", smc)
		}
		if !reflect.DeepEqual(hb, []time.Duration{60 * s, 60 * s, 60 * s, 60 * s, 30 * s}) {
			t.Errorf("heartbeats %v (every server has one, so all start down)", hb)
		}
	})
	t.Run("C per-address only", func(t *testing.T) {
		cfg := legacyRule(t, "( timeout = 30 , max_connections = 50 ) ;\n"+
			"r2 MS 10.*:* ( max_ip = 2 ) - 127.0.0.1:9000 > 127.0.0.1:9001 ( max_connections = 3 , heartbeat = 5 ) 127.0.0.1:9002 ;")
		r := cfg.Rules[0]
		// g6: the per-address max_ip applies (G6 ignored it, docs/g6-differences.md B7); global
		// max_connections is a client default (G6 put it on servers).
		if c := r.Clients[0]; c.MaxIP != 2 || c.MaxConnections != 50 {
			t.Errorf("client %+v, want max_ip 2, max_connections 50", c)
		}
		if r.Listen[0].Timeout.D() != 30*s {
			t.Errorf("listen timeout %v, want 30s", r.Listen[0].Timeout)
		}
		if s1 := r.Servers[0]; s1.MaxConnections != 3 || s1.Heartbeat.D() != 5*s {
			t.Errorf("server 9001 %+v, want max 3, heartbeat 5s (starts down)", s1)
		}
		if s2 := r.Servers[1]; s2.MaxConnections != 0 {
			t.Errorf("server 9002 %+v, want no limit", s2)
		}
	})
	t.Run("D order of global groups", func(t *testing.T) {
		cfg := legacyRule(t, `r1 RR 127.0.0.1:* - 127.0.0.1:1 > 127.0.0.1:2 ;
( timeout = 9 , max_connections = 7 ) ;
r2 RR 127.0.0.1:* - 127.0.0.1:3 > 127.0.0.1:4 ;
( timeout = 11 ) ;
r3 RR 127.0.0.1:* - 127.0.0.1:5 > 127.0.0.1:6 ;`)
		want := []struct {
			timeout time.Duration
			max     int64
		}{{0, 0}, {9 * s, 7}, {11 * s, 7}}
		for i, w := range want {
			r := cfg.Rules[i]
			if r.Listen[0].Timeout.D() != w.timeout || r.Clients[0].MaxConnections != w.max {
				t.Errorf("%s: timeout %v, client max %d; want %v, %d", r.ID, r.Listen[0].Timeout, r.Clients[0].MaxConnections, w.timeout, w.max)
			}
		}
	})
}

const okRule = " r1 RR *:* - 127.0.0.1:1 > 127.0.0.1:2 ;"

// TestLegacyInputs is §1.9 E and §1's error cases: text → effective value
// or the error (with its line).
func TestLegacyInputs(t *testing.T) {
	tests := []struct{ text, want string }{
		{"( ) ;" + okRule, "ok"},
		{"( timeout = 60 , ) ;" + okRule, "ok timeout=1m0s"},
		{"( timeout =5 ) ;" + okRule, "ok timeout=5s"},
		{"( timeout = 5 ,max_connections = 1 ) ;" + okRule, "ok timeout=5s"},
		{"( timeout = 60 );" + okRule, "ok timeout=1m0s"},
		{"( timeout = 2m , moratorium = 1h ) ;" + okRule, "ok timeout=2m0s moratorium=1h0m0s"},
		{"( max_connections = 2k , max_ip = 1m ) ;" + okRule, "ok max=2000 max_ip=1000000"},
		{"( timeout = 9 )\n" + okRule, "G6.conf:1: column 1: expected ';' after the global property group"},
		{"/*comment*/" + okRule, "ok"}, // G6 silently dropped the rule (docs/g6-differences.md B24); g6 warns
		{"/* open\n" + okRule, "G6.conf:1: column 1: comment \"/*\" is never closed"},
		{"r1 RR *:* - 127.0.0.1:1 > ;", "G6.conf:1: rule \"r1\": no servers to balance over"},
		{"r1 RR - 127.0.0.1:1 > 127.0.0.1:2 ;", "rule \"r1\" has no client patterns"},
		{"r1 ( timeout = 1 ) RR *:* - 127.0.0.1:1 > 127.0.0.1:2 ;", "G6.conf:1: column 4: rule \"r1\": \"(\" is not an algorithm"},
		{"r1 RR ( moratorium = 3 ) *:* - 127.0.0.1:1 > 127.0.0.1:2 ;", "column 9: property \"moratorium\" is not allowed in the client list"},
		{"r1 rr *:* - 127.0.0.1:1 > 127.0.0.1:2 ;", "(algorithms are upper case)"},
		{"r1 RR *:* - 127.0.0.1:1 > 127.0.0.1:2 ;\nr1 RR *:* - 127.0.0.1:3 > 127.0.0.1:2 ;", "G6.conf:2: rule \"r1\": duplicate rule id (first at line 1)"},
		{"r1 RR *:* - 127.0.0.1:1 > 127.0.0.1:2 ;\nr2 RR *:* -\n 127.0.0.1:1 > 127.0.0.1:2 ;", "G6.conf:3: rule \"r2\": listen address 127.0.0.1:1 is already used by rule \"r1\""},
		{"r1 RR *:* - 127.0.0.1:1 > localhost:80 ;", "G6.conf:1: rule \"r1\": server address \"localhost:80\" is not IP:PORT"},
		{"r1 RR *:* - 127.0.0.1:1 >\n\n 010.0.0.1:80 ;", "G6.conf:3: rule \"r1\": server address \"010.0.0.1:80\" is not IP:PORT"},
		{"r1 RR *:* - 127.0.0.1:70000 > 127.0.0.1:2 ;", "listen address \"127.0.0.1:70000\" is not IP:PORT"},
		{"r1 RR *:* - 127.0.0.1:1 > 127.0.0.1:2 127.0.0.1:2 ;", "ok weight=2"},
		{"( timeout = -1 ) ;" + okRule, "negative values are not allowed"},
		{"( timeout = 5000000h ) ;" + okRule, "is too large"},
		{"( max_ip = 1.5k ) ;" + okRule, "want digits"},
		{"( timeout = 5k ) ;" + okRule, "want digits"},
		{"( heartbeat = 5 ) ;" + okRule, "property \"heartbeat\" is not allowed in a global group"},
		{"( max_connection = 5 ) ;" + okRule, "unknown property \"max_connection\""},
		{"r1 RR *:* - 127.0.0.1:1 > 127.0.0.1:2", "unexpected end of file in rule \"r1\" (missing \";\"?)"},
		{"r1 RR *:* - 127.0.0.1:1 ;", "no '>' and servers"},
		{"admin G 127.0.0.1:* - 127.0.0.1:8600 ;", "ok admin"},
		{"; r1 RR *:* - 127.0.0.1:1 > 127.0.0.1:2 ;", "expected a rule id, found \";\""},
		{"// only a comment\n", "ok"},
		{"", "ok"},
		{"r1 RR *:* - 127.0.0.1:1 > 127.0.0.1:2 ;//c\n", "ok"},
	}
	for _, tt := range tests {
		cfg, err := ParseLegacy("G6.conf", []byte(tt.text))
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = describe(cfg)
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("%q\n  got  %s\n  want %s", tt.text, got, tt.want)
		}
	}
}

func describe(c *Config) string {
	s := "ok"
	if c.Admin != nil {
		s += " admin"
	}
	for _, r := range c.Rules {
		if d := r.Listen[0].Timeout; d > 0 {
			s += " timeout=" + d.String()
		}
		if m := r.Clients[0].MaxConnections; m > 0 {
			s += " max=" + itoa(m)
		}
		if m := r.Clients[0].MaxIP; m > 0 {
			s += " max_ip=" + itoa(m)
		}
		if w := r.Servers[0].Weight; w > 1 {
			s += " weight=" + itoa(int64(w))
		}
	}
	if c.Global.Moratorium != legacyMoratorium {
		s += " moratorium=" + c.Global.Moratorium.String()
	}
	return s
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func FuzzParseLegacy(f *testing.F) {
	files, _ := filepath.Glob("testdata/upstream/*")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(exampleB))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := ParseLegacy("f.conf", b)
		if err == nil {
			// What loads must convert to TOML that loads again.
			if _, err := ParseTOML("f.toml", cfg.TOML("f.conf")); err != nil {
				t.Fatalf("converted config does not load: %v\n%s", err, cfg.TOML("f.conf"))
			}
		}
	})
}
