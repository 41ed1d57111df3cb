package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"g6/internal/testenv"
)

// getJSON fetches url and decodes it, failing the test on a status other
// than 200.
func getJSON(t *testing.T, url string) any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %s %q\n%s", url, resp.Status, resp.Header.Get("Content-Type"), b)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return doc
}

// TestConsoleAPI: /api/v1/WHAT is show WHAT json, on the console's own
// address and on the metrics address when they are the same; an unknown
// list is 404, a POST 405.
func TestConsoleAPI(t *testing.T) {
	back, front, adminAddr, console, metrics := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", back)
	cfg := fmt.Sprintf(`
[global]
console = %q
metrics = %q
console_token = "s3cret"

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "web"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q, { address = "127.0.0.1:1", backup = true }]
`, console, metrics, adminAddr, front, back)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	for _, what := range []string{"rules", "servers"} {
		var want any
		if err := json.Unmarshal([]byte(adminSend(t, adminAddr, "show "+what+" json\n")), &want); err != nil {
			t.Fatal(err)
		}
		if got := getJSON(t, "http://"+console+"/api/v1/"+what); !reflect.DeepEqual(got, want) {
			t.Errorf("/api/v1/%s differs from show %s json:\n got %v\nwant %v", what, what, got, want)
		}
	}
	for _, what := range []string{"workers", "sessions", "stats", "resolvers"} {
		if doc, ok := getJSON(t, "http://"+console+"/api/v1/"+what).(map[string]any); !ok || len(doc) == 0 {
			t.Errorf("/api/v1/%s: %v", what, doc)
		}
	}
	if resp, err := http.Get("http://" + console + "/api/v1/bogus"); err != nil || resp.StatusCode != 404 {
		t.Errorf("unknown list: %v %v", resp, err)
	}
	if resp, err := http.Post("http://"+console+"/api/v1/servers", "text/plain", strings.NewReader("x")); err != nil || resp.StatusCode != 405 {
		t.Errorf("POST: %v %v", resp, err)
	}
	// Actions: [admin]'s patterns and the token.
	post := func(base, line, token string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+base+"/api/v1/action", strings.NewReader(line))
		req.Header.Set("Content-Type", "application/x-g6-action")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(console, "disable 127.0.0.1 1", ""); code != 403 || !strings.Contains(body, "console_token") {
		t.Errorf("an action without the token: %d %q", code, body)
	}
	if code, body := post(console, "disable 127.0.0.1 1", "wrong"); code != 403 {
		t.Errorf("an action with a wrong token: %d %q", code, body)
	}
	if code, body := post(console, "disable 127.0.0.1 1", "s3cret"); code != 200 || !strings.Contains(body, "web 127.0.0.1 1 disabled") {
		t.Errorf("an action with the token: %d %q", code, body)
	}
	if !strings.Contains(adminSend(t, adminAddr, "show servers\n"), "disabled") {
		t.Errorf("the console's disable did not reach show servers")
	}
	// The runtime-server commands, as the admin port runs them.
	for _, c := range []struct{ line, want string }{
		{"add server web 127.0.0.2:7 weight 3", "web 127.0.0.2 7 added"},
		{"set weight web 127.0.0.2:7 9", "web 127.0.0.2 7 weight 9"},
		{"del server web 127.0.0.2:7", "web 127.0.0.2 7 removed"},
		{"add server nosuch 127.0.0.2:7", "error: add server"},
	} {
		if code, body := post(console, c.line, "s3cret"); code != 200 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q, want %q", c.line, code, body, c.want)
		}
	}
	if code, body := post(console, "shutdown sessions 127.0.0.1 1", "s3cret"); code != 400 || !strings.Contains(body, "the console runs only disable, enable, drain, add server, del server, set weight") {
		t.Errorf("a command the console does not run: %d %q", code, body)
	}
	if resp, err := http.Get("http://" + metrics + "/api/v1/servers"); err != nil || resp.StatusCode != 404 {
		t.Errorf("the metrics address serves the API although console is elsewhere: %v %v", resp, err)
	}

	// One address for both.
	shared := testenv.Addr(t)
	front2 := testenv.Addr(t)
	testenv.StartMaster(t, testenv.WriteConfig(t, fmt.Sprintf("[global]\nconsole = %q\nmetrics = %[1]q\n\n[[rule]]\nid = \"r\"\nalgorithm = \"RR\"\nclients = [\"*:*\"]\nlisten = [%q]\nservers = [%q]\n", shared, front2, back)), []string{"-w", "1"})
	if doc, ok := getJSON(t, "http://"+shared+"/api/v1/servers").(map[string]any); !ok || doc["servers"] == nil {
		t.Errorf("shared address, /api/v1/servers: %v", doc)
	}
	if fams := scrape(t, shared); fams["g6_server_up"] == nil {
		t.Errorf("shared address, /metrics: no g6_server_up")
	}
	if code, body := post(shared, "disable 127.0.0.1 1", ""); code != 403 || !strings.Contains(body, "read-only") {
		t.Errorf("an action without [admin]: %d %q", code, body)
	}
}

// TestConsoleCrossSite: with no console_token and [admin] allowing the
// operator's address, a page on another site could make the operator's
// browser disable servers (issue #32). Actions with a foreign Origin, a
// Host the console does not serve (DNS rebinding) or a form's content type
// are refused (403) and logged; the page's own kind of request works, and
// so does one under console_hosts.
func TestConsoleCrossSite(t *testing.T) {
	back, front, adminAddr, console := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", back)
	cfg := fmt.Sprintf(`
[global]
console = %q

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "web"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]
`, console, adminAddr, front, back)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	server := strings.Replace(back, ":", " ", 1)
	act := func(line string, header map[string]string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+console+"/api/v1/action", strings.NewReader(line))
		req.Header.Set("Content-Type", "application/x-g6-action")
		for k, v := range header {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, port, _ := strings.Cut(console, ":")
	for _, c := range []struct {
		name   string
		header map[string]string
		want   string
	}{
		{"foreign origin", map[string]string{"Origin": "http://evil.example"}, "Origin"},
		{"form content type", map[string]string{"Content-Type": "text/plain"}, "Content-Type"},
		{"urlencoded form", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "Content-Type"},
		{"dns rebinding", map[string]string{"Host": "evil.example:" + port}, "Host"},
		{"rebinding with a matching origin", map[string]string{"Host": "evil.example:" + port, "Origin": "http://evil.example:" + port}, "Host"},
	} {
		if code, body := act("disable "+server, c.header); code != 403 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q, want 403 naming %s", c.name, code, body, c.want)
		}
	}
	if strings.Contains(adminSend(t, adminAddr, "show servers\n"), "disabled") {
		t.Fatal("a refused action disabled the server")
	}
	if n := strings.Count(m.Log(), "console action refused"); n != 5 {
		t.Errorf("%d refusals logged, want 5", n)
	}
	// The page's own: same origin, its content type; and by localhost.
	if code, body := act("disable "+server, map[string]string{"Origin": "http://" + console}); code != 200 || !strings.Contains(body, "disabled") {
		t.Errorf("the page's own action: %d %q", code, body)
	}
	if code, body := act("enable "+server, map[string]string{"Host": "localhost:" + port, "Origin": "http://localhost:" + port}); code != 200 || !strings.Contains(body, "enabled") {
		t.Errorf("an action by localhost: %d %q", code, body)
	}
}
