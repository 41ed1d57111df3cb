package conf

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func withCheck(hc string) string { return minimal + "health_check = " + hc + "\n" }

func TestHealthCheckResolved(t *testing.T) {
	dir := tlsFiles(t)
	for _, tt := range []struct {
		name, hc string
		want     HealthCheck
	}{
		{"tcp default", `{ interval = "1s" }`, HealthCheck{Type: "tcp", Interval: Duration(1e9), Timeout: Duration(1e9), Rise: 2, Fall: 3,
			Method: "GET", Path: "/", ExpectStatus: StatusRanges{{200, 399}}, Verify: true}},
		{"http", `{ type = "http", path = "/healthz", host = "web.test", expect_status = [200, "300-302", "404"], expect_body = "ok" }`,
			HealthCheck{Type: "http", Interval: Duration(2e9), Timeout: Duration(1e9), Rise: 2, Fall: 3, Method: "GET", Path: "/healthz",
				Host: "web.test", ExpectStatus: StatusRanges{{200, 200}, {300, 302}, {404, 404}}, ExpectBody: "ok", Verify: true}},
		{"http over tls unverified", `{ type = "http", tls = true, verify = false }`, HealthCheck{Type: "http", Interval: Duration(2e9),
			Timeout: Duration(1e9), Rise: 2, Fall: 3, Method: "GET", Path: "/", ExpectStatus: StatusRanges{{200, 399}}, TLS: true}},
		{"tls without a ca: unverified", `{ type = "tls", server_name = "db.test", min_days = 7 }`, HealthCheck{Type: "tls", Interval: Duration(2e9),
			Timeout: Duration(1e9), Rise: 2, Fall: 3, Method: "GET", Path: "/", ExpectStatus: StatusRanges{{200, 399}}, ServerName: "db.test", MinDays: 7}},
		{"tls with a ca: verified", `{ type = "tls", ca = "good.pem" }`, HealthCheck{Type: "tls", Interval: Duration(2e9), Timeout: Duration(1e9),
			Rise: 2, Fall: 3, Method: "GET", Path: "/", ExpectStatus: StatusRanges{{200, 399}}, CA: filepath.Join(dir, "good.pem"), Verify: true}},
		{"redis master", `{ type = "redis", role = "master", password = "pw" }`, HealthCheck{Type: "redis", Interval: Duration(2e9),
			Timeout: Duration(1e9), Rise: 2, Fall: 3, Method: "GET", Path: "/", ExpectStatus: StatusRanges{{200, 399}}, Verify: true, Role: "master", Password: "pw"}},
		{"pgsql standby", `{ type = "pgsql", role = "standby", user = "app", password = "pw", database = "appdb", rise = 1, fall = 1 }`,
			HealthCheck{Type: "pgsql", Interval: Duration(2e9), Timeout: Duration(1e9), Rise: 1, Fall: 1, Method: "GET", Path: "/",
				ExpectStatus: StatusRanges{{200, 399}}, Verify: true, Role: "standby", User: "app", Password: "pw", Database: "appdb"}},
		{"dns", `{ type = "dns", name = "example.com" }`, HealthCheck{Type: "dns", Interval: Duration(2e9), Timeout: Duration(1e9), Rise: 2, Fall: 3,
			Method: "GET", Path: "/", ExpectStatus: StatusRanges{{200, 399}}, Verify: true, Name: "example.com"}},
	} {
		cfg, err := ParseTOML(filepath.Join(dir, "t.toml"), []byte(withCheck(tt.hc)))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := *cfg.Rules[0].HealthCheck; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

func TestHealthCheckErrors(t *testing.T) {
	dir := tlsFiles(t)
	for _, tt := range []struct{ name, hc, want string }{
		{"type", `{ type = "ldap" }`, `t.toml:8: rule "r": health_check: type "ldap" is not one of tcp, http, tls, redis, pgsql, mysql, smtp, dns`},
		{"key of another type", `{ type = "redis", path = "/" }`, `t.toml:8: rule "r": health_check: path does not apply to type "redis"`},
		{"tcp key on http", `{ type = "http", send = "x" }`, `health_check: send does not apply to type "http"`},
		{"interval", `{ interval = "10ms" }`, `health_check: needs interval of at least 100ms`},
		{"status range", `{ type = "http", expect_status = ["500-200"] }`, `expect_status 500-200 is not a range of HTTP statuses (100-599)`},
		{"status word", `{ type = "http", expect_status = ["ok"] }`, `rule.health_check.expect_status: expect_status "ok" is not a status or a range like "200-399"`},
		{"status 999", `{ type = "http", expect_status = 999 }`, `expect_status 999-999 is not a range of HTTP statuses`},
		{"method", `{ type = "http", method = "GE T" }`, `health_check: method "GE T" is not an HTTP method`},
		{"path", `{ type = "http", path = "healthz" }`, `health_check: path "healthz" must start with /`},
		{"path newline", `{ type = "http", path = "/a\r\nX: y" }`, `must start with / and hold no space or line break`},
		{"min_days", `{ type = "tls", min_days = -1 }`, `health_check: min_days must be 0 or more, not -1`},
		{"tls verify without ca", `{ type = "tls", verify = true }`, `health_check: verify = true needs a ca`},
		{"redis role", `{ type = "redis", role = "primary" }`, `health_check: role "primary": a redis check knows only "master"`},
		{"redis user alone", `{ type = "redis", user = "u" }`, `health_check: user needs a password`},
		{"pgsql role", `{ type = "pgsql", role = "master", user = "u" }`, `health_check: role "master" is not "primary" or "standby"`},
		{"pgsql role without user", `{ type = "pgsql", role = "primary" }`, `health_check: role needs a user to log in with`},
		{"dns without name", `{ type = "dns" }`, `health_check: type "dns" needs a name to query`},
		{"ca missing", `{ type = "tls", ca = "none.pem" }`, `rule "r": health_check: ca: open ` + dir + `/none.pem: no such file or directory`},
		{"unknown key", `{ type = "tcp", expected = "x" }`, `health_check.expected`},
	} {
		_, err := ParseTOML(filepath.Join(dir, "t.toml"), []byte(withCheck(tt.hc)))
		if err == nil {
			t.Errorf("%s: no error, want %q", tt.name, tt.want)
			continue
		}
		if msg := strings.ReplaceAll(err.Error(), filepath.Join(dir, "t.toml"), "t.toml"); !strings.Contains(msg, tt.want) {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, msg, tt.want)
		}
	}
}

func TestAgentCheckConfig(t *testing.T) {
	cfg, err := ParseTOML("t.toml", []byte(minimal+`agent_check = { port = 9999, interval = "500ms", send = "status\n" }`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := *cfg.Rules[0].AgentCheck, (AgentCheck{Port: 9999, Interval: Duration(5e8), Timeout: Duration(1e9), Send: "status\n"}); got != want {
		t.Errorf("agent_check = %+v, want %+v", got, want)
	}
	for _, tt := range []struct{ text, want string }{
		{`agent_check = { interval = "1s" }`, `t.toml:8: rule "r": agent_check: port must be 1-65535, not 0`},
		{`agent_check = { port = 70000 }`, `agent_check: port must be 1-65535, not 70000`},
		{`agent_check = { port = 1, interval = "1ms" }`, `agent_check: needs interval of at least 100ms and a timeout`},
		{`agent_check = { port = 1, weight = 3 }`, `agent_check.weight`},
	} {
		_, err := ParseTOML("t.toml", []byte(minimal+tt.text+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.text, err, tt.want)
		}
	}
}

func TestServerHealthCheck(t *testing.T) {
	text := strings.Replace(minimal, `servers = ["127.0.0.1:9001"]`, `health_check = { type = "tcp" }
server_defaults = { health_check = { type = "redis", role = "master" } }
servers = ["127.0.0.1:9001", { address = "127.0.0.1:9002", health_check = { type = "http", path = "/up", expect_status = [200, "204-206"] } }]`, 1)
	cfg, err := ParseTOML("t.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Rules[0]
	if r.HealthCheck.Type != "tcp" || r.Servers[0].HealthCheck.Type != "redis" || r.Servers[0].HealthCheck.Role != "master" {
		t.Errorf("rule %+v, first server %+v", r.HealthCheck, r.Servers[0].HealthCheck)
	}
	if hc := r.Servers[1].HealthCheck; hc.Type != "http" || hc.Path != "/up" || !reflect.DeepEqual(hc.ExpectStatus, StatusRanges{{200, 200}, {204, 206}}) {
		t.Errorf("second server %+v", hc)
	}
	for _, tt := range []struct{ entry, want string }{
		{`{ address = "127.0.0.1:9002", health_check = { type = "redis", path = "/" } }`, `t.toml:7: rule "r": server 127.0.0.1:9002: health_check: path does not apply to type "redis"`},
		{`{ address = "127.0.0.1:9002", health_check = { type = "http", colour = "red" } }`, `health_check.colour: unknown key`},
		{`{ address = "127.0.0.1:9002", health_check = "http" }`, `health_check must be a table`},
	} {
		_, err := ParseTOML("t.toml", []byte(strings.Replace(minimal, `"127.0.0.1:9001"]`, `"127.0.0.1:9001", `+tt.entry+`]`, 1)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.entry, err, tt.want)
		}
	}
}
