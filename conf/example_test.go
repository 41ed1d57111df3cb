package conf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestExampleConfig keeps g6.example.toml in step with the schema: it loads,
// and every key the decoder knows appears in it.
func TestExampleConfig(t *testing.T) {
	src, err := os.ReadFile("../g6.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("g6.example.toml", src)
	if err != nil {
		t.Fatalf("example does not load: %v", err)
	}
	if len(cfg.Rules) != 1 || len(cfg.Rules[0].Servers) != 3 || cfg.Admin == nil {
		t.Fatalf("example resolved to %+v", cfg)
	}
	for _, key := range schemaKeys(reflect.TypeOf(fileConfig{})) {
		if !strings.Contains(string(src), key+" =") {
			t.Errorf("key %q is missing from g6.example.toml", key)
		}
	}
	for _, key := range []string{"pattern", "address", "max_connections", "max_ip",
		"max_connections_per_ip", "timeout", "heartbeat", "weight"} {
		if !strings.Contains(string(src), key+" =") {
			t.Errorf("entry key %q is missing from g6.example.toml", key)
		}
	}
}

func schemaKeys(t reflect.Type) []string {
	var out []string
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("toml")
		if f.Anonymous {
			out = append(out, schemaKeys(f.Type)...)
			continue
		}
		if tag == "" {
			continue
		}
		if tag != "global" && tag != "admin" && tag != "rule" && tag != "cluster" {
			out = append(out, tag)
		}
		out = append(out, schemaKeys(f.Type)...)
	}
	return out
}

// TestReadmeSnippetsLoad loads every ```toml block of the README and of
// the pages under docs/ (a block with no rule gets one, since a config
// needs one) and examples/demo.toml, so the documentation never shows a
// config g6 refuses.
func TestReadmeSnippetsLoad(t *testing.T) {
	pages, _ := filepath.Glob("../docs/*.md")
	pages = append([]string{"../README.md"}, pages...)
	const minimalRule = "\n[[rule]]\nid = \"x\"\nalgorithm = \"RR\"\nclients = [\"*:*\"]\nlisten = [\"127.0.0.1:1\"]\nservers = [\"127.0.0.1:2\"]\n"
	dir := t.TempDir()
	blocks := 0
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(page, "../")
		var block []string
		start := 0
		for i, line := range strings.Split(string(text), "\n") {
			switch {
			case line == "```toml":
				block, start = []string{}, i+1
			case block != nil && line == "```":
				cfg := strings.Join(block, "\n") + "\n"
				if !strings.Contains(cfg, "[[rule]]") {
					cfg += minimalRule
				}
				snippetFiles(t, dir, cfg)
				if _, err := Parse(filepath.Join(dir, fmt.Sprintf("%s block at line %d", name, start)), []byte(cfg)); err != nil {
					t.Errorf("%s: the toml block at line %d does not load: %v", name, start, err)
				}
				blocks++
				block = nil
			case block != nil:
				block = append(block, line)
			}
		}
	}
	if blocks < 5 {
		t.Errorf("found %d toml blocks in the README and docs/, want at least 5", blocks)
	}
	demo, err := os.ReadFile("../examples/demo.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("examples/demo.toml", demo); err != nil {
		t.Errorf("examples/demo.toml does not load: %v", err)
	}
}

var pemName = regexp.MustCompile(`"([\w.*-]+\.(?:pem|crt|key))"`)

// snippetFiles writes, in dir, a file for every certificate, key or CA
// bundle a documentation block names, each the same self-signed
// certificate and its key in one PEM: it serves as a pair (whatever the
// two files are called), a key and a CA bundle alike.
func snippetFiles(t *testing.T, dir, cfg string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example.com"},
		DNSNames: []string{"example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	both := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
	for _, m := range pemName.FindAllStringSubmatch(cfg, -1) {
		if err := os.WriteFile(filepath.Join(dir, m[1]), both, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
