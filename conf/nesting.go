package conf

import "fmt"

// maxNesting bounds how deep arrays and inline tables may nest in g6.toml
// (g6's own schema needs 3). The TOML decoder recurses once per level: 4 MB
// of '[' overflowed its stack, which is fatal, not an error, and 400 KB of
// nested inline tables took 1.9 GB.
const maxNesting = 32

// checkNesting scans TOML text for brackets and braces outside strings and
// comments and returns an error naming the line where the nesting passes
// maxNesting. Table headers count too ([[rule]] is two levels), which
// leaves far more room than any g6 config uses.
func checkNesting(file string, src []byte) error {
	line, depth := 1, 0
	for i := 0; i < len(src); i++ {
		switch c := src[i]; c {
		case '\n':
			line++
		case '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			i-- // the newline is counted by the loop
		case '"', '\'':
			end, lines := skipString(src, i)
			i, line = end, line+lines
		case '[', '{':
			if depth++; depth > maxNesting {
				return ErrorList{{File: file, Line: line, Msg: fmt.Sprintf("arrays and inline tables nest deeper than %d levels", maxNesting)}}
			}
		case ']', '}':
			depth = max(depth-1, 0)
		}
	}
	return nil
}

// skipString returns the index of the last byte of the string that starts
// at src[i] (basic or literal, single- or multi-line) and the newlines in it.
// An unterminated string runs to the end; the decoder reports it.
func skipString(src []byte, i int) (end, lines int) {
	q := src[i]
	delim := 1
	if i+2 < len(src) && src[i+1] == q && src[i+2] == q {
		delim = 3
	}
	for j := i + delim; j < len(src); j++ {
		switch c := src[j]; {
		case c == '\n':
			lines++
		case c == '\\' && q == '"':
			if j+1 < len(src) && src[j+1] == '\n' {
				lines++
			}
			j++
		case c == q && (delim == 1 || j+2 < len(src) && src[j+1] == q && src[j+2] == q):
			return j + delim - 1, lines
		}
	}
	return len(src) - 1, lines
}
