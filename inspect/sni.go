package inspect

import "strings"

// MatchSNI reports whether a ClientHello's server name matches an sni
// entry checked by conf.CheckSNI, ignoring case: "*.example.org" matches
// "a.example.org" but neither "example.org" nor "a.b.example.org".
func MatchSNI(pattern, name string) bool {
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		i := strings.IndexByte(name, '.')
		return i > 0 && strings.EqualFold(name[i+1:], rest)
	}
	return strings.EqualFold(pattern, name)
}
