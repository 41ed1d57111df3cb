package conf

import (
	"os"
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
