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
	file := cfg.File
	ids := map[string]int{}
	listens := map[string]string{}
	checkListen := func(owner string, section string, n int, l Listen) {
		ap, err := ParseHostPort(l.Address)
		if err != nil {
			errs.add(file, line(section, n, quoted(l.Address)), "%s: listen %v", owner, err)
			return
		}
		key := ap.String()
		if prev, dup := listens[key]; dup {
			errs.add(file, line(section, n, quoted(l.Address)), "%s: listen address %s is already used by %s", owner, l.Address, prev)
			return
		}
		listens[key] = owner
	}
	checkClients := func(owner, section string, n int, clients []Client) {
		for _, c := range clients {
			if _, err := ParsePattern(c.Pattern.Text); err != nil {
				errs.add(file, line(section, n, quoted(c.Pattern.Text)), "%s: %v", owner, err)
			}
		}
		if len(clients) == 0 {
			errs.add(file, line(section, n), "%s: no clients (write clients = [\"*:*\"] to accept everyone)", owner)
		}
	}
	if a := cfg.Admin; a != nil {
		owner := fmt.Sprintf("admin %q", a.ID)
		ids[a.ID] = a.Line
		if strings.ContainsAny(a.ID, " |") || strings.IndexFunc(a.ID, notPrintable) >= 0 {
			errs.add(file, a.Line, "%s: id must be printable text without blanks or '|'", owner)
		}
		if len(a.Listen) == 0 {
			errs.add(file, a.Line, "%s: no listen address", owner)
		}
		for _, l := range a.Listen {
			checkListen(owner, "admin", 0, l)
		}
		checkClients(owner, "admin", 0, a.Clients)
	}
	servers := 0
	for i, r := range cfg.Rules {
		owner := fmt.Sprintf("rule %q", r.ID)
		if servers += len(r.Servers); servers > MaxServers {
			errs.add(file, line("rule", i, "servers"), "%s: more than %d servers in the config", owner, MaxServers)
			return
		}
		switch {
		case r.ID == "":
			owner = fmt.Sprintf("rule #%d", i+1)
			errs.add(file, r.Line, "%s: missing id", owner)
		case strings.ContainsAny(r.ID, " |") || strings.IndexFunc(r.ID, notPrintable) >= 0:
			errs.add(file, line("rule", i, "id"), "rule %q: id must be printable text without blanks or '|'", r.ID)
		}
		if prev, dup := ids[r.ID]; dup && r.ID != "" {
			errs.add(file, line("rule", i, "id"), "%s: duplicate rule id (first at line %d)", owner, prev)
		}
		ids[r.ID] = r.Line
		if !IsAlgorithm(r.Algorithm) {
			errs.add(file, line("rule", i, "algorithm"), "%s: algorithm %q is not one of %s", owner, r.Algorithm, strings.Join(Algorithms, ", "))
		}
		if len(r.Listen) == 0 {
			errs.add(file, r.Line, "%s: no listen address", owner)
		}
		for _, l := range r.Listen {
			checkListen(owner, "rule", i, l)
		}
		checkClients(owner, "rule", i, r.Clients)
		if len(r.Servers) == 0 {
			errs.add(file, line("rule", i, "servers"), "%s: no servers to balance over", owner)
		}
		seen := map[string]bool{}
		for _, s := range r.Servers {
			ap, err := ParseHostPort(s.Address)
			if err != nil {
				errs.add(file, line("rule", i, "servers", quoted(s.Address)), "%s: server %v", owner, err)
				continue
			}
			if seen[ap.String()] {
				errs.add(file, line("rule", i, "servers", quoted(s.Address)), "%s: server %s is listed twice (use weight instead)", owner, s.Address)
			}
			seen[ap.String()] = true
			if s.ProxyProtocol != "" && s.ProxyProtocol != "v1" && s.ProxyProtocol != "v2" {
				errs.add(file, line("rule", i, "proxy_protocol"), "%s: server %s: proxy_protocol must be \"v1\" or \"v2\", not %q", owner, s.Address, s.ProxyProtocol)
			}
			if s.Weight < 1 || s.Weight > 1000 {
				errs.add(file, line("rule", i, "servers", quoted(s.Address)), "%s: server %s: weight must be 1-1000", owner, s.Address)
			}
		}
	}
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
