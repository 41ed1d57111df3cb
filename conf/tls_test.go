package conf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsFiles writes, into a temp dir, good.pem/good.key (valid 30 days),
// soon.pem/soon.key (5 days), old.pem/old.key (expired), other.key (a
// key of no certificate here) and ca.pem; it returns the dir.
func tlsFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	for _, c := range []struct {
		name     string
		notAfter time.Time
	}{{"good", now.Add(30 * 24 * time.Hour)}, {"soon", now.Add(5 * 24 * time.Hour)}, {"old", now.Add(-24 * time.Hour)}, {"other", now.Add(time.Hour)}} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		notBefore := now.Add(-time.Hour)
		if c.notAfter.Before(now) {
			notBefore = c.notAfter.Add(-48 * time.Hour)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: c.name + ".test"},
			DNSNames: []string{c.name + ".test"}, NotBefore: notBefore, NotAfter: c.notAfter, IsCA: true, BasicConstraintsValid: true}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		write(c.name+".key", "PRIVATE KEY", kder)
		if c.name != "other" {
			write(c.name+".pem", "CERTIFICATE", der)
		}
		if c.name == "good" {
			write("ca.pem", "CERTIFICATE", der)
		}
	}
	return dir
}

func TestTLSResolved(t *testing.T) {
	dir := tlsFiles(t)
	src := `
[global]
tls = { certificates = [{ cert = "good.pem", key = "good.key" }], min_version = "1.3" }

[[rule]]
id = "r"
algorithm = "RR"
clients = ["*:*"]
listen_defaults = { tls = { certificates = [{ cert = "soon.pem", key = "soon.key" }], alpn = ["h2"], client_ca = "ca.pem", client_auth = "request", handshake_timeout = "2s", session_tickets = false } }
listen = [
  "127.0.0.1:8443",
  { address = "127.0.0.1:8444", tls = { certificates = [{ cert = "good.pem", key = "good.key" }, { cert = "soon.pem", key = "soon.key" }] } },
]
tls = { server_name = "rule.test", ca = "ca.pem" }
server_defaults = { tls = { verify = false } }
servers = ["127.0.0.1:9001", { address = "127.0.0.1:9002", tls = { server_name = "one.test", cert = "good.pem", key = "good.key", alpn = ["x"] } }, "backend.test:9003"]

[[rule]]
id = "plain"
algorithm = "RR"
clients = ["*:*"]
listen = ["127.0.0.1:8445"]
tls = { ca = "ca.pem" }
servers = ["127.0.0.1:9004", "db.test:9005"]
`
	file := filepath.Join(dir, "g6.toml")
	cfg, err := ParseTOML(file, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	r := cfg.Rules[0]
	l0, l1 := r.Listen[0].TLS, r.Listen[1].TLS
	if l0 == nil || len(l0.Certificates) != 1 || l0.Certificates[0].Cert != p("soon.pem") || l0.MinVersion != "1.2" || l0.ALPN[0] != "h2" ||
		l0.ClientCA != p("ca.pem") || l0.ClientAuth != ClientAuthRequest || l0.HandshakeTimeout != Duration(2*time.Second) || l0.SessionTickets {
		t.Errorf("listen_defaults' tls (wins whole over [global]'s): %+v", l0)
	}
	if l1 == nil || len(l1.Certificates) != 2 || l1.MinVersion != "1.2" || l1.ClientAuth != ClientAuthNone || l1.HandshakeTimeout != DefaultHandshakeTimeout || !l1.SessionTickets {
		t.Errorf("the entry's tls (defaults for what it leaves out): %+v", l1)
	}
	if s := r.Servers[0].TLS; s == nil || s.ServerName != "" || s.CA != "" || s.Verify {
		t.Errorf("server_defaults' tls wins whole over the rule's: %+v", s)
	}
	if s := r.Servers[1].TLS; s == nil || s.ServerName != "one.test" || s.Cert != p("good.pem") || !s.Verify || s.ALPN[0] != "x" {
		t.Errorf("the entry's tls: %+v", s)
	}
	if n := r.Names[0].Server.TLS; n == nil || n.ServerName != "backend.test" {
		t.Errorf("a name entry verifies its host name: %+v", n)
	}
	plain := cfg.Rules[1]
	if plain.Listen[0].TLS == nil { // [global]'s
		t.Error("[global]'s tls did not reach a listen entry without one")
	}
	if s := plain.Servers[0].TLS; s == nil || s.CA != p("ca.pem") || !s.Verify || s.ServerName != "" {
		t.Errorf("the rule's tls: %+v", s)
	}
	if s := plain.ServerDefaults.TLS; s == nil || s.CA != p("ca.pem") {
		t.Errorf("servers added at runtime get the rule's tls: %+v", s)
	}
	if n := plain.Names[0].Server.TLS; n == nil || n.ServerName != "db.test" {
		t.Errorf("name entry: %+v", n)
	}
	profiles := cfg.ServerTLSProfiles()
	if len(profiles) != 5 { // verify=false; one.test; backend.test; the rule's ca; db.test
		t.Errorf("%d server TLS profiles, want 5: %v", len(profiles), profiles)
	}
	if len(cfg.Files) != 5 || len(cfg.Files[p("good.key")]) == 0 {
		t.Errorf("files kept: %d", len(cfg.Files))
	}
	if len(cfg.Warnings) == 0 || !strings.Contains(cfg.Warnings[0], "soon.pem expires in 4 days") {
		t.Errorf("warnings %q, want soon.pem's expiry", cfg.Warnings)
	}
	if !r.TerminatesTLS() || (&Rule{Listen: []Listen{{}}}).TerminatesTLS() {
		t.Error("TerminatesTLS")
	}
}

func TestTLSErrors(t *testing.T) {
	dir := tlsFiles(t)
	listen := func(tls string) string {
		return strings.Replace(minimal, `listen = ["127.0.0.1:8080"]`, `listen = [{ address = "127.0.0.1:8080", tls = `+tls+` }]`, 1)
	}
	server := func(tls string) string {
		return strings.Replace(minimal, `servers = ["127.0.0.1:9001"]`, `servers = [{ address = "127.0.0.1:9001", tls = `+tls+` }]`, 1)
	}
	for _, tt := range []struct{ name, text, want string }{
		{"no certificates", listen(`{ alpn = ["h2"] }`), `t.toml:6: rule "r": listen 127.0.0.1:8080: tls: certificates must list at least one`},
		{"unknown key", listen(`{ certificate = "good.pem" }`), `tls.certificate: unknown key (allowed: alpn, certificates, client_auth, client_ca, handshake_timeout, min_version, session_tickets)`},
		{"unknown certificate key", listen(`{ certificates = [{ cert = "good.pem", key = "good.key", chain = "x" }] }`), `tls.certificates: unknown key "chain" (allowed: cert, key)`},
		{"certificates not a list", listen(`{ certificates = "good.pem" }`), `tls.certificates: must be a list of { cert = "PATH", key = "PATH" }, not string`},
		{"missing file", listen(`{ certificates = [{ cert = "none.pem", key = "good.key" }] }`), `t.toml:6: rule "r": listen 127.0.0.1:8080: tls: certs: open ` + dir + `/none.pem: no such file or directory`},
		{"key of another certificate", listen(`{ certificates = [{ cert = "good.pem", key = "other.key" }] }`), `tls: certs: ` + dir + `/good.pem with key ` + dir + `/other.key: tls: private key does not match public key`},
		{"expired", listen(`{ certificates = [{ cert = "old.pem", key = "old.key" }] }`), `tls: certs: ` + dir + `/old.pem: certificate expired on`},
		{"half a pair", listen(`{ certificates = [{ cert = "good.pem" }] }`), `tls: a certificate needs both cert and key`},
		{"min_version", listen(`{ certificates = [{ cert = "good.pem", key = "good.key" }], min_version = "1.1" }`), `tls: min_version must be "1.2" or "1.3", not "1.1"`},
		{"require without a CA", listen(`{ certificates = [{ cert = "good.pem", key = "good.key" }], client_auth = "require" }`), `tls: client_auth = "require" needs client_ca`},
		{"client_auth", listen(`{ certificates = [{ cert = "good.pem", key = "good.key" }], client_auth = "optional" }`), `tls: client_auth must be "none", "request" or "require", not "optional"`},
		{"client_ca a key", listen(`{ certificates = [{ cert = "good.pem", key = "good.key" }], client_ca = "good.key" }`), `tls: client_ca: certs: ` + dir + `/good.key: no PEM certificate in it`},
		{"handshake_timeout", listen(`{ certificates = [{ cert = "good.pem", key = "good.key" }], handshake_timeout = "0s" }`), `tls: handshake_timeout must be positive`},
		{"server unknown key", server(`{ name = "x" }`), `tls.name: unknown key (allowed: alpn, ca, cert, key, server_name, verify)`},
		{"server cert without key", server(`{ cert = "good.pem" }`), `t.toml:7: rule "r": server 127.0.0.1:9001: tls: cert and key go together`},
		{"server ca missing", server(`{ ca = "none.pem" }`), `server 127.0.0.1:9001: tls: ca: open ` + dir + `/none.pem: no such file or directory`},
		{"server verify a string", server(`{ verify = "yes" }`), `tls.verify: must be true or false, not string`},
		{"server client cert expired", server(`{ cert = "old.pem", key = "old.key" }`), `server 127.0.0.1:9001: tls: certs: ` + dir + `/old.pem: certificate expired`},
		{"admin tls", "[admin]\nlisten = [{ address = \"127.0.0.1:8600\", tls = { certificates = [{ cert = \"good.pem\", key = \"good.key\" }] } }]\nclients = [\"127.0.0.1:*\"]\n" + minimal,
			`the admin listener speaks no TLS`},
	} {
		_, err := ParseTOML(filepath.Join(dir, "t.toml"), []byte(tt.text))
		if err == nil {
			t.Errorf("%s: no error, want %q", tt.name, tt.want)
			continue
		}
		if msg := strings.ReplaceAll(err.Error(), filepath.Join(dir, "t.toml"), "t.toml"); !strings.Contains(msg, tt.want) {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, msg, tt.want)
		}
	}
}
