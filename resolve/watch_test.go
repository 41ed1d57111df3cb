package resolve

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"g6/conf"
	"g6/internal/testenv"
)

// answers is a Target that keeps what it is given.
type answers struct {
	mu  sync.Mutex
	got map[string][]Server
}

func (a *answers) SetAnswer(entry string, s []Server) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	changed := fmt.Sprint(a.got[entry]) != fmt.Sprint(s)
	if len(s) == 0 {
		delete(a.got, entry)
	} else {
		a.got[entry] = s
	}
	return changed, nil
}

func (a *answers) Answer(entry string) []Server {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.got[entry]
}

func (a *answers) text(entry string) string {
	var out []string
	for _, s := range a.Answer(entry) {
		out = append(out, fmt.Sprintf("%s w%d b%t", s.Addr, s.Weight, s.Backup))
	}
	return strings.Join(out, ", ")
}

// waitFor polls cond for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("after %s: %s", d, what)
		}
	}
}

// TestWatcher follows a real dnsmasq: new addresses within an interval,
// SRV priorities and weights, the hold when the server goes away, and the
// drop once the hold is over, and the way back.
func TestWatcher(t *testing.T) {
	d := testenv.StartDNS(t)
	d.SetHosts("127.0.0.11 db.test", "127.0.0.21 r1.test", "127.0.0.22 r2.test")
	d.SetSRV("_pg._tcp.db.test,r1.test,5432,10,1", "_pg._tcp.db.test,r2.test,5433,20,3")
	cfg, err := conf.ParseTOML("t.toml", []byte(fmt.Sprintf(`
[global]
resolvers = [%q]
resolve_interval = "1s"
resolve_hold = "3s"

[[rule]]
id = "db"
algorithm = "RR"
clients = ["*:*"]
listen = ["127.0.0.1:8080"]
servers = ["db.test:80", { srv = "_pg._tcp.db.test" }]
`, d.Addr)))
	if err != nil {
		t.Fatal(err)
	}
	target := &answers{got: map[string][]Server{}}
	w := NewWatcher(target, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	defer w.Stop()
	w.Sync(cfg)
	waitFor(t, 3*time.Second, "no first answer", func() bool { return target.text("db.test:80") != "" && target.text("_pg._tcp.db.test") != "" })
	if got, want := target.text("_pg._tcp.db.test"), "127.0.0.21:5432 w1 bfalse, 127.0.0.22:5433 w3 btrue"; got != want {
		t.Fatalf("srv: %s, want %s", got, want)
	}
	d.SetHosts("127.0.0.12 db.test", "127.0.0.13 db.test", "127.0.0.21 r1.test", "127.0.0.22 r2.test")
	start := time.Now()
	waitFor(t, 3*time.Second, "the new addresses did not arrive", func() bool { return target.text("db.test:80") == "127.0.0.12:80 w0 bfalse, 127.0.0.13:80 w0 bfalse" })
	t.Logf("new addresses after %s (TTL 1 s, interval 1 s)", time.Since(start).Round(time.Millisecond))

	d.Stop()
	waitFor(t, 5*time.Second, "no failure reported", func() bool {
		st := w.Status()
		return len(st) == 2 && st[0].Error != "" && !st[0].HeldUntil.IsZero()
	})
	if target.text("db.test:80") == "" {
		t.Fatal("addresses dropped before resolve_hold")
	}
	waitFor(t, 6*time.Second, "addresses not dropped after resolve_hold", func() bool { return target.text("db.test:80") == "" })
	if st := w.Status(); st[0].Entry != "_pg._tcp.db.test" || st[1].Type != "A/AAAA" || st[1].Rules[0] != "db" || st[1].FailingSince.IsZero() || !st[1].HeldUntil.IsZero() {
		t.Fatalf("status after the drop: %+v", st)
	}
	d.Start()
	waitFor(t, 3*time.Second, "addresses not back after the server came back", func() bool { return target.text("db.test:80") != "" })

	// A reload without the SRV entry stops its lookups; its answer is
	// the pool's to drop.
	cfg.Rules[0].Names = cfg.Rules[0].Names[:1]
	w.Sync(cfg)
	if st := w.Status(); len(st) != 1 || st[0].Entry != "db.test:80" {
		t.Fatalf("status after the reload: %+v", st)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
