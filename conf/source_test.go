package conf

import (
	"reflect"
	"strings"
	"testing"
)

func TestSourceResolved(t *testing.T) {
	src := strings.Replace(minimal, `servers = ["127.0.0.1:9001"]`, `source = ["127.0.0.5", "127.0.0.6"]
servers = ["127.0.0.1:9001", { address = "127.0.0.1:9002", source = "127.0.0.7" }, { address = "[::1]:9003", source = [] }]`, 1)
	cfg, err := ParseTOML("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Rules[0]
	for i, want := range []Sources{{"127.0.0.5", "127.0.0.6"}, {"127.0.0.7"}, {}} {
		if got := r.Servers[i].Source; !reflect.DeepEqual(got, want) {
			t.Errorf("server %d source %q, want %q", i, got, want)
		}
	}
	if got := r.ServerDefaults.Source; !reflect.DeepEqual(got, Sources{"127.0.0.5", "127.0.0.6"}) {
		t.Errorf("server_defaults source %q", got)
	}
}

func TestSourceErrors(t *testing.T) {
	server := func(opts string) string {
		return strings.Replace(minimal, `servers = ["127.0.0.1:9001"]`, `servers = [{ address = "127.0.0.1:9001", `+opts+` }]`, 1)
	}
	tests := []struct{ name, text, want string }{
		{"not local", server(`source = "192.0.2.77"`), `t.toml:7: rule "r": server 127.0.0.1:9001: source 192.0.2.77: this host has no address 192.0.2.77`},
		{"other family", server(`source = "::1"`), `source ::1 cannot reach 127.0.0.1:9001: another address family`},
		{"twice", server(`source = ["127.0.0.5", "127.0.0.5"]`), `source 127.0.0.5 is listed twice`},
		{"too many", server(`source = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"]`), `source: at most 6 addresses, not 7`},
		{"with a port", server(`source = "127.0.0.5:80"`), `source "127.0.0.5:80" is not an IP address`},
		{"not a string", server(`source = 5`), `source must be an IP or a list of IPs, not int64`},
		{"rule level not local", strings.Replace(minimal, `servers = ["127.0.0.1:9001"]`, "source = \"192.0.2.77\"\nservers = [\"127.0.0.1:9001\"]", 1), `t.toml:7: rule "r": server 127.0.0.1:9001: source 192.0.2.77: this host has no address`},
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
