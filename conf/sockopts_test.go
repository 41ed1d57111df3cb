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
