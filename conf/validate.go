package conf

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"unicode"
)

// MaxWorkers bounds the worker count: during an upgrade two masters'
// workers run at once, each counting in one of the shared region's
// per-worker slots, which are twice as many (shared.MaxWorkers).
const MaxWorkers = 32

// MaxConfigServers bounds the servers of one config, all rules together: each
// takes shared slots (a few hundred bytes each, four per server to keep
// state across reloads) and a line in every show command.
const MaxConfigServers = 65536

// lineFunc finds the line of a section's element: section is "admin" or
// "rule", n the rule index, needles the texts to search for in turn.
type lineFunc func(section string, n int, needles ...string) int

// validate checks what the decoder cannot: addresses, patterns, ids,
// algorithms and cross-rule conflicts. It is shared by the TOML and legacy
// loaders, so the same mistakes get the same words.
func validate(cfg *Config, line lineFunc, errs *ErrorList) {
	v := validator{cfg: cfg, file: cfg.File, line: line, errs: errs, ids: map[string]int{}, listens: map[string]*addrUse{}}
	if cfg.Admin != nil {
		v.admin(cfg.Admin)
	}
	servers := 0
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		if servers += len(r.Servers) + len(r.Names); servers > MaxConfigServers {
			errs.add(v.file, line("rule", i, "servers"), "rule %q: more than %d servers in the config", r.ID, MaxConfigServers)
			return
		}
		v.rule(i, r)
	}
}

// validator holds what one validation run has seen across sections.
type validator struct {
	cfg     *Config // its Warnings take what is not an error
	file    string
	line    lineFunc
	errs    *ErrorList
	ids     map[string]int      // rule and admin id → line
	listens map[string]*addrUse // AddrKey → who listens there
}

// addrUse is what the sections seen so far put on one listen address.
type addrUse struct {
	first  string // the first section's owner
	listen Listen // its entry: the socket's inspection settings
	admin  bool   // the admin listener: shared with nothing
	owners map[string]bool
	plain  string            // the rule without sni here, "" if none yet
	sni    map[string]string // lower-case sni entry → rule
}

func (v *validator) admin(a *Admin) {
	owner := fmt.Sprintf("admin %q", a.ID)
	v.ids[a.ID] = a.Line
	if !validID(a.ID) {
		v.errs.add(v.file, a.Line, "%s: id must be printable text without blanks or '|'", owner)
	}
	v.listen(owner, "admin", 0, a.Listen, nil, ProtocolTCP)
	for _, l := range a.Listen {
		if l.AcceptProxy != "" || len(l.ProxySources) > 0 {
			v.errs.add(v.file, v.line("admin", 0, quoted(l.Address)), "%s: listen %s: the admin listener reads no PROXY header (accept_proxy, proxy_sources)", owner, l.Address)
		}
		if l.TLS != nil {
			v.errs.add(v.file, v.line("admin", 0, quoted(l.Address)), "%s: listen %s: the admin listener speaks no TLS (keep it on loopback, or put it behind a TLS rule)", owner, l.Address)
		}
	}
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
	v.routing(owner, i, r)
	v.protocol(owner, i, r)
	v.listen(owner, "rule", i, r.Listen, r.SNI, r.Protocol)
	v.clients(owner, "rule", i, r.Clients)
	v.servers(owner, i, r.Servers, len(r.Names) > 0)
	v.names(owner, i, r.Names)
	if hc := r.HealthCheck; hc != nil && hc.CA != "" {
		v.caFile(owner+": health_check: ca", v.line("rule", i, "health_check"), hc.CA)
	}
	if len(r.Servers) == 0 && len(r.Names) == 0 { // else the servers' checks said it
		if err := checkSources(netip.AddrPort{}, r.ServerDefaults.Source); err != nil {
			v.errs.add(v.file, v.line("rule", i, "source"), "%s: server_defaults: %v", owner, err)
		}
	}
}

// listen checks a section's listen addresses. An address belongs to one
// section, except that rules told apart by sni may share one: at most one
// of them without sni, no sni entry in two of them, and the same
// inspection settings in each (they share its socket).
func (v *validator) listen(owner, section string, n int, ls []Listen, sni []string, proto string) {
	if len(ls) == 0 {
		v.errs.add(v.file, v.line(section, n), "%s: no listen address", owner)
	}
	for _, l := range ls {
		at := v.line(section, n, quoted(l.Address))
		ap, err := ParseHostPort(l.Address)
		if err != nil {
			v.errs.add(v.file, at, "%s: listen %v", owner, err)
			continue
		}
		v.listenSettings(owner, at, l)
		key := ListenKey(proto, ap.String())
		u := v.listens[key]
		if u == nil {
			u = &addrUse{first: owner, listen: l, admin: section == "admin", owners: map[string]bool{}, sni: map[string]string{}}
			v.listens[key] = u
		} else if !v.mayShare(owner, section, n, l, u, sni) {
			continue
		}
		u.owners[owner] = true
		if len(sni) == 0 {
			u.plain = owner
		}
		for _, e := range sni {
			u.sni[strings.ToLower(e)] = owner
		}
	}
}

// mayShare reports whether a further section may listen on u's address,
// and says why not if it may not.
func (v *validator) mayShare(owner, section string, n int, l Listen, u *addrUse, sni []string) bool {
	at := v.line(section, n, quoted(l.Address))
	switch {
	case u.admin || section == "admin":
		v.errs.add(v.file, at, "%s: listen address %s is already used by %s", owner, l.Address, u.first)
		return false
	case u.owners[owner]:
		v.errs.add(v.file, at, "%s: listen address %s is listed twice", owner, l.Address)
		return false
	case len(sni) == 0 && u.plain != "":
		v.errs.add(v.file, at, "%s: listen address %s is already used by %s (rules may share a listen address only when sni tells them apart; one of them may have no sni)", owner, l.Address, u.plain)
		return false
	case !sameSocket(l, u.listen):
		v.errs.add(v.file, at, "%s: listen %s: inspect_timeout, accept_proxy, proxy_sources, keepalive, quickack and tls must be as for %s, which listens there too (they share one socket)", owner, l.Address, u.first)
		return false
	}
	ok := true
	for _, e := range sni {
		if other := u.sni[strings.ToLower(e)]; other != "" {
			v.errs.add(v.file, v.line(section, n, "sni", quoted(e)), "%s: sni %q on %s is also %s's", owner, e, l.Address, other)
			ok = false
		}
	}
	return ok
}

// listenSettings checks one listen entry's inspection settings.
func (v *validator) listenSettings(owner string, at int, l Listen) {
	if err := checkAcceptProxy(l.AcceptProxy); err != nil {
		v.errs.add(v.file, at, "%s: listen %s: %v", owner, l.Address, err)
	}
	for _, src := range l.ProxySources {
		if _, err := ParseSource(src); err != nil {
			v.errs.add(v.file, at, "%s: listen %s: %v", owner, l.Address, err)
		}
	}
	switch {
	case l.AcceptProxy != "" && len(l.ProxySources) == 0:
		v.errs.add(v.file, at, "%s: listen %s: accept_proxy needs proxy_sources, the addresses allowed to send a header", owner, l.Address)
	case l.AcceptProxy == "" && len(l.ProxySources) > 0:
		v.errs.add(v.file, at, "%s: listen %s: proxy_sources without accept_proxy", owner, l.Address)
	}
	if l.InspectTimeout <= 0 {
		v.errs.add(v.file, at, "%s: listen %s: inspect_timeout must be positive", owner, l.Address)
	}
	if err := l.Keepalive.check(); err != nil {
		v.errs.add(v.file, at, "%s: listen %s: %v", owner, l.Address, err)
	}
	v.tlsSettings(owner, at, l)
}

// routing checks a rule's sni and alpn entries.
func (v *validator) routing(owner string, i int, r *Rule) {
	seen := map[string]bool{}
	for _, e := range r.SNI {
		at := v.line("rule", i, "sni", quoted(e))
		if err := CheckSNI(e); err != nil {
			v.errs.add(v.file, at, "%s: %v", owner, err)
		}
		if seen[strings.ToLower(e)] {
			v.errs.add(v.file, at, "%s: sni %q is listed twice", owner, e)
		}
		seen[strings.ToLower(e)] = true
	}
	if len(r.ALPN) > 0 && len(r.SNI) == 0 {
		v.errs.add(v.file, v.line("rule", i, "alpn"), "%s: alpn needs sni (a rule without sni takes what the rules with sni did not)", owner)
	}
	for _, p := range r.ALPN {
		if err := checkALPN(p); err != nil {
			v.errs.add(v.file, v.line("rule", i, "alpn"), "%s: %v", owner, err)
		}
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
		if err := checkSources(ap, s.Source); err != nil {
			v.errs.add(v.file, v.line("rule", i, "source"), "%s: server %s: %v", owner, s.Address, err)
		}
		v.transparent(owner, i, s.Address, s, ap.Addr().Is6())
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
		if err := checkSources(netip.AddrPort{}, n.Server.Source); err != nil {
			v.errs.add(v.file, v.line("rule", i, "source"), "%s: server %s: %v", owner, n.Entry, err)
		}
		v.transparent(owner, i, n.Entry, n.Server, false)
	}
}

// transparent checks a server's transparent mode: it may be had, and it
// does not come with source (both say where connections leave from).
func (v *validator) transparent(owner string, i int, label string, s Server, v6 bool) {
	if !s.Transparent {
		return
	}
	at := v.line("rule", i, "transparent")
	if len(s.Source) > 0 {
		v.errs.add(v.file, at, "%s: server %s: transparent and source exclude each other", owner, label)
		return
	}
	if err := checkTransparent(v6); err != nil {
		v.errs.add(v.file, at, "%s: server %s: %v", owner, label, err)
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
	if err := s.Keepalive.check(); err != nil {
		v.errs.add(v.file, at, "%s: server %s: %v", owner, label, err)
	}
	if s.IsolateAfter < 1 || s.IsolateAfter > MaxIsolateAfter {
		v.errs.add(v.file, v.line("rule", i, "isolate_after"), "%s: server %s: isolate_after must be 1-%d, not %d", owner, label, MaxIsolateAfter, s.IsolateAfter)
	}
	if s.OnDown != "" && s.OnDown != OnDownShutdown {
		v.errs.add(v.file, v.line("rule", i, "on_down"), "%s: server %s: on_down must be %q or left out, not %q", owner, label, OnDownShutdown, s.OnDown)
	}
	v.serverTLSSettings(owner, at, label, s.TLS)
	if hc := s.HealthCheck; hc != nil {
		for _, err := range hc.problems {
			v.errs.add(v.file, at, "%s: server %s: health_check: %v", owner, label, err)
		}
		if hc.CA != "" {
			v.caFile(owner+": server "+label+": health_check: ca", at, hc.CA)
		}
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
