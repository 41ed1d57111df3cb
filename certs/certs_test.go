package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// pemPair makes a self-signed certificate for names, valid until
// notAfter, and returns it and its key as PEM.
func pemPair(t testing.TB, notAfter time.Time, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notBefore := time.Now().Add(-time.Hour)
	if notAfter.Before(notBefore) {
		notBefore = notAfter.Add(-48 * time.Hour)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func pairs(t testing.TB) []*Pair {
	var out []*Pair
	for _, names := range [][]string{{"a.example"}, {"b.example", "*.b.example"}, {"*.c.example"}, {"exact.c.example"}} {
		c, k := pemPair(t, time.Now().Add(30*24*time.Hour), names...)
		p, err := Parse(c, k, names[0]+".pem", names[0]+".key")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestSelect(t *testing.T) {
	ps := pairs(t)
	for _, tt := range []struct{ name, want string }{
		{"a.example", "a.example.pem"},
		{"A.EXAMPLE.", "a.example.pem"}, // case and a trailing dot
		{"b.example", "b.example.pem"},
		{"x.b.example", "b.example.pem"},           // wildcard
		{"y.x.b.example", "a.example.pem"},         // a wildcard is one label: the first
		{"exact.c.example", "exact.c.example.pem"}, // exact before an earlier wildcard
		{"other.c.example", "*.c.example.pem"},
		{"c.example", "a.example.pem"}, // *.c.example does not cover c.example
		{"", "a.example.pem"},          // no SNI
		{"unknown.test", "a.example.pem"},
		{".", "a.example.pem"},
	} {
		if got := Select(ps, tt.name).Info.File; got != tt.want {
			t.Errorf("Select(%q) = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestParseAndCheck(t *testing.T) {
	now := time.Now()
	good, goodKey := pemPair(t, now.Add(30*24*time.Hour), "ok.example")
	soon, soonKey := pemPair(t, now.Add(5*24*time.Hour), "soon.example")
	old, oldKey := pemPair(t, now.Add(-24*time.Hour), "old.example")
	_, otherKey := pemPair(t, now.Add(30*24*time.Hour), "other.example")
	for _, tt := range []struct {
		name      string
		cert, key []byte
		parseErr  string
		warn      string
		checkErr  error
	}{
		{"good", good, goodKey, "", "", nil},
		{"expiring", soon, soonKey, "", "soon.example.pem expires in 4 days", nil},
		{"expired", old, oldKey, "", "", ErrExpired},
		{"key of another certificate", good, otherKey, "private key does not match public key", "", nil},
		{"not PEM", []byte("junk"), goodKey, "failed to find any PEM data in certificate input", "", nil},
		{"no key", good, nil, "failed to find any PEM data in key input", "", nil},
	} {
		file := strings.Fields(tt.name)[0] + ".example.pem"
		if tt.name == "expiring" {
			file = "soon.example.pem"
		}
		p, err := Parse(tt.cert, tt.key, file, "k.key")
		if tt.parseErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.parseErr) || !strings.Contains(err.Error(), file) {
				t.Errorf("%s: Parse error %v, want one naming %s and saying %q", tt.name, err, file, tt.parseErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		warn, err := Check(p.Info, p.Cert.Leaf, now, 14)
		if !errors.Is(err, tt.checkErr) || (tt.checkErr == nil) != (err == nil) {
			t.Errorf("%s: Check error %v, want %v", tt.name, err, tt.checkErr)
		}
		if !strings.HasPrefix(warn, tt.warn) || (tt.warn == "") != (warn == "") {
			t.Errorf("%s: warning %q, want %q", tt.name, warn, tt.warn)
		}
	}
}

func TestPool(t *testing.T) {
	c, k := pemPair(t, time.Now().Add(time.Hour), "ca.example")
	if _, err := Pool(c, "ca.pem"); err != nil {
		t.Errorf("a CA bundle: %v", err)
	}
	if _, err := Pool(k, "key.pem"); err == nil || !strings.Contains(err.Error(), "key.pem: no PEM certificate") {
		t.Errorf("a key as a CA bundle: %v", err)
	}
}

// FuzzSelect: any server name picks one of the pairs, never panics, and
// an exact name always gets its own certificate.
func FuzzSelect(f *testing.F) {
	ps := pairs(f)
	for _, s := range []string{"a.example", "x.b.example", "", ".", "..", "*.b.example", "exact.c.example.", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p := Select(ps, name)
		if p == nil {
			t.Fatalf("Select(%q) = nil", name)
		}
		for _, q := range ps {
			for _, n := range q.Info.Names {
				if strings.EqualFold(n, strings.TrimSuffix(name, ".")) && !strings.HasPrefix(n, "*.") {
					found := false
					for _, m := range p.Info.Names {
						found = found || strings.EqualFold(m, n)
					}
					if !found {
						t.Fatalf("Select(%q) = %s, which does not name it exactly", name, p.Info.File)
					}
				}
			}
		}
	})
}
