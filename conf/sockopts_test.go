package conf

import (
	"strings"
	"testing"
	"time"
)

func TestKeepaliveResolved(t *testing.T) {
	src := `
[global]
keepalive = { idle = "2m" }
quickack = true

[[rule]]
id = "r"
algorithm = "RR"
clients = ["*:*"]
listen = [
  "127.0.0.1:8080",
  { address = "127.0.0.1:8081", keepalive = { idle = 0 }, quickack = false },
  { address = "127.0.0.1:8082", keepalive = { idle = "30s", interval = "5s", count = 3 } },
]
server_defaults = { keepalive = { idle = "90s" } }
servers = ["127.0.0.1:9001", { address = "127.0.0.1:9002", keepalive = { idle = 0 }, quickack = true }]
`
	cfg, err := ParseTOML("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Rules[0]
	s := Duration(time.Second)
	wantListen := []Keepalive{{120 * s, 10 * s, 5}, {}, {30 * s, 5 * s, 3}}
	for i, want := range wantListen {
		if got := r.Listen[i].Keepalive; got != want {
			t.Errorf("listen %d keepalive %+v, want %+v", i, got, want)
		}
	}
	if !r.Listen[0].QuickAck || r.Listen[1].QuickAck {
		t.Errorf("listen quickack %t %t", r.Listen[0].QuickAck, r.Listen[1].QuickAck)
	}
	if got := r.Servers[0].Keepalive; got != (Keepalive{90 * s, 10 * s, 5}) || r.Servers[0].QuickAck {
		t.Errorf("server 0: %+v %t", got, r.Servers[0].QuickAck)
	}
	if got := r.Servers[1].Keepalive; got.On() || !r.Servers[1].QuickAck {
		t.Errorf("server 1: %+v %t", got, r.Servers[1].QuickAck)
	}
	if got := r.ServerDefaults.Keepalive; got.Idle != 90*s {
		t.Errorf("server_defaults: %+v", got)
	}
}

func TestKeepaliveErrors(t *testing.T) {
	listen := func(entry string) string {
		return strings.Replace(minimal, `listen = ["127.0.0.1:8080"]`, `listen = [{ address = "127.0.0.1:8080", `+entry+` }]`, 1)
	}
	tests := []struct{ name, text, want string }{
		{"count too big", listen(`keepalive = { idle = "60s", count = 200 }`), `t.toml:6: rule "r": listen 127.0.0.1:8080: keepalive: count must be 1-127, not 200`},
		{"idle under a second", listen(`keepalive = { idle = "500ms" }`), `keepalive: idle must be whole seconds from 1s to 32767s, not 500ms`},
		{"interval not whole", listen(`keepalive = { idle = "60s", interval = "1.5s" }`), `keepalive: interval must be whole seconds`},
		{"unknown keepalive key", listen(`keepalive = { idle = "60s", probes = 3 }`), `keepalive.probes: unknown key (allowed: count, idle, interval)`},
		{"keepalive not a table", listen(`keepalive = 5`), `keepalive must be a table`},
		{"quickack not a bool", listen(`quickack = 1`), `quickack must be true or false`},
		{"server keepalive", strings.Replace(minimal, `servers = ["127.0.0.1:9001"]`, `servers = [{ address = "127.0.0.1:9001", keepalive = { idle = "10h" } }]`, 1),
			`t.toml:7: rule "r": server 127.0.0.1:9001: keepalive: idle must be whole seconds from 1s to 32767s, not 10h0m0s`},
		{"global keepalive unknown key", "[global]\nkeepalive = { idel = \"60s\" }\n" + minimal, `t.toml:2: unknown key "global.keepalive.idel"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTOML("t.toml", []byte(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRateParse(t *testing.T) {
	tests := []struct {
		in   any
		want string // String(), or an error fragment after "!"
	}{
		{"20/s", "20/s"},
		{"1200/m", "1200/m"},
		{"3/h", "3/h"},
		{"0/s", "0/"}, // no limit: cancels an inherited one
		{"20", "!invalid rate"},
		{"x/s", "!invalid rate"},
		{"-1/s", "!invalid rate"},
		{"+1/s", "!invalid rate"},
		{"10/d", "!invalid rate"},
		{"2000000000/s", "!too large"},
		{int64(20), "!a rate is a string"},
	}
	for _, tt := range tests {
		var r Rate
		err := r.UnmarshalTOML(tt.in)
		switch {
		case strings.HasPrefix(tt.want, "!"):
			if err == nil || !strings.Contains(err.Error(), tt.want[1:]) {
				t.Errorf("%v: %v, want an error with %q", tt.in, err, tt.want[1:])
			}
		case err != nil || r.String() != tt.want:
			t.Errorf("%v: %v %v, want %s", tt.in, r, err, tt.want)
		}
	}
	for _, tt := range []struct {
		r     Rate
		burst int64
	}{{Rate{10, Duration(time.Second)}, 1}, {Rate{20, Duration(time.Second)}, 2}, {Rate{500, Duration(time.Second)}, 50}, {Rate{60, Duration(time.Minute)}, 1}} {
		if b := tt.r.Burst(); b != tt.burst {
			t.Errorf("%v: burst %d, want %d", tt.r, b, tt.burst)
		}
	}
}

func TestRateInheritance(t *testing.T) {
	src := "[global]\nmax_rate = \"20/s\"\n" + strings.Replace(minimal, `clients = ["*:*"]`, `client_defaults = { max_rate_total = "500/s" }
clients = ["*:*", { pattern = "10.0.0.0/8:*", max_rate = "0/s", max_rate_total = "5/m" }]`, 1)
	cfg, err := ParseTOML("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Rules[0].Clients
	if c[0].MaxRate.String() != "20/s" || c[0].MaxRateTotal.String() != "500/s" || c[1].MaxRate.On() || c[1].MaxRateTotal.String() != "5/m" {
		t.Fatalf("clients %+v", c)
	}
	bad := strings.Replace(minimal, `clients = ["*:*"]`, `clients = [{ pattern = "*:*", max_rate = "fast" }]`, 1)
	if _, err := ParseTOML("t.toml", []byte(bad)); err == nil || !strings.Contains(err.Error(), `t.toml:5: rule.clients: max_rate: invalid rate "fast"`) {
		t.Fatalf("bad max_rate: %v", err)
	}
}
