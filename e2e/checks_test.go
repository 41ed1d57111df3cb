package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

// serverView is a server's line of show servers json.
type serverView struct {
	Rule, Address, State string
	CheckError           string `json:"health_check_error"`
	Ejected              string `json:"ejected"`
}

// waitServer polls show servers until addr in rule is in state and, if
// why is not "", its check error holds why; it fails the test after a
// generous limit with what it last saw.
func waitServer(t *testing.T, admin, rule, addr, state, why string) serverView {
	t.Helper()
	var last serverView
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		var doc struct{ Servers []serverView }
		json.Unmarshal([]byte(adminSend(t, admin, "show servers json\n")), &doc)
		for _, s := range doc.Servers {
			if s.Rule == rule && s.Address == addr {
				last = s
				if s.State == state && strings.Contains(s.CheckError+s.Ejected, why) {
					return s
				}
			}
		}
	}
	t.Fatalf("rule %s server %s: %+v, want state %s with a check error holding %q", rule, addr, last, state, why)
	return last
}

// checkedRule is a rule with a health check in front of servers.
func checkedRule(id, front, check string, servers ...string) string {
	q := make([]string, len(servers))
	for i, s := range servers {
		q[i] = fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf(`
[[rule]]
id = %q
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
health_check = %s
servers = [%s]
`, id, front, check, strings.Join(q, ", "))
}

// startChecked starts g6 with an admin port and rules; it returns the
// admin address.
func startChecked(t *testing.T, rules ...string) (*testenv.Master, string) {
	admin := testenv.Addr(t)
	cfg := fmt.Sprintf("[admin]\nlisten = [%q]\nclients = [\"127.0.0.1:*\"]\n%s", admin, strings.Join(rules, ""))
	return testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"}), admin
}

// nginx runs its own nginx answering status on addr; set changes the
// status with a config change and a reload, as an operator would.
type nginx struct {
	t    *testing.T
	dir  string
	addr string
}

func startNginx(t *testing.T, status int) *nginx {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Fatal("nginx is not installed (.ci/run installs it)")
	}
	n := &nginx{t: t, dir: t.TempDir(), addr: testenv.Addr(t)}
	n.write(status)
	cmd := exec.Command("nginx", "-p", n.dir, "-c", filepath.Join(n.dir, "nginx.conf"), "-e", filepath.Join(n.dir, "error.log"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nginx: %v\n%s", err, out)
	}
	t.Cleanup(func() { n.signal("quit") })
	testenv.WaitListening(t, n.addr)
	return n
}

func (n *nginx) write(status int) {
	conf := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  server { listen %[2]s; location /healthz { return %[3]d "status %[3]d\n"; } }
}
`, n.dir, n.addr, status)
	if err := os.WriteFile(filepath.Join(n.dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

func (n *nginx) signal(s string) {
	out, err := exec.Command("nginx", "-p", n.dir, "-c", filepath.Join(n.dir, "nginx.conf"), "-e", filepath.Join(n.dir, "error.log"), "-s", s).CombinedOutput()
	if err != nil && s != "quit" {
		n.t.Fatalf("nginx -s %s: %v\n%s", s, err, out)
	}
}

func (n *nginx) set(status int) {
	n.write(status)
	n.signal("reload")
}

// TestCheckHTTP: two nginx; one starts answering 503 (config change and
// reload): it goes down after fall checks with the status as the reason,
// and comes back after rise checks once it answers 200 again.
func TestCheckHTTP(t *testing.T) {
	a, b := startNginx(t, 200), startNginx(t, 200)
	_, admin := startChecked(t, checkedRule("web", testenv.Addr(t),
		`{ type = "http", path = "/healthz", expect_status = ["200-299"], expect_body = "status 200", interval = "200ms", timeout = "1s", rise = 2, fall = 2 }`, a.addr, b.addr))
	waitServer(t, admin, "web", b.addr, "up", "")
	b.set(503)
	waitServer(t, admin, "web", b.addr, "down", "status 503, expected 200-299")
	waitServer(t, admin, "web", a.addr, "up", "")
	b.set(200)
	waitServer(t, admin, "web", b.addr, "up", "")
}

// TestCheckTLSMinDays: openssl s_server with a certificate that expires
// in 3 days is down with min_days = 7 (the reason says so); one with 30
// days left is up; a server that speaks no TLS is down.
func TestCheckTLSMinDays(t *testing.T) {
	ca := newCA(t, "check-ca")
	short, shortKey := ca.issue(t, "db-soon", []string{"db.test"}, 3, false) // issue names the files by CN
	long, longKey := ca.issue(t, "db-later", []string{"db.test"}, 30, false)
	soon, later := sServer(t, short, shortKey), sServer(t, long, longKey)
	plain := testenv.Addr(t)
	testenv.Backend(t, "greet", plain)
	_, admin := startChecked(t, checkedRule("db", testenv.Addr(t),
		fmt.Sprintf(`{ type = "tls", server_name = "db.test", ca = %q, min_days = 7, interval = "200ms", timeout = "2s", rise = 1, fall = 1 }`, ca.File),
		soon, later, plain))
	waitServer(t, admin, "db", soon, "down", "min_days is 7")
	waitServer(t, admin, "db", later, "up", "")
	waitServer(t, admin, "db", plain, "down", "handshake")
}

// TestCheckRedisRole: a primary and its replica behind role = "master":
// only the primary is up; after a failover (REPLICAOF NO ONE on the
// replica, REPLICAOF on the old primary) the roles and the traffic follow.
func TestCheckRedisRole(t *testing.T) {
	p1, p2 := redisServer(t), redisServer(t)
	cli := func(addr string, args ...string) string {
		out, err := testenv.Run(t, 10*time.Second, "redis-cli", append([]string{"-h", "127.0.0.1", "-p", portOf(addr)}, args...)...)
		if err != nil {
			t.Fatalf("redis-cli %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	cli(p2, "REPLICAOF", "127.0.0.1", portOf(p1))
	front := testenv.Addr(t)
	_, admin := startChecked(t, checkedRule("kv", front,
		`{ type = "redis", role = "master", interval = "200ms", timeout = "1s", rise = 1, fall = 1 }`, p1, p2))
	waitServer(t, admin, "kv", p2, "down", "role:slave, expected role:master")
	waitServer(t, admin, "kv", p1, "up", "")
	for range 4 {
		if got := cli(front, "INFO", "server"); !strings.Contains(got, "tcp_port:"+portOf(p1)) {
			t.Fatalf("through g6 before the failover: not the primary:\n%.300s", got)
		}
	}
	cli(p2, "REPLICAOF", "NO", "ONE")
	cli(p1, "REPLICAOF", "127.0.0.1", portOf(p2))
	waitServer(t, admin, "kv", p1, "down", "role:slave")
	waitServer(t, admin, "kv", p2, "up", "")
	for range 4 {
		if got := cli(front, "INFO", "server"); !strings.Contains(got, "tcp_port:"+portOf(p2)) {
			t.Fatalf("through g6 after the failover: not the new primary:\n%.300s", got)
		}
	}
}

// nobody runs a command as nobody (PostgreSQL refuses root).
func nobody(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	return cmd
}

// startPostgres makes a cluster with initdb (password logins over TCP,
// SCRAM-SHA-256; user postgres, password pw) and starts it on addr.
func startPostgres(t *testing.T) string {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if len(bins) == 0 {
		t.Fatal("PostgreSQL is not installed (.ci/run installs postgresql)")
	}
	bin := bins[len(bins)-1]
	dir, err := os.MkdirTemp("", "g6-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chown(dir, 65534, 65534)
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("pw\n"), 0o600)
	os.Chown(pw, 65534, 65534)
	data := filepath.Join(dir, "data")
	if out, err := nobody(exec.Command(bin+"/initdb", "-D", data, "-U", "postgres", "--pwfile", pw,
		"--auth-host=scram-sha-256", "--auth-local=trust")).CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	addr := testenv.Addr(t)
	cmd := nobody(exec.Command(bin+"/postgres", "-D", data, "-p", portOf(addr), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"))
	log, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGINT); cmd.Wait() })
	testenv.WaitListening(t, addr)
	return addr
}

// TestCheckPgSQL: a real PostgreSQL is up to the startup check; up to a
// check that logs in (SCRAM) and wants a primary; down, with the reason,
// to one that wants a standby; down to a login with a wrong password.
func TestCheckPgSQL(t *testing.T) {
	pg := startPostgres(t)
	opts := `interval = "200ms", timeout = "2s", rise = 1, fall = 1`
	_, admin := startChecked(t,
		checkedRule("any", testenv.Addr(t), `{ type = "pgsql", `+opts+` }`, pg),
		checkedRule("primary", testenv.Addr(t), `{ type = "pgsql", user = "postgres", password = "pw", role = "primary", `+opts+` }`, pg),
		checkedRule("standby", testenv.Addr(t), `{ type = "pgsql", user = "postgres", password = "pw", role = "standby", `+opts+` }`, pg),
		checkedRule("badpw", testenv.Addr(t), `{ type = "pgsql", user = "postgres", password = "wrong", role = "primary", `+opts+` }`, pg))
	waitServer(t, admin, "standby", pg, "down", "not in recovery (a primary), expected a standby")
	waitServer(t, admin, "badpw", pg, "down", "28P01")
	waitServer(t, admin, "any", pg, "up", "")
	waitServer(t, admin, "primary", pg, "up", "")
}

// TestCheckDNS: dnsmasq over TCP answers a name it has (up) and says
// NXDOMAIN for one it has not (down, with the code).
func TestCheckDNS(t *testing.T) {
	d := testenv.StartDNS(t)
	d.SetHosts("10.1.2.3 db.test")
	opts := `interval = "200ms", timeout = "1s", rise = 1, fall = 1`
	_, admin := startChecked(t,
		checkedRule("known", testenv.Addr(t), `{ type = "dns", name = "db.test", `+opts+` }`, d.Addr),
		checkedRule("unknown", testenv.Addr(t), `{ type = "dns", name = "nowhere.test", `+opts+` }`, d.Addr))
	waitServer(t, admin, "unknown", d.Addr, "down", "NXDOMAIN for nowhere.test.")
	waitServer(t, admin, "known", d.Addr, "up", "")
}

// startMariaDB makes a data directory with mariadb-install-db and starts
// mariadbd on a new address; stop ends it (and waits).
func startMariaDB(t *testing.T) (addr string, stop func()) {
	t.Helper()
	if _, err := exec.LookPath("mariadbd"); err != nil {
		t.Fatal("mariadbd is not installed (.ci/run installs mariadb-server)")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if out, err := exec.Command("mariadb-install-db", "--no-defaults", "--datadir="+data, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	addr = testenv.Addr(t)
	cmd := exec.Command("mariadbd", "--no-defaults", "--datadir="+data, "--port="+portOf(addr), "--bind-address=127.0.0.1",
		"--socket="+filepath.Join(dir, "sock"), "--pid-file="+filepath.Join(dir, "pid"), "--user=root", "--skip-log-bin",
		"--innodb-buffer-pool-size=16M")
	log, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	}
	t.Cleanup(stop)
	testenv.WaitListening(t, addr)
	return addr, stop
}

// TestCheckMySQL: MariaDB's greeting is up; stopped, the server is down
// with the connect's error.
func TestCheckMySQL(t *testing.T) {
	db, stop := startMariaDB(t)
	_, admin := startChecked(t, checkedRule("db", testenv.Addr(t), `{ type = "mysql", interval = "200ms", timeout = "2s", rise = 1, fall = 2 }`, db))
	waitServer(t, admin, "db", db, "up", "")
	stop()
	waitServer(t, admin, "db", db, "down", "connection refused")
}

// TestCheckSMTP: OpenSMTPD answers the banner and EHLO (up); a server
// that greets with something else is down with what it said.
func TestCheckSMTP(t *testing.T) {
	if _, err := exec.LookPath("smtpd"); err != nil {
		t.Fatal("smtpd is not installed (.ci/run installs opensmtpd)")
	}
	dir := t.TempDir()
	mx := testenv.Addr(t)
	conf := filepath.Join(dir, "smtpd.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listen on 127.0.0.1 port %s\naction \"local\" mbox\nmatch from local for local action \"local\"\n", portOf(mx))), 0o600)
	cmd := exec.Command("smtpd", "-d", "-f", conf)
	log, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	testenv.WaitListening(t, mx)
	greeter := testenv.Addr(t)
	testenv.Backend(t, "greet", greeter)
	_, admin := startChecked(t, checkedRule("mail", testenv.Addr(t), `{ type = "smtp", interval = "200ms", timeout = "2s", rise = 1, fall = 1 }`, mx, greeter))
	waitServer(t, admin, "mail", greeter, "down", "banner: not an SMTP reply")
	waitServer(t, admin, "mail", mx, "up", "")
}

// agent answers each connection with its current line and closes.
type agent struct {
	line atomic.Value // string
	ln   net.Listener
}

func startAgent(t *testing.T, addr, line string) *agent {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{ln: ln}
	a.line.Store(line)
	t.Cleanup(func() { ln.Close() })
	go a.serve()
	return a
}

func (a *agent) serve() {
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		io.WriteString(c, a.line.Load().(string)+"\n")
		c.Close()
	}
}

// TestAgentCheck: an agent's 50% halves its server's share, drain takes
// it out (show servers says draining, by the agent), up brings it back
// with the 50% it said before, 100% restores the weight; an admin's
// weight wins over the agent's.
func TestAgentCheck(t *testing.T) {
	agentPort := strconv.Itoa(testenv.FreePort(t))
	a, b := "127.0.0.1:"+strconv.Itoa(testenv.FreePort(t)), "127.0.0.2:"+strconv.Itoa(testenv.FreePort(t))
	testenv.Backend(t, "greet", a)
	testenv.Backend(t, "greet", b)
	agentA := startAgent(t, "127.0.0.1:"+agentPort, "up 100%")
	startAgent(t, "127.0.0.2:"+agentPort, "up")
	front, admin := testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "web"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
agent_check = { port = %s, interval = "100ms", timeout = "1s" }
servers = [{ address = %q, weight = 100 }, { address = %q, weight = 100 }]
`, admin, front, agentPort, a, b)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	weightOf := func(addr string) string {
		return strings.Fields(lineWith(adminSend(t, admin, "show servers\n"), addr))[8]
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("still waiting for %s:\n%s\n%s", what, adminSend(t, admin, "show servers\n"), m.Log())
			}
		}
	}
	agentA.line.Store("50%")
	waitFor("weight 50 from the agent", func() bool { return strings.Contains(lineWith(adminSend(t, admin, "show servers\n"), a), "50 (agent)") })
	got := countGreetings(t, front, 30)
	if got[a] == 0 || got[a] >= got[b] {
		t.Errorf("at 50%%: %v, want %s to get about half of %s's", got, a, b)
	}
	agentA.line.Store("drain")
	waitServer(t, admin, "web", a, "draining", "")
	if got := countGreetings(t, front, 10); got[a] != 0 {
		t.Errorf("drained by its agent: %s still got %d of 10", a, got[a])
	}
	if !strings.Contains(lineWith(adminSend(t, admin, "show servers\n"), a), "draining (agent: drain)") {
		t.Errorf("show servers does not say the agent drains it:\n%s", adminSend(t, admin, "show servers\n"))
	}
	agentA.line.Store("up")
	waitServer(t, admin, "web", a, "up", "")
	if w := weightOf(a); w != "50" {
		t.Errorf("after up: weight %s, want the 50%% said before to stay", w)
	}
	agentA.line.Store("100%")
	waitFor("weight 100", func() bool { return weightOf(a) == "100" })
	adminSend(t, admin, "set weight web "+a+" 10\n")
	agentA.line.Store("70%")
	m.WaitLog(t, "weight_percent=70", 20*time.Second) // the agent's word is in the pool
	if got := lineWith(adminSend(t, admin, "show servers\n"), a); !strings.Contains(got, "10 (admin)") {
		t.Errorf("the agent's 70%% overrode an admin weight: %s", got)
	}
}
