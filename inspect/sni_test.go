package inspect_test

import (
	"strings"
	"testing"

	"g6/conf"
	"g6/inspect"
)

func TestMatchSNI(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"api.example.com", "api.example.com", true},
		{"api.example.com", "API.EXAMPLE.com", true},
		{"api.example.com", "www.example.com", false},
		{"api.example.com", "", false},
		{"*.example.org", "a.example.org", true},
		{"*.example.org", "A.Example.Org", true},
		{"*.example.org", "example.org", false},
		{"*.example.org", "a.b.example.org", false},
		{"*.example.org", ".example.org", false},
		{"*.example.org", "aexample.org", false},
		{"*.example.org", "", false},
	}
	for _, tt := range tests {
		if got := inspect.MatchSNI(tt.pattern, tt.name); got != tt.want {
			t.Errorf("MatchSNI(%q, %q) = %t, want %t", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func FuzzMatchSNI(f *testing.F) {
	f.Add("*.example.org", "a.example.org")
	f.Add("api.example.com", "API.example.com")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if conf.CheckSNI(pattern) != nil {
			return
		}
		m := inspect.MatchSNI(pattern, name)
		// A match holds whatever the case of either side.
		if inspect.MatchSNI(strings.ToUpper(pattern), strings.ToLower(name)) != m && isASCII(pattern+name) {
			t.Fatalf("case changed the match of %q and %q", pattern, name)
		}
		// A wildcard match is one label in front of the rest, never the rest itself.
		if rest, ok := strings.CutPrefix(pattern, "*."); ok && m && (strings.EqualFold(name, rest) || strings.Count(name, ".") != strings.Count(rest, ".")+1) {
			t.Fatalf("%q matched %q", pattern, name)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
