package conf

import (
	"os"
	"strconv"
	"testing"
)

// FuzzParseTOML: any input gives a config or an error with a place, never a
// panic.
func FuzzParseTOML(f *testing.F) {
	f.Add([]byte(minimal))
	if b, err := os.ReadFile("../g6.example.toml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("[global]\nmoratorium = \"1h\"\n[[rule]]\nservers = [{address=1}]"))
	f.Add([]byte("[global]\nresolvers=[\"::1\"]\n[[rule]]\nid=\"r\"\nalgorithm=\"RR\"\nclients=[\"*:*\"]\nlisten=[\"127.0.0.1:1\"]\nservers = [\"a.b:1\", {srv=\"_x._tcp.a.b\"}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := ParseTOML("f.toml", b)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if list, ok := err.(ErrorList); ok && len(list) == 0 {
			t.Fatal("empty error list")
		}
	})
}

// FuzzNameEntry: a name entry that passes is a hostname and a port that
// print back to the same entry.
func FuzzNameEntry(f *testing.F) {
	for _, s := range []string{"db.internal:5432", "a-b.c.:1", "-a:1", "1.2.3.4:5", "x..y:1", "_s._tcp.a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := ParseNameEntry(s)
		if err == nil && (port == 0 || host+":"+strconv.Itoa(int(port)) != s || CheckHostname(host) != nil) {
			t.Fatalf("%q accepted as %q %d", s, host, port)
		}
		CheckSRVName(s)
	})
}

func FuzzGlob(f *testing.F) {
	f.Add("192.168.*.1", "192.168.11.1")
	f.Add("*1", "101")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		// "*" matches anything; a pattern without globs matches only itself.
		if !Glob("*", []byte(s)) {
			t.Fatal("* must match everything")
		}
		if Glob(s, []byte(s)) != true && !containsGlob(s) {
			t.Fatalf("%q must match itself", s)
		}
		Glob(pattern, []byte(s))
	})
}

func containsGlob(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || s[i] == '?' {
			return true
		}
	}
	return false
}
