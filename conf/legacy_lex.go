package conf

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// token is one word of a G6.conf, split further at G6's punctuation.
type token struct {
	text      string
	line, col int
}

// lexLegacy splits G6.conf text into tokens. Like G6, words are separated by
// whitespace and comments start only where a word starts ("//" to the end of
// the line, "/*" to a word "*/"); bytes inside comments are opaque, so GBK or
// invalid bytes there never matter. Unlike G6, "(", ")", ",", "=" and ";" are
// tokens even when glued to a word, and a comment whose closing "*/" is glued
// to a word is closed there with a warning (G6 silently ignored the rest of
// the file, docs/g6-differences.md B24).
func lexLegacy(file string, src []byte, warn func(line int, format string, args ...any)) ([]token, error) {
	var toks []token
	line, col := 1, 1
	i := 0
	advance := func(n int) {
		for k := 0; k < n && i < len(src); k++ {
			if src[i] == '\n' {
				line++
				col = 1
			} else {
				col++
			}
			i++
		}
	}
	word := func() (string, int, int) {
		for i < len(src) && isBlank(src[i]) {
			advance(1)
		}
		start, l, c := i, line, col
		for i < len(src) && !isBlank(src[i]) {
			advance(1)
		}
		return string(src[start:i]), l, c
	}
	for {
		w, l, c := word()
		if w == "" {
			return toks, nil
		}
		if len(w) >= 2 && w[:2] == "/*" {
			if len(w) > 4 && w[len(w)-2:] == "*/" {
				warn(l, "comment %q has no blank before \"*/\": G6 ignored the rest of the file after it; g6 closes the comment here", short(w))
				continue
			}
			if err := skipComment(word, warn, file, l, c); err != nil {
				return nil, err
			}
			continue
		}
		if len(w) >= 2 && w[:2] == "//" {
			for i < len(src) && src[i] != '\n' {
				advance(1)
			}
			continue
		}
		for _, t := range splitPunct(w, l, c) {
			if len(t.text) >= 2 && t.text[:2] == "//" {
				for i < len(src) && src[i] != '\n' {
					advance(1)
				}
				break
			}
			toks = append(toks, t)
		}
	}
}

func skipComment(word func() (string, int, int), warn func(int, string, ...any), file string, line, col int) error {
	for {
		w, l, _ := word()
		switch {
		case w == "":
			return &Error{File: file, Line: line, Msg: fmt.Sprintf("column %d: comment \"/*\" is never closed (G6 silently ignored the rest of the file)", col)}
		case w == "*/":
			return nil
		case len(w) > 2 && w[len(w)-2:] == "*/":
			warn(l, "%q ends a comment without a blank before \"*/\": G6 kept the comment open; g6 closes it here", short(w))
			return nil
		}
	}
}

// splitPunct cuts a word into tokens at ( ) , = ; keeping the rest whole.
func splitPunct(w string, line, col int) []token {
	var out []token
	start := 0
	for k := 0; k < len(w); k++ {
		switch w[k] {
		case '(', ')', ',', '=', ';':
			if k > start {
				out = append(out, token{w[start:k], line, col + start})
			}
			out = append(out, token{w[k : k+1], line, col + k})
			start = k + 1
		}
	}
	if start < len(w) {
		out = append(out, token{w[start:], line, col + start})
	}
	return out
}

func isBlank(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\v' || b == '\f'
}

// utf8Text returns s as valid UTF-8: as it is, or decoded from GBK (the
// encoding G6 shipped its files in).
func utf8Text(s string) (string, bool) {
	if utf8.ValidString(s) {
		return s, true
	}
	b, err := simplifiedchinese.GBK.NewDecoder().Bytes([]byte(s))
	if err != nil || !utf8.Valid(b) || bytes.ContainsRune(b, utf8.RuneError) {
		return "", false
	}
	return string(b), true
}

func short(s string) string {
	if len(s) > 30 {
		return s[:30] + "..."
	}
	return s
}
