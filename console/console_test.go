package console

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"g6/admin"
	"g6/conf"
	"g6/fleet"
	"g6/internal/testenv"
	"g6/ipc"
	"g6/pool"
	"g6/resolve"
	"g6/shared"
)

// fakeBackend is a master with one rule and no workers: a real region
// and config, and the admin lines it was asked to run.
type fakeBackend struct {
	snap    admin.Snapshot
	changes []string
}

func newFake(t *testing.T, global string) *fakeBackend {
	t.Helper()
	cfg, err := conf.ParseTOML("t.toml", []byte(global+`
[admin]
listen = ["127.0.0.1:1"]
clients = ["127.0.0.1:*"]

[[rule]]
id = "web"
algorithm = "RR"
clients = ["*:*"]
listen = ["127.0.0.1:2"]
servers = ["127.0.0.1:3"]
`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := shared.Create(shared.Sizes{Rules: 2, Servers: 2, Clients: 2, IPs: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	slots, err := r.Assign(shared.Keys{Rules: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	return &fakeBackend{snap: admin.Snapshot{Config: cfg, Region: r, Rules: slots.Rules, Servers: [][]pool.Entry{nil}, Clients: [][]int{nil}, Started: time.Now()}}
}

func (f *fakeBackend) Snapshot() admin.Snapshot                         { return f.snap }
func (f *fakeBackend) Sessions(time.Duration) ([]ipc.Session, []string) { return nil, nil }
func (f *fakeBackend) Reload() error                                    { return nil }
func (f *fakeBackend) Nodes() ([]fleet.NodeInfo, error)                 { return nil, fmt.Errorf("no fleet") }
func (f *fakeBackend) Resolvers() []resolve.Status                      { return nil }
func (f *fakeBackend) Change(cmd admin.Command) ([]string, error) {
	f.changes = append(f.changes, cmd.Name)
	return []string{"web 127.0.0.1 3 disabled"}, nil
}

// TestSameSite: which requests may act, as literal rows.
func TestSameSite(t *testing.T) {
	tests := []struct {
		name, console, hosts, ctype, host, origin, want string
	}{
		{"the page's own", "127.0.0.1:9101", "", actionType, "127.0.0.1:9101", "http://127.0.0.1:9101", ""},
		{"no origin (curl)", "127.0.0.1:9101", "", actionType, "127.0.0.1:9101", "", ""},
		{"localhost", "127.0.0.1:9101", "", actionType, "localhost:9101", "http://localhost:9101", ""},
		{"a type with parameters", "127.0.0.1:9101", "", actionType + "; charset=utf-8", "127.0.0.1:9101", "", ""},
		{"text/plain", "127.0.0.1:9101", "", "text/plain", "127.0.0.1:9101", "", "Content-Type"},
		{"a form", "127.0.0.1:9101", "", "application/x-www-form-urlencoded", "127.0.0.1:9101", "", "Content-Type"},
		{"no type", "127.0.0.1:9101", "", "", "127.0.0.1:9101", "", "Content-Type"},
		{"foreign origin", "127.0.0.1:9101", "", actionType, "127.0.0.1:9101", "http://evil.example", "Origin"},
		{"origin with another port", "127.0.0.1:9101", "", actionType, "127.0.0.1:9101", "http://127.0.0.1:80", "Origin"},
		{"rebinding", "127.0.0.1:9101", "", actionType, "evil.example:9101", "http://evil.example:9101", "Host"},
		{"another IP", "127.0.0.1:9101", "", actionType, "10.0.0.1:9101", "", "Host"},
		{"any IP when listening on all", "0.0.0.0:9101", "", actionType, "10.0.0.1:9101", "", ""},
		{"no name when listening on all", "0.0.0.0:9101", "", actionType, "evil.example:9101", "", "Host"},
		{"IPv6 console", "[::1]:9101", "", actionType, "[::1]:9101", "http://[::1]:9101", ""},
		{"console_hosts", "127.0.0.1:9101", `"lb.example"`, actionType, "lb.example:9101", "https://lb.example:9101", ""},
		{"console_hosts replaces the default", "127.0.0.1:9101", `"lb.example"`, actionType, "127.0.0.1:9101", "", "Host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := conf.ParseTOML("t.toml", []byte(fmt.Sprintf("[global]\nconsole = %q\nconsole_hosts = [%s]\n", tt.console, tt.hosts)))
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("POST", "/api/v1/action", strings.NewReader("disable 127.0.0.1 3"))
			r.Host = tt.host
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			err = sameSite(r, cfg.Global)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
}

// TestAction: an action that passes reaches the backend's Change; one
// from another site does not.
func TestAction(t *testing.T) {
	f := newFake(t, "[global]\nconsole = \"127.0.0.1:9101\"\n")
	s := &Server{backend: f, log: slog.New(slog.DiscardHandler)}
	h := s.apiHandler()
	post := func(origin string) int {
		r := httptest.NewRequest("POST", "http://127.0.0.1:9101/api/v1/action", strings.NewReader("disable 127.0.0.1 3"))
		r.RemoteAddr = "127.0.0.1:5555"
		r.Header.Set("Content-Type", actionType)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if code := post("http://evil.example"); code != 403 || len(f.changes) != 0 {
		t.Fatalf("a foreign origin: %d, changes %v", code, f.changes)
	}
	if code := post("http://127.0.0.1:9101"); code != 200 || len(f.changes) != 1 || f.changes[0] != admin.CmdDisable {
		t.Fatalf("the page's own: %d, changes %v", code, f.changes)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/api/v1/bogus"}, {"POST", "/api/v1/rules"}} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, "http://127.0.0.1:9101"+c.path, nil))
		if w.Code != map[string]int{"GET": 404, "POST": 405}[c.method] {
			t.Errorf("%s %s: %d", c.method, c.path, w.Code)
		}
	}
}

// TestLimits: a real endpoint with a cap of 3 and 2 per address: the third
// client of an address is refused at once and counted; a full endpoint
// closes its longest idle keep-alive connection for a new client.
func TestLimits(t *testing.T) {
	addr := testenv.Addr(t)
	f := newFake(t, fmt.Sprintf("[global]\nmetrics = %q\nhttp_max_connections = 3\nhttp_max_connections_per_ip = 2\n", addr))
	s, err := Start(f, "test", f.snap.Config.Global, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dial := func(src string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	closed := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}
	a1, a2, a3 := dial("127.0.0.2"), dial("127.0.0.2"), dial("127.0.0.2")
	if closed(a1) || closed(a2) || !closed(a3) {
		t.Fatal("the third connection from one address was not the one refused")
	}
	// An idle keep-alive client (one request answered) is evicted for a
	// newcomer from another address once the endpoint is full.
	idle := dial("127.0.0.3")
	fmt.Fprintf(idle, "GET /metrics HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) { // idle once the answer is out
		s.lns[0].mu.Lock()
		n := len(s.lns[0].idle)
		s.lns[0].mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the answered connection never went idle")
		}
	}
	dial("127.0.0.4") // the endpoint holds a1, a2, idle: full
	if !closed(idle) {
		t.Fatal("the idle keep-alive connection was not evicted")
	}
	if n := s.lns[0].refused.Load(); n != 1 {
		t.Errorf("refused %d, want 1", n)
	}
}
