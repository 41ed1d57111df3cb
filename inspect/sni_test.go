package inspect

import (
	"strings"
	"testing"
)

func TestCheckSNI(t *testing.T) {
	tests := []struct{ in, want string }{ // want: "" = ok, else a part of the error
		{"api.example.com", ""},
		{"*.api.example.com", ""},
		{"API.Example.COM", ""},
		{"localhost", ""},
		{"*.example", "at least two labels"},
		{"*", "only a leading"},
		{"a.*.example.com", "only a leading"},
		{"**.example.com", "only a leading"},
		{"example.com.", "no trailing dot"},
		{"10.0.0.1", "is an address"},
		{"exa_mple.com", "is not a letter"},
		{"-a.example.com", "may not start or end"},
		{"", "empty name"},
	}
	for _, tt := range tests {
		err := CheckSNI(tt.in)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.in, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: %v, want %q", tt.in, err, tt.want)
		}
	}
}

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
		if got := MatchSNI(tt.pattern, tt.name); got != tt.want {
			t.Errorf("MatchSNI(%q, %q) = %t, want %t", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func FuzzMatchSNI(f *testing.F) {
	f.Add("*.example.org", "a.example.org")
	f.Add("api.example.com", "API.example.com")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if CheckSNI(pattern) != nil {
			return
		}
		m := MatchSNI(pattern, name)
		// A match holds whatever the case of either side.
		if MatchSNI(strings.ToUpper(pattern), strings.ToLower(name)) != m && isASCII(pattern+name) {
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
