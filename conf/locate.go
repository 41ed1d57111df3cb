package conf

import (
	"regexp"
	"strings"
)

// locator finds the line of a key or value in g6.toml source text, for
// errors found after decoding (BurntSushi/toml keeps key positions private).
// It knows the shape of g6.toml: top-level keys, then [global], [admin] and
// [[rule]] sections. The table headers are indexed once, so a lookup costs
// the lines of one section, never the whole file (10,000 rules check in
// well under a second).
type locator struct {
	lines  []string
	heads  []tableHead
	byName map[string][]int // header name → indexes into heads, in order
}

// tableHead is one [name] or [[name]] line; end is the line where its
// section stops (the next header that is not one of its subtables).
type tableHead struct {
	line, end int
	name      string
}

var headerRE = regexp.MustCompile(`^\s*\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?`)

func newLocator(src []byte) *locator {
	l := &locator{lines: strings.Split(string(src), "\n"), byName: map[string][]int{}}
	for i, line := range l.lines {
		if !strings.HasPrefix(strings.TrimSpace(line), "[") {
			continue
		}
		if m := headerRE.FindStringSubmatch(line); m != nil {
			l.byName[m[1]] = append(l.byName[m[1]], len(l.heads))
			l.heads = append(l.heads, tableHead{line: i, end: len(l.lines), name: m[1]})
		}
	}
	for i := range l.heads {
		h := &l.heads[i]
		for j := i + 1; j < len(l.heads); j++ {
			if n := l.heads[j].name; n == h.name || !strings.HasPrefix(n, h.name+".") {
				h.end = l.heads[j].line
				break
			}
		}
	}
	return l
}

// section returns the [from, to) line indexes of a section: name is
// "global", "admin" or "rule" (then n counts the [[rule]] tables from 0), or
// "" for the top level before the first header. A missing section is (0, 0).
func (l *locator) section(name string, n int) (int, int) {
	if name == "" {
		if n > 0 {
			return 0, 0
		}
		if len(l.heads) > 0 {
			return 0, l.heads[0].line
		}
		return 0, len(l.lines)
	}
	idx := l.byName[name]
	if n >= len(idx) {
		return 0, 0
	}
	h := l.heads[idx[n]]
	return h.line, h.end
}

// sections counts the tables of a name.
func (l *locator) sections(name string) int {
	if name == "" {
		return 1
	}
	return len(l.byName[name])
}

// find returns the 1-based line of the first occurrence of every needle in
// turn (each searched from where the previous one was found), within a
// section; or the section's own line when a needle is missing; or 0.
func (l *locator) find(name string, n int, needles ...string) int {
	from, to := l.section(name, n)
	if to == 0 {
		return 0
	}
	at := from
	for _, nd := range needles {
		found := -1
		for i := at; i < to; i++ {
			if strings.Contains(stripComment(l.lines[i]), nd) {
				found = i
				break
			}
		}
		if found < 0 {
			break
		}
		at = found
	}
	return at + 1
}

// key returns the line where `key =` is written inside a section; the
// section's own line if it is not there; 0 for a missing section.
func (l *locator) key(name string, n int, key string) int {
	from, to := l.section(name, n)
	for i := from; i < to; i++ {
		if hasKey(stripComment(l.lines[i]), key) {
			return i + 1
		}
	}
	if to == 0 {
		return 0
	}
	return from + 1
}

// hasKey reports whether line assigns key: the key at the start, or after
// a blank, '{' or ',', followed by optional blanks and '='.
func hasKey(line, key string) bool {
	for i := 0; ; {
		j := strings.Index(line[i:], key)
		if j < 0 {
			return false
		}
		at := i + j
		i = at + 1
		if at > 0 && !strings.ContainsRune(" \t{,", rune(line[at-1])) {
			continue
		}
		rest := strings.TrimLeft(line[at+len(key):], " \t")
		if strings.HasPrefix(rest, "=") {
			return true
		}
	}
}

// stripComment drops a trailing # comment, leaving # inside strings alone.
func stripComment(line string) string {
	inStr := byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case inStr != 0 && c == '\\' && inStr == '"':
			i++
		case inStr != 0 && c == inStr:
			inStr = 0
		case inStr == 0 && (c == '"' || c == '\''):
			inStr = c
		case inStr == 0 && c == '#':
			return line[:i]
		}
	}
	return line
}

// quoted is how a string value appears in TOML source.
func quoted(s string) string { return `"` + s + `"` }
