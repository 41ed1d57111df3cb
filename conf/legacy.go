package conf

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseLegacy reads G6.conf text (docs/g6-differences.md §1) into a Config with g6's
// semantics: every limit applies where it is declared, global max_* are
// client-side defaults (as G6's design document says), heartbeat servers
// start down, and a global group affects only the rules after it (as in G6).
// Warnings (things G6 accepted silently but probably not as meant) are in
// Config.Warnings; errors name FILE:LINE and the column.
func ParseLegacy(file string, src []byte) (*Config, error) {
	p := &lparser{file: file, lines: map[string]int{},
		cfg: &Config{File: file, Global: Global{Moratorium: legacyMoratorium, ConnectTimeout: DefaultConnectTimeout,
			DrainTimeout: DefaultDrainTimeout, Backlog: DefaultBacklog, LogLevel: "info", AccessFormat: "text", Splice: SpliceAuto, Handoff: true, WorkerSteering: SteerHash, Accel: AccelOff}}}
	toks, err := lexLegacy(file, src, p.warn)
	if err != nil {
		return nil, ErrorList{err.(*Error)}
	}
	p.toks = toks
	p.parse()
	if len(p.errs) == 0 {
		validate(p.cfg, p.lineOf, &p.errs)
	}
	if len(p.errs) > 0 {
		sortErrors(p.errs)
		return nil, p.errs
	}
	p.cfg.Warnings = p.warns
	return p.cfg, nil
}

// legacyMoratorium stands for G6's default of 0, which skipped a failed
// server for the rest of the current second.
const legacyMoratorium = Duration(1e9)

type lparser struct {
	file   string
	toks   []token
	pos    int
	errs   ErrorList
	warns  []string
	global lprops
	cfg    *Config
	lines  map[string]int // "section/n/text" → line, for validate's messages
	admins int
}

// lprops are property values as written (nil = not written).
type lprops struct {
	moratorium, timeout, heartbeat *Duration
	maxIP, maxConns, maxPerIP      *Count
}

// Where a property group stands decides which keys it may hold (§1.3).
type level int

const (
	lvGlobal level = iota
	lvClient
	lvListen
	lvServer
)

var levelKeys = map[level]map[string]bool{
	lvGlobal: {"moratorium": true, "timeout": true, "max_ip": true, "max_connections": true, "max_connections_per_ip": true},
	lvClient: {"max_ip": true, "max_connections": true, "max_connections_per_ip": true},
	lvListen: {"timeout": true},
	lvServer: {"max_ip": true, "max_connections": true, "max_connections_per_ip": true, "heartbeat": true},
}

var levelName = map[level]string{lvGlobal: "a global group", lvClient: "the client list",
	lvListen: "the listen list", lvServer: "the server list"}

func (p *lparser) warn(line int, format string, args ...any) {
	p.warns = append(p.warns, fmt.Sprintf("%s:%d: warning: %s", p.file, line, fmt.Sprintf(format, args...)))
}

func (p *lparser) errAt(t token, format string, args ...any) {
	p.errs.add(p.file, t.line, "column %d: %s", t.col, fmt.Sprintf(format, args...))
}

func (p *lparser) peek() (token, bool) {
	if p.pos >= len(p.toks) {
		return token{}, false
	}
	return p.toks[p.pos], true
}

func (p *lparser) next() (token, bool) {
	t, ok := p.peek()
	if ok {
		p.pos++
	}
	return t, ok
}

func (p *lparser) eofErr(what string) {
	last := token{line: 1, col: 1}
	if len(p.toks) > 0 {
		last = p.toks[len(p.toks)-1]
	}
	p.errAt(last, "unexpected end of file %s", what)
}

// parse reads the whole file; it stops at the first structural error, as a
// later position could not be trusted.
func (p *lparser) parse() {
	for {
		t, ok := p.peek()
		if !ok {
			return
		}
		if t.text == "(" {
			if !p.group(lvGlobal, &p.global) {
				return
			}
			semi, ok := p.next()
			if !ok || semi.text != ";" {
				p.errAt(t, "expected ';' after the global property group")
				return
			}
			continue
		}
		if !p.rule() {
			return
		}
	}
}

// group reads "( name = value , ... )" into props, checking each key is
// allowed at lv. It reports false after a structural error.
func (p *lparser) group(lv level, props *lprops) bool {
	p.next() // "("
	for {
		name, ok := p.next()
		if !ok {
			p.eofErr("in a property group (missing ')'?)")
			return false
		}
		if name.text == ")" {
			return true
		}
		if name.text == "," || name.text == "=" || name.text == "(" || name.text == ";" {
			p.errAt(name, "expected a property name, found %q", name.text)
			return false
		}
		eq, ok := p.next()
		if !ok || eq.text != "=" {
			p.errAt(name, "expected '=' after property %q", name.text)
			return false
		}
		val, ok := p.next()
		if !ok || strings.ContainsAny(val.text, "(),=;") {
			p.errAt(name, "property %q has no value", name.text)
			return false
		}
		p.setProp(lv, props, name, val)
		sep, ok := p.next()
		switch {
		case !ok:
			p.eofErr("in a property group (missing ')'?)")
			return false
		case sep.text == ")":
			return true
		case sep.text != ",":
			p.errAt(sep, "expected ',' or ')' after %s = %s, found %q", name.text, val.text, sep.text)
			return false
		}
	}
}

func (p *lparser) setProp(lv level, props *lprops, name, val token) {
	if !levelKeys[lvGlobal][name.text] && !levelKeys[lvServer][name.text] {
		p.errAt(name, "unknown property %q (known: moratorium, timeout, max_ip, max_connections, max_connections_per_ip, heartbeat)", name.text)
		return
	}
	if !levelKeys[lv][name.text] {
		p.errAt(name, "property %q is not allowed in %s", name.text, levelName[lv])
		return
	}
	switch name.text {
	case "moratorium", "timeout", "heartbeat":
		d, err := legacyDuration(val.text)
		if err != nil {
			p.errAt(val, "%s = %s: %v", name.text, val.text, err)
			return
		}
		*map[string]**Duration{"moratorium": &props.moratorium, "timeout": &props.timeout, "heartbeat": &props.heartbeat}[name.text] = &d
	default:
		c, err := legacyCount(val.text)
		if err != nil {
			p.errAt(val, "%s = %s: %v", name.text, val.text, err)
			return
		}
		*map[string]**Count{"max_ip": &props.maxIP, "max_connections": &props.maxConns, "max_connections_per_ip": &props.maxPerIP}[name.text] = &c
	}
}

// legacyDuration reads digits with an optional s, m or h (minutes for times).
func legacyDuration(s string) (Duration, error) {
	body, m := splitUnit(s, timeUnits)
	mult := uint64(m)
	n, err := legacyNumber(body)
	if err != nil {
		return 0, err
	}
	if n*mult > 1<<32-1 {
		return 0, fmt.Errorf("%d seconds is too large (G6 wrapped it to %d)", n*mult, (n*mult)&(1<<32-1))
	}
	return Duration(n * mult * 1e9), nil
}

// legacyCount reads digits with an optional k (thousand) or m (million).
func legacyCount(s string) (Count, error) {
	body, m := splitUnit(s, countUnits)
	mult := uint64(m)
	n, err := legacyNumber(body)
	if err != nil {
		return 0, err
	}
	if n*mult > maxCount {
		return 0, fmt.Errorf("%d is too large (max %d)", n*mult, maxCount)
	}
	return Count(n * mult), nil
}

func legacyNumber(s string) (uint64, error) {
	s = strings.TrimPrefix(s, "+")
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		if strings.HasPrefix(s, "-") {
			return 0, fmt.Errorf("negative values are not allowed (G6 read -1 as 4294967295)")
		}
		return 0, fmt.Errorf("want digits with one optional unit suffix")
	}
	if len(s) > 10 {
		return 0, fmt.Errorf("too large")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("too large")
	}
	return n, nil
}

// lineOf implements validate's lineFunc from the positions recorded while
// parsing.
func (p *lparser) lineOf(section string, n int, needles ...string) int {
	if len(needles) > 0 {
		last := strings.Trim(needles[len(needles)-1], `"`)
		if l, ok := p.lines[fmt.Sprintf("%s/%d/%s", section, n, last)]; ok {
			return l
		}
	}
	if section == "admin" {
		if p.cfg.Admin != nil {
			return p.cfg.Admin.Line
		}
		return 0
	}
	if n < len(p.cfg.Rules) {
		return p.cfg.Rules[n].Line
	}
	return 0
}
