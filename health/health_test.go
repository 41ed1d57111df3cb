package health

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"g6/conf"
)

// script is a server's side of a check, from literal bytes: what the
// check reads, and what it wrote, kept.
type script struct {
	in  io.Reader
	out bytes.Buffer
}

func (s *script) Read(b []byte) (int, error)  { return s.in.Read(b) }
func (s *script) Write(b []byte) (int, error) { return s.out.Write(b) }

func answer(s string) *script { return &script{in: strings.NewReader(s)} }

// wantErr checks err against want: "" means none, else a substring.
func wantErr(t *testing.T, name string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v, want no error", name, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s: %v, want an error with %q", name, err, want)
	}
}

func TestTCP(t *testing.T) {
	for _, tt := range []struct{ name, send, expect, answer, err string }{
		{"connect only", "", "", "", ""},
		{"banner", "", "+OK", "+OK ready\r\n", ""},
		{"wrong banner", "", "+OK", "-ERR busy\r\n", `expected "+OK", got "-ER"`},
		{"short answer", "", "SSH-2.0", "SSH", `expected "SSH-2.0", got "SSH" (unexpected EOF)`},
		{"send and expect", "PING\r\n", "+PONG", "+PONG\r\n", ""},
	} {
		s := answer(tt.answer)
		err := checkTCP(s, &conf.HealthCheck{Send: tt.send, Expect: tt.expect})
		wantErr(t, tt.name, err, tt.err)
		if s.out.String() != tt.send {
			t.Errorf("%s: sent %q, want %q", tt.name, s.out.String(), tt.send)
		}
	}
}

func TestHTTP(t *testing.T) {
	ok := conf.StatusRanges{{200, 399}}
	for _, tt := range []struct {
		name, answer string
		status       conf.StatusRanges
		body, err    string
	}{
		{"200", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ok, "", ""},
		{"301", "HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n", ok, "", ""},
		{"503", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", ok, "", "status 503, expected 200-399"},
		{"404 taken", "HTTP/1.0 404 Not Found\r\n\r\n", conf.StatusRanges{{200, 200}, {404, 404}}, "", ""},
		{"body", "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nstatus: ok\n", ok, "status: ok", ""},
		{"body missing", "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nstatus: warm\n", ok, "status: ok", `body does not hold "status: ok"`},
		{"chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nstat\r\n6\r\nus: ok\r\n0\r\n\r\n", ok, "status: ok", ""},
		{"body until close", "HTTP/1.0 200 OK\r\n\r\nall good", ok, "good", ""},
		{"not http", "SSH-2.0-OpenSSH_9.2\r\n", ok, "", "not an HTTP answer"},
		{"nothing", "", ok, "", "not an HTTP answer"},
		{"bad status", "HTTP/1.1 abc OK\r\n\r\n", ok, "", "not an HTTP answer"},
	} {
		s := answer(tt.answer)
		hc := &conf.HealthCheck{Type: conf.CheckHTTP, Method: "GET", Path: "/health", ExpectStatus: tt.status, ExpectBody: tt.body}
		wantErr(t, tt.name, checkHTTP(s, hc, "10.0.0.1:80"), tt.err)
		if want := "GET /health HTTP/1.1\r\nHost: 10.0.0.1:80\r\n"; !strings.HasPrefix(s.out.String(), want) {
			t.Errorf("%s: sent %q, want it to start %q", tt.name, s.out.String(), want)
		}
	}
	// A body that never ends is read only as far as the bound.
	huge := "HTTP/1.1 200 OK\r\n\r\n" + strings.Repeat("x", 4*conf.MaxCheckBody)
	hc := &conf.HealthCheck{Method: "GET", Path: "/", ExpectStatus: ok, ExpectBody: "never"}
	s := answer(huge)
	wantErr(t, "huge body", checkHTTP(s, hc, "h"), "body does not hold")
	if left := s.in.(*strings.Reader).Len(); left < 2*conf.MaxCheckBody {
		t.Errorf("a huge body: %d bytes left unread, want the check to stop at its bound", left)
	}
}

func TestRedis(t *testing.T) {
	master := "$41\r\n# Replication\r\nrole:master\r\nconnected:0\r\n\r\n"
	replica := "$40\r\n# Replication\r\nrole:slave\r\nconnected:0\r\n\r\n"
	for _, tt := range []struct {
		name, role, password, answer, sent, err string
	}{
		{"pong", "", "", "+PONG\r\n", "*1\r\n$4\r\nPING\r\n", ""},
		{"loading", "", "", "-LOADING Redis is loading the dataset in memory\r\n", "", `expected +PONG, got "-LOADING Redis is loading`},
		{"master", "master", "", "+PONG\r\n" + master, "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n", ""},
		{"replica", "master", "", "+PONG\r\n" + replica, "", "role:slave, expected role:master"},
		{"auth", "", "s3cret", "+OK\r\n+PONG\r\n", "*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\n*1\r\n$4\r\nPING\r\n", ""},
		{"auth refused", "", "wrong", "-WRONGPASS invalid username-password pair\r\n", "", `AUTH: "-WRONGPASS`},
		{"not redis", "", "", "HTTP/1.1 400 Bad Request\r\n", "", "not a Redis reply"},
		{"closed", "", "", "", "", "unexpected EOF"},
		{"bulk cut", "master", "", "+PONG\r\n$100\r\nrole:master\r\n", "", "bulk reply"},
		{"bulk too long", "master", "", "+PONG\r\n$99999999\r\n", "", "answer too long"},
		{"nil bulk", "master", "", "+PONG\r\n$-1\r\n", "", "nil reply"},
	} {
		s := answer(tt.answer)
		err := checkRedis(s, &conf.HealthCheck{Role: tt.role, Password: tt.password})
		wantErr(t, tt.name, err, tt.err)
		if tt.sent != "" && s.out.String() != tt.sent {
			t.Errorf("%s: sent %q, want %q", tt.name, s.out.String(), tt.sent)
		}
	}
}

func TestMySQL(t *testing.T) {
	greeting := "\x29\x00\x00\x00\x0a11.8.3-MariaDB-0+deb13u1\x00\x08\x00\x00\x00abcdefgh\x00\xfe\xf7"
	for _, tt := range []struct{ name, answer, err string }{
		{"greeting", greeting, ""},
		{"too many", "\x17\x00\x00\x00\xff\x10\x04Too many connections", `error 1040: "Too many connections"`},
		{"blocked", "\x22\x00\x00\x00\xff\x69\x04#HY000Host '1.2.3.4' is blocked", `error 1129: "Host '1.2.3.4' is blocked"`},
		{"protocol 9", "\x05\x00\x00\x00\x094.0\x00", "not a MySQL greeting"},
		{"no version end", "\x04\x00\x00\x00\x0a5.5", "without a version"},
		{"empty packet", "\x00\x00\x00\x00", "is not a greeting"},
		{"huge packet", "\xff\xff\xff\x00", "is not a greeting"},
		{"closed", "", "no greeting"},
		{"cut", "\x4a\x00\x00\x00\x0a11", "greeting"},
	} {
		wantErr(t, tt.name, checkMySQL(strings.NewReader(tt.answer)), tt.err)
	}
}

func TestSMTP(t *testing.T) {
	for _, tt := range []struct{ name, answer, err string }{
		{"ok", "220 mx.test ESMTP\r\n250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n", ""},
		{"multi-line banner", "220-mx.test ESMTP\r\n220 welcome\r\n250 mx.test\r\n", ""},
		{"busy", "421 mx.test too busy\r\n", `banner 421 "mx.test too busy", expected 220`},
		{"ehlo refused", "220 mx.test\r\n550 go away\r\n", `EHLO answered 550 "go away", expected 250`},
		{"not smtp", "+OK POP3 ready\r\n", "not an SMTP reply"},
		{"closed after banner", "220 mx.test\r\n", "EHLO: unexpected EOF"},
		{"endless", "220 x\r\n" + strings.Repeat("250-x\r\n", 200), "more than 100 lines"},
		{"long line", "220 " + strings.Repeat("x", 2000) + "\r\n", "answer too long"},
	} {
		s := answer(tt.answer)
		wantErr(t, tt.name, checkSMTP(s), tt.err)
		if tt.err == "" && s.out.String() != "EHLO g6-health-check\r\nQUIT\r\n" {
			t.Errorf("%s: sent %q", tt.name, s.out.String())
		}
	}
}

// pg frames backend messages.
func pg(msgs ...string) string {
	var b strings.Builder
	for _, m := range msgs {
		n := len(m) + 3
		b.WriteString(m[:1] + string([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}) + m[1:])
	}
	return b.String()
}

func TestPgSQL(t *testing.T) {
	ready := pg("S"+"server_version\x0017.2\x00", "K\x00\x00\x00\x01\x00\x00\x00\x02", "ZI")
	row := func(v string) string {
		return pg("T\x00\x01pg_is_in_recovery\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x01\xff\xff\xff\xff\x00\x00",
			"D\x00\x01\x00\x00\x00\x01"+v, "CSELECT 1\x00", "ZI")
	}
	for _, tt := range []struct {
		name, user, password, role, answer, err string
	}{
		{"auth asked", "", "", "", pg("R\x00\x00\x00\x0a" + "SCRAM-SHA-256\x00\x00"), ""},
		{"trust", "", "", "", pg("R\x00\x00\x00\x00") + ready, ""},
		{"login refused is up", "", "", "", pg("ESFATAL\x00C28000\x00Mrole \"g6-health-check\" does not exist\x00\x00"), ""},
		{"starting up", "", "", "", pg("ESFATAL\x00C57P03\x00Mthe database system is starting up\x00\x00"), `FATAL 57P03: "the database system is starting up"`},
		{"too many", "", "", "", pg("ESFATAL\x00C53300\x00Msorry, too many clients already\x00\x00"), "53300"},
		{"primary", "app", "pw", "primary", pg("R\x00\x00\x00\x03", "R\x00\x00\x00\x00") + ready + row("f"), ""},
		{"primary wanted", "app", "pw", "primary", pg("R\x00\x00\x00\x00") + ready + row("t"), "in recovery (a standby), expected a primary"},
		{"standby", "app", "", "standby", pg("R\x00\x00\x00\x00") + ready + row("t"), ""},
		{"standby wanted", "app", "", "standby", pg("R\x00\x00\x00\x00") + ready + row("f"), "not in recovery"},
		{"md5", "app", "pw", "", pg("R\x00\x00\x00\x05abcd", "R\x00\x00\x00\x00") + ready, ""},
		{"password refused", "app", "bad", "", pg("R\x00\x00\x00\x03", "ESFATAL\x00C28P01\x00Mpassword authentication failed for user \"app\"\x00\x00"), "28P01"},
		{"kerberos", "app", "pw", "", pg("R\x00\x00\x00\x02"), "authentication method 2"},
		{"no scram", "app", "pw", "", pg("R\x00\x00\x00\x0aSCRAM-SHA-1\x00\x00"), "no SCRAM-SHA-256"},
		{"not postgres", "", "", "", "HTTP/1.1 400 Bad Request\r\n\r\n", "not a PostgreSQL message"},
		{"huge message", "", "", "", "R\x7f\xff\xff\xff", "not a PostgreSQL message (a message of 2147483647 bytes)"},
		{"closed", "", "", "", "", "answer"},
		{"bad row", "app", "", "primary", pg("R\x00\x00\x00\x00") + ready + pg("D\x00\x01\x00\x00\x00\x04true", "ZI"), "is not t or f"},
	} {
		s := answer(tt.answer)
		wantErr(t, tt.name, checkPgSQL(s, &conf.HealthCheck{User: tt.user, Password: tt.password, Role: tt.role}), tt.err)
	}
	if got := string(startupMessage("app", "db")); got != "\x00\x00\x00\x3f\x00\x03\x00\x00user\x00app\x00database\x00db\x00application_name\x00g6-health-check\x00\x00" {
		t.Errorf("startup message %q", got)
	}
}

// TestSCRAM runs the client against the RFC 7677 example exchange
// (user "user", password "pencil").
func TestSCRAM(t *testing.T) {
	s := &scramClient{password: "pencil", clientNonce: "rOprNGfwEbeRWgbNEkqO"}
	s.first()
	s.firstBare = "n=user,r=rOprNGfwEbeRWgbNEkqO" // the RFC's names the user; PostgreSQL's leaves it out
	final, err := s.final("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
	if err != nil {
		t.Fatal(err)
	}
	if want := "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="; final != want {
		t.Errorf("client-final %q, want %q", final, want)
	}
	if err := s.verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="); err != nil {
		t.Errorf("the RFC's server signature: %v", err)
	}
	if err := s.verify("v=AAAA"); err == nil {
		t.Error("a wrong server signature was taken")
	}
	if err := s.verify("e=invalid-proof"); err == nil || !strings.Contains(err.Error(), "invalid-proof") {
		t.Errorf("server error: %v", err)
	}
	if _, err := s.final("r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"); err == nil {
		t.Error("a server nonce not extending the client's was taken")
	}
}

func TestDaysLeft(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		left    time.Duration
		minDays int
		err     string
		warn    bool
	}{
		{3 * 24 * time.Hour, 7, "certificate expires in 3.0 days (2026-12-10), min_days is 7", false},
		{10 * 24 * time.Hour, 7, "", true},
		{20 * 24 * time.Hour, 7, "", false},
		{-24 * time.Hour, 1, "certificate expires in 0.0 days", false},
	} {
		err := daysLeft(now.Add(tt.left), now, tt.minDays)
		_, isWarn := err.(*Warning)
		if tt.warn != isWarn {
			t.Errorf("%v left, min_days %d: %v, want a warning: %t", tt.left, tt.minDays, err, tt.warn)
			continue
		}
		if !tt.warn {
			wantErr(t, tt.left.String(), err, tt.err)
		}
	}
}

func TestReadLine(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"abc\r\n", "abc", ""},
		{"abc\n", "abc", ""},
		{"abc", "", "unexpected EOF"},
		{strings.Repeat("x", 100) + "\n", "", "answer too long"},
	} {
		got, err := readLine(bufio.NewReaderSize(strings.NewReader(tt.in), 16), 50)
		wantErr(t, tt.in, err, tt.err)
		if got != tt.want {
			t.Errorf("readLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzAnswers feeds every check type's reader the same bytes: none may
// panic, loop or read past its bound.
func FuzzAnswers(f *testing.F) {
	for _, seed := range []string{"+PONG\r\n", "HTTP/1.1 200 OK\r\n\r\n", "220 x\r\n250 y\r\n", "\x05\x00\x00\x00\x0a1\x00ab",
		pg("R\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00", "R\x00\x00\x00\x0br=x,s=AA==,i=1"), "$3\r\nabc\r\n"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		all := &conf.HealthCheck{Method: "GET", Path: "/", ExpectStatus: conf.StatusRanges{{200, 399}}, ExpectBody: "x",
			Role: conf.RoleMaster, Password: "p", User: "u"}
		checkTCP(answer(in), &conf.HealthCheck{Expect: "+OK"})
		checkHTTP(answer(in), all, "h")
		checkRedis(answer(in), all)
		checkMySQL(strings.NewReader(in))
		checkSMTP(answer(in))
		all.Role = conf.RolePrimary
		checkPgSQL(answer(in), all)
	})
}

func TestParseAgent(t *testing.T) {
	for _, tt := range []struct {
		line     string
		state    string
		weight   int
		maxConns int64
		err      string
	}{
		{"up", "up", -1, -1, ""},
		{"ready", "up", -1, -1, ""},
		{"75%", "", 75, -1, ""},
		{"up 50%", "up", 50, -1, ""},
		{"drain", "drain", -1, -1, ""},
		{"maint", "maint", -1, -1, ""},
		{"DOWN", "down", -1, -1, ""},
		{"stopped", "down", -1, -1, ""},
		{"fail", "down", -1, -1, ""},
		{"maxconn:30", "", -1, 30, ""},
		{"up,100%,maxconn:0", "up", 100, 0, ""},
		{" ready ,\t80% ", "up", 80, -1, ""},
		{"0%", "", 0, -1, ""},
		{"", "", -1, -1, "an empty answer"},
		{"sleepy", "", -1, -1, `"sleepy" is not an agent word`},
		{"up 50% bogus", "", -1, -1, `"bogus" is not an agent word`},
		{"150.5%", "", -1, -1, `weight "150.5%" is not 0%-1000%`},
		{"-5%", "", -1, -1, `weight "-5%" is not`},
		{"maxconn:x", "", -1, -1, `"maxconn:x" is not maxconn:N`},
		{"maxconn:-1", "", -1, -1, `is not maxconn:N`},
	} {
		a, err := ParseAgent(tt.line)
		wantErr(t, tt.line, err, tt.err)
		if tt.err == "" && (a.State != tt.state || a.Weight != tt.weight || a.MaxConns != tt.maxConns) {
			t.Errorf("ParseAgent(%q) = %+v, want state %q weight %d maxconn %d", tt.line, a, tt.state, tt.weight, tt.maxConns)
		}
	}
}

func TestAskAgent(t *testing.T) {
	for _, tt := range []struct{ send, answer, state, err string }{
		{"", "drain\n", "drain", ""},
		{"", "up\r\n", "up", ""},
		{"hello\n", "maint", "maint", ""}, // closed after its words, no line break
		{"", "", "", "answer: EOF"},
		{"", strings.Repeat("up,", 300) + "\n", "", "answer too long"},
	} {
		s := answer(tt.answer)
		a, err := askAgent(s, tt.send)
		wantErr(t, fmt.Sprintf("%q", tt.answer), err, tt.err)
		if a.State != tt.state || s.out.String() != tt.send {
			t.Errorf("answer %q: state %q sent %q, want %q and %q", tt.answer, a.State, s.out.String(), tt.state, tt.send)
		}
	}
}

func FuzzParseAgent(f *testing.F) {
	for _, s := range []string{"up 75%", "maxconn:10,drain", "ready\t0%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		a, err := ParseAgent(line)
		if err == nil && (a.Weight < -1 || a.Weight > 1000 || a.MaxConns < -1) {
			t.Fatalf("ParseAgent(%q) = %+v: out of range", line, a)
		}
	})
}
