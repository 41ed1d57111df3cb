package conf

import "bytes"

// IsLegacy tells a G6.conf from a g6.toml by content: G6 files start with a
// global group "(" or a rule "ID ALG ...", TOML files with a [table] or a key.
func IsLegacy(src []byte) bool {
	words := firstWords(src, 2)
	switch {
	case len(words) == 0:
		return false
	case bytes.HasPrefix(words[0], []byte("(")):
		return true
	case bytes.HasPrefix(words[0], []byte("[")):
		return false
	case len(words) == 2:
		return isLegacyAlgorithm(string(words[1]))
	}
	return false
}

// firstWords returns up to n words, skipping //, /* */ and # comments.
func firstWords(src []byte, n int) [][]byte {
	var out [][]byte
	for _, w := range bytes.Fields(stripAllComments(src)) {
		out = append(out, w)
		if len(out) == n {
			break
		}
	}
	return out
}

func stripAllComments(src []byte) []byte {
	var b bytes.Buffer
	for i := 0; i < len(src); i++ {
		switch {
		case bytes.HasPrefix(src[i:], []byte("//")), src[i] == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			b.WriteByte('\n')
		case bytes.HasPrefix(src[i:], []byte("/*")):
			end := bytes.Index(src[i+2:], []byte("*/"))
			if end < 0 {
				return b.Bytes()
			}
			i += end + 3
			b.WriteByte(' ')
		default:
			b.WriteByte(src[i])
		}
	}
	return b.Bytes()
}
