package conf

import (
	"regexp"
	"strings"
)

// locator finds the line of a key or value in g6.toml source text, for
// errors found after decoding (BurntSushi/toml keeps key positions private).
// It knows the shape of g6.toml: [global], [admin] and [[rule]] sections.
type locator struct {
	lines []string
}

func newLocator(src []byte) *locator {
	return &locator{lines: strings.Split(string(src), "\n")}
}

var headerRE = regexp.MustCompile(`^\s*\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?`)

// section returns the [from, to) line indexes of a section: name is "global",
// "admin" or "rule" (then n counts the [[rule]] tables from 0).
func (l *locator) section(name string, n int) (int, int) {
	from, seen := -1, -1
	for i, line := range l.lines {
		m := headerRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		top := strings.SplitN(m[1], ".", 2)[0]
		if from >= 0 && (top != name || m[1] == name) {
			return from, i
		}
		if m[1] == name {
			seen++
			if seen == n {
				from = i
			}
		}
	}
	if from < 0 {
		return 0, 0
	}
	return from, len(l.lines)
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

// key returns the line where `key =` is written inside a section.
func (l *locator) key(name string, n int, key string) int {
	re := regexp.MustCompile(`(^|[\s{,])` + regexp.QuoteMeta(key) + `\s*=`)
	from, to := l.section(name, n)
	for i := from; i < to; i++ {
		if re.MatchString(stripComment(l.lines[i])) {
			return i + 1
		}
	}
	if to == 0 {
		return 0
	}
	return from + 1
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
