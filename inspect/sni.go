package inspect

import (
	"fmt"
	"strings"

	"g6/conf"
)

// CheckSNI checks one entry of a rule's sni list: a hostname, or "*."
// and a hostname, the star standing for exactly one label.
func CheckSNI(p string) error {
	name, wild := strings.CutPrefix(p, "*.")
	if strings.Contains(name, "*") {
		return fmt.Errorf("sni %q: only a leading \"*.\" may be a wildcard", p)
	}
	if strings.HasSuffix(name, ".") {
		return fmt.Errorf("sni %q: a TLS server name has no trailing dot", p)
	}
	if err := conf.CheckHostname(name); err != nil {
		return fmt.Errorf("sni %q: %w", p, err)
	}
	if wild && !strings.Contains(name, ".") {
		return fmt.Errorf("sni %q: a wildcard needs at least two labels after it", p)
	}
	return nil
}

// MatchSNI reports whether a ClientHello's server name matches a checked
// sni entry, ignoring case: "*.example.org" matches "a.example.org" but
// neither "example.org" nor "a.b.example.org".
func MatchSNI(pattern, name string) bool {
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		i := strings.IndexByte(name, '.')
		return i > 0 && strings.EqualFold(name[i+1:], rest)
	}
	return strings.EqualFold(pattern, name)
}
