package admin

import (
	"strconv"
	"strings"
	"testing"

	"g6/conf"
)

func TestParse(t *testing.T) {
	tests := []struct {
		line string
		want string // Command as "name what json server seconds", or "error: ..."
	}{
		{"show rules", "show rules false invalid AddrPort 0"},
		{"show sessions json", "show sessions true invalid AddrPort 0"},
		{"SHOW Servers JSON", "show servers true invalid AddrPort 0"},
		{"show", "error: usage: show rules|sessions|servers|workers|stats|nodes|resolvers|certs [json]"},
		{"show resolvers json", "show resolvers true invalid AddrPort 0"},
		{"show nodes json", "show nodes true invalid AddrPort 0"},
		{"show nothing", "error: usage: show"},
		{"disable 127.0.0.1 9001", "disable  false 127.0.0.1:9001 0"},
		{"disable 127.0.0.1 9001 30", "disable  false 127.0.0.1:9001 30"},
		{"disable 127.0.0.1 9001 abc", `error: disable: "abc" is not a number of seconds`},
		{"disable 127.0.0.1", "error: usage: disable IP PORT [SECONDS]"},
		{"enable ::1 80", "enable  false [::1]:80 0"},
		{"enable localhost 80", `error: enable: "localhost" is not an IP address`},
		{"enable 127.0.0.1 70000", `error: enable: "70000" is not a port`},
		{"disable 127.0.0.1 09011", `error: disable: "09011" is not a port (1-65535, no leading zeros)`},
		{"enable 127.0.0.1 +80", `error: enable: "+80" is not a port`},
		{"enable [::1] 80", "enable  false [::1]:80 0"},
		{"heartbeat 127.0.0.1 9001", "heartbeat  false 127.0.0.1:9001 0"},
		{"beartbeat 127.0.0.1 9001", "heartbeat  false 127.0.0.1:9001 0"},
		{"?", "help  false invalid AddrPort 0"},
		{"quit", "quit  false invalid AddrPort 0"},
		{"reload now", "error: usage: reload"},
		{"frobnicate", `error: unknown command "frobnicate"`},
		{"\x00\x01\x02", "error: binary data is not a command"},
		{"   ", "error: empty line"},
	}
	for _, tt := range changeTests {
		c, err := Parse(tt.line)
		got := ""
		if err != nil {
			got = "error: " + err.Error()
		} else {
			got = describe(c)
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
	for _, tt := range tests {
		c, err := Parse(tt.line)
		got := ""
		if err != nil {
			got = "error: " + err.Error()
		} else {
			got = strings.Join([]string{c.Name, c.What, boolText(c.JSON), c.Server.String(), strconv.FormatInt(c.Seconds, 10)}, " ")
		}
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("Parse(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

// changeTests are the commands that change servers, described by
// describe: name|rule|server|weight|max_connections|backup|now|seconds.
var changeTests = []struct{ line, want string }{
	{"add server web 127.0.0.1:9001", "add server|web|127.0.0.1:9001|-|-|false|false|0"},
	{"add server web [::1]:80 weight 3 max_connections 10 backup", "add server|web|[::1]:80|3|10|true|false|0"},
	{"ADD SERVER web 127.0.0.1:9001 BACKUP", "add server|web|127.0.0.1:9001|-|-|true|false|0"},
	{"add server web 127.0.0.1:9001 weight", "error: add server: weight needs a number"},
	{"add server web 127.0.0.1:9001 weight 257", `error: add server: weight "257" is not a whole number 0-256`},
	{"add server web 127.0.0.1:9001 weight +3", `error: add server: weight "+3" is not a whole number 0-256`},
	{"add server web 127.0.0.1 9001", `error: add server: address "127.0.0.1" is not IP:PORT (IPv6 as [::1]:PORT)`},
	{"add server web localhost:80", `error: add server: address "localhost:80" is not IP:PORT (IPv6 as [::1]:PORT)`},
	{"add server a|b 127.0.0.1:80", `error: add server: "a|b" is not a rule id`},
	{"add server", "error: usage: add server RULE IP:PORT [weight N] [max_connections N] [backup]"},
	{"add client web 1.2.3.4:5", "error: usage: add server RULE IP:PORT [weight N] [max_connections N] [backup]"},
	{"del server web 127.0.0.1:9001", "del server|web|127.0.0.1:9001|-|-|false|false|0"},
	{"del server web 127.0.0.1:9001 now", "del server|web|127.0.0.1:9001|-|-|false|true|0"},
	{"del server web 127.0.0.1:9001 soon", "error: usage: del server RULE IP:PORT [now]"},
	{"set weight 127.0.0.1 9001 0", "set weight||127.0.0.1:9001|0|-|false|false|0"},
	{"set weight web 127.0.0.1:9001 256", "set weight|web|127.0.0.1:9001|256|-|false|false|0"},
	{"set weight ::1 80 2", "set weight||[::1]:80|2|-|false|false|0"},
	{"set weight 127.0.0.1 9001 -1", `error: set weight: weight "-1" is not a whole number 0-256`},
	{"set weight 127.0.0.1 9001", "error: usage: set weight IP PORT N | set weight RULE IP:PORT N"},
	{"set max_connections 127.0.0.1 9001 100", "set max_connections||127.0.0.1:9001|-|100|false|false|0"},
	{"set max_connections 127.0.0.1 9001 1e3", `error: set max_connections: max_connections "1e3" is not a whole number (0 = no limit)`},
	{"set colour 1 2 3", "error: usage: set weight IP PORT N | set weight RULE IP:PORT N | set max_connections IP PORT N"},
	{"drain 127.0.0.1 9001", "drain||127.0.0.1:9001|-|-|false|false|0"},
	{"drain 127.0.0.1 9001 2", "drain||127.0.0.1:9001|-|-|false|false|2"},
	{"drain 127.0.0.1 9001 0", `error: drain: "0" is not a number of seconds`},
	{"shutdown sessions 127.0.0.1 9001", "shutdown sessions||127.0.0.1:9001|-|-|false|false|0"},
	{"shutdown sessions 127.0.0.1:9001", "error: usage: shutdown sessions IP PORT"},
	{"shutdown", "error: usage: shutdown sessions IP PORT"},
}

func describe(c Command) string {
	w, m := "-", "-"
	if c.Weight != nil {
		w = strconv.Itoa(*c.Weight)
	}
	if c.MaxConns != nil {
		m = strconv.FormatInt(*c.MaxConns, 10)
	}
	return strings.Join([]string{c.Name, c.Rule, c.Server.String(), w, m, boolText(c.Backup), boolText(c.Now),
		strconv.FormatInt(c.Seconds, 10)}, "|")
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"show rules json", "disable 127.0.0.1 9001 30", "beartbeat ::1 80", "?", "\xff\xfe",
		"add server web [::1]:80 weight 3 max_connections 10 backup", "del server web 127.0.0.1:1 now",
		"set weight web 127.0.0.1:1 2", "set max_connections 127.0.0.1 1 5", "drain 127.0.0.1 1 2", "shutdown sessions ::1 80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := Parse(line)
		if err == nil && c.Name == "" {
			t.Fatalf("Parse(%q): no command and no error", line)
		}
		if c.Weight != nil && (*c.Weight < 0 || *c.Weight > conf.MaxWeight) || c.MaxConns != nil && *c.MaxConns < 0 {
			t.Fatalf("Parse(%q): weight or limit out of range: %+v", line, c)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\n") {
			t.Fatalf("Parse(%q): multi-line error %q", line, err)
		}
	})
}
