package conf

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"unicode"
)

// MaxWorkers bounds the worker count (and the per-worker slices of the
// shared region).
const MaxWorkers = 64

// MaxServers bounds the servers of one config, all rules together: each
// takes shared slots (a few hundred bytes each, four per server to keep
// state across reloads) and a line in every show command.
const MaxServers = 65536

// lineFunc finds the line of a section's element: section is "admin" or
// "rule", n the rule index, needles the texts to search for in turn.
type lineFunc func(section string, n int, needles ...string) int

// validate checks what the decoder cannot: addresses, patterns, ids,
// algorithms and cross-rule conflicts. It is shared by the TOML and legacy
// loaders, so the same mistakes get the same words.
func validate(cfg *Config, line lineFunc, errs *ErrorList) {
	v := validator{file: cfg.File, line: line, errs: errs, ids: map[string]int{}, listens: map[string]string{}}
	if cfg.Admin != nil {
		v.admin(cfg.Admin)
	}
	servers := 0
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		if servers += len(r.Servers) + len(r.Names); servers > MaxServers {
			errs.add(v.file, line("rule", i, "servers"), "rule %q: more than %d servers in the config", r.ID, MaxServers)
			return
		}
		v.rule(i, r)
	}
}

// validator holds what one validation run has seen across sections.
type validator struct {
	file    string
	line    lineFunc
	errs    *ErrorList
	ids     map[string]int    // rule and admin id → line
	listens map[string]string // AddrKey → owner
}

func (v *validator) admin(a *Admin) {
	owner := fmt.Sprintf("admin %q", a.ID)
	v.ids[a.ID] = a.Line
	if !validID(a.ID) {
		v.errs.add(v.file, a.Line, "%s: id must be printable text without blanks or '|'", owner)
	}
	v.listen(owner, "admin", 0, a.Listen)
	v.clients(owner, "admin", 0, a.Clients)
}

func (v *validator) rule(i int, r *Rule) {
	owner := fmt.Sprintf("rule %q", r.ID)
	switch {
	case r.ID == "":
		owner = fmt.Sprintf("rule #%d", i+1)
		v.errs.add(v.file, r.Line, "%s: missing id", owner)
	case !validID(r.ID):
		v.errs.add(v.file, v.line("rule", i, "id"), "%s: id must be printable text without blanks or '|'", owner)
	}
	if prev, dup := v.ids[r.ID]; dup && r.ID != "" {
		v.errs.add(v.file, v.line("rule", i, "id"), "%s: duplicate rule id (first at line %d)", owner, prev)
	}
	v.ids[r.ID] = r.Line
	if !IsAlgorithm(r.Algorithm) {
		v.errs.add(v.file, v.line("rule", i, "algorithm"), "%s: algorithm %q is not one of %s", owner, r.Algorithm, strings.Join(Algorithms, ", "))
	}
	v.listen(owner, "rule", i, r.Listen)
	v.clients(owner, "rule", i, r.Clients)
	v.servers(owner, i, r.Servers, len(r.Names) > 0)
	v.names(owner, i, r.Names)
}

// listen checks a section's listen addresses, each unique in the config.
func (v *validator) listen(owner, section string, n int, ls []Listen) {
	if len(ls) == 0 {
		v.errs.add(v.file, v.line(section, n), "%s: no listen address", owner)
	}
	for _, l := range ls {
		ap, err := ParseHostPort(l.Address)
		if err != nil {
			v.errs.add(v.file, v.line(section, n, quoted(l.Address)), "%s: listen %v", owner, err)
			continue
		}
		key := ap.String()
		if prev, dup := v.listens[key]; dup {
			v.errs.add(v.file, v.line(section, n, quoted(l.Address)), "%s: listen address %s is already used by %s", owner, l.Address, prev)
			continue
		}
		v.listens[key] = owner
	}
}

func (v *validator) clients(owner, section string, n int, clients []Client) {
	for _, c := range clients {
		if _, err := ParsePattern(c.Pattern.Text); err != nil {
			v.errs.add(v.file, v.line(section, n, quoted(c.Pattern.Text)), "%s: %v", owner, err)
		}
	}
	if len(clients) == 0 {
		v.errs.add(v.file, v.line(section, n), "%s: no clients (write clients = [\"*:*\"] to accept everyone)", owner)
	}
}

func (v *validator) servers(owner string, i int, servers []Server, names bool) {
	if len(servers) == 0 && !names {
		v.errs.add(v.file, v.line("rule", i, "servers"), "%s: no servers to balance over", owner)
	}
	seen := map[string]bool{}
	for _, s := range servers {
		at := v.line("rule", i, "servers", quoted(s.Address))
		ap, err := ParseHostPort(s.Address)
		if err != nil {
			v.errs.add(v.file, at, "%s: server %v", owner, err)
			continue
		}
		if seen[ap.String()] {
			v.errs.add(v.file, at, "%s: server %s is listed twice (use weight instead)", owner, s.Address)
		}
		seen[ap.String()] = true
		v.serverOptions(owner, i, at, s.Address, s)
	}
}

// names checks a rule's name entries: the syntax of each name (not
// whether it resolves) and its options.
func (v *validator) names(owner string, i int, names []Name) {
	seen := map[string]bool{}
	for _, n := range names {
		at := v.line("rule", i, "servers", quoted(n.Entry))
		var err error
		if n.SRV {
			err = CheckSRVName(n.Entry)
		} else {
			_, _, err = ParseNameEntry(n.Entry)
		}
		if err != nil {
			v.errs.add(v.file, at, "%s: %v", owner, err)
			continue
		}
		key := fmt.Sprintf("%s:%d", strings.ToLower(strings.TrimSuffix(n.Host, ".")), n.Port)
		if seen[key] {
			v.errs.add(v.file, at, "%s: server %s is listed twice", owner, n.Entry)
		}
		seen[key] = true
		v.serverOptions(owner, i, at, n.Entry, n.Server)
	}
}

// serverOptions checks the options of a server or name entry (label).
func (v *validator) serverOptions(owner string, i, at int, label string, s Server) {
	if s.ProxyProtocol != "" && s.ProxyProtocol != "v1" && s.ProxyProtocol != "v2" {
		v.errs.add(v.file, v.line("rule", i, "proxy_protocol"), "%s: server %s: proxy_protocol must be \"v1\" or \"v2\", not %q", owner, label, s.ProxyProtocol)
	}
	if s.Weight < 0 || s.Weight > MaxWeight {
		v.errs.add(v.file, at, "%s: server %s: weight must be 0-%d", owner, label, MaxWeight)
	}
	if s.OnDown != "" && s.OnDown != OnDownShutdown {
		v.errs.add(v.file, v.line("rule", i, "on_down"), "%s: server %s: on_down must be %q or left out, not %q", owner, label, OnDownShutdown, s.OnDown)
	}
}

func validID(id string) bool {
	return !strings.ContainsAny(id, " |") && strings.IndexFunc(id, notPrintable) < 0
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }

func sortErrors(errs ErrorList) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
}

// ParseLevel maps a log level name to slog's.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q is not one of debug, info, warn, error", s)
}
