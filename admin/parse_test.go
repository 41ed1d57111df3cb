package admin

import (
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		line string
		want string // Command as "name what json server seconds", or "error: ..."
	}{
		{"show rules", "show rules false invalid AddrPort 0"},
		{"show sessions json", "show sessions true invalid AddrPort 0"},
		{"SHOW Servers JSON", "show servers true invalid AddrPort 0"},
		{"show", "error: usage: show rules|sessions|servers|workers|stats [json]"},
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

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"show rules json", "disable 127.0.0.1 9001 30", "beartbeat ::1 80", "?", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := Parse(line)
		if err == nil && c.Name == "" {
			t.Fatalf("Parse(%q): no command and no error", line)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\n") {
			t.Fatalf("Parse(%q): multi-line error %q", line, err)
		}
	})
}
