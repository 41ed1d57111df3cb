package conf

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// ParseTOML decodes and resolves g6.toml text. file names the source in errors.
func ParseTOML(file string, src []byte) (*Config, error) {
	if err := checkNesting(file, src); err != nil {
		return nil, err
	}
	var fc fileConfig
	md, err := toml.Decode(string(src), &fc)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, ErrorList{{File: file, Line: pe.Position.Line, Msg: tomlMessage(pe)}}
		}
		if m := decodeErrRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, ErrorList{{File: file, Line: line, Msg: m[2] + ": " + m[3]}}
		}
		return nil, ErrorList{{File: file, Msg: err.Error()}}
	}
	var errs ErrorList
	loc := newLocator(src)
	undecoded := slices.DeleteFunc(md.Undecoded(), checkedByHand)
	for i, k := range undecoded {
		if i == maxUnknownKeys {
			errs.add(file, 0, "%d more unknown keys not shown", len(undecoded)-i)
			break
		}
		errs.add(file, undecodedLine(loc, k), "unknown key %q", k.String())
	}
	cfg := resolveTOML(file, &fc, loc, &errs)
	validate(cfg, func(section string, n int, needles ...string) int {
		return loc.find(section, n, needles...)
	}, &errs)
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errs
	}
	return cfg, nil
}

// decodeErrRE picks the line out of BurntSushi/toml's type errors, which are
// plain errors rather than ParseErrors.
var decodeErrRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

func tomlMessage(pe toml.ParseError) string {
	msg := pe.Message
	if pe.LastKey != "" {
		msg = fmt.Sprintf("%s: %s", pe.LastKey, msg)
	}
	return msg
}

// checkedByHand: a key inside a listen entry's tls.certificates, which
// BurntSushi/toml does not mark decoded (it marks an Unmarshaler's tables
// and arrays of tables, not an inline array of inline tables) and whose
// decoder (decodeCerts) has already refused an unknown key.
func checkedByHand(k toml.Key) bool {
	for i := 0; i+2 < len(k); i++ {
		if k[i] == "listen" && k[i+1] == "tls" && k[i+2] == "certificates" {
			return true
		}
	}
	return false
}

// maxUnknownKeys bounds the unknown keys reported: finding one's line
// costs a scan of its sections.
const maxUnknownKeys = 20

// undecodedLine finds the line of an unknown key: in the first section of
// its table that has it (top-level keys are in the part before the first
// header).
func undecodedLine(loc *locator, k toml.Key) int {
	if len(k) == 0 {
		return 0
	}
	top, last := k[0], k[len(k)-1]
	if len(k) == 1 {
		top = ""
	}
	for n := 0; n < loc.sections(top); n++ {
		from, _ := loc.section(top, n)
		if line := loc.key(top, n, last); line != from+1 || strings.Contains(loc.lines[from], last) {
			return line
		}
	}
	return loc.key(top, 0, last)
}

// resolveTOML applies inheritance and fills defaults.
func resolveTOML(file string, fc *fileConfig, loc *locator, errs *ErrorList) *Config {
	g := fc.Global
	cfg := &Config{File: file, Global: Global{
		Workers:          deref(g.Workers, 0),
		Moratorium:       deref(g.Moratorium, DefaultMoratorium),
		ConnectTimeout:   deref(g.ConnectTimeout, DefaultConnectTimeout),
		DrainTimeout:     deref(g.DrainTimeout, DefaultDrainTimeout),
		Backlog:          deref(g.Backlog, DefaultBacklog),
		LogLevel:         deref(g.LogLevel, "info"),
		LogFile:          deref(g.LogFile, ""),
		AccessLog:        deref(g.AccessLog, ""),
		AccessFormat:     deref(g.AccessFormat, "text"),
		Metrics:          deref(g.Metrics, ""),
		Console:          deref(g.Console, ""),
		ConsoleToken:     deref(g.ConsoleToken, ""),
		ConsoleHosts:     g.ConsoleHosts,
		MaxInspecting:    int64(deref(g.MaxInspecting, DefaultMaxInspecting)),
		MaxSessions:      int64(deref(g.MaxSessions, DefaultMaxSessions)),
		HTTPMaxConns:     int64(deref(g.HTTPMaxConns, DefaultHTTPMaxConns)),
		HTTPMaxPerIP:     int64(deref(g.HTTPMaxPerIP, DefaultHTTPMaxPerIP)),
		HTTPIdleTimeout:  deref(g.HTTPIdle, DefaultHTTPIdleTimeout),
		HTTPWriteTimeout: deref(g.HTTPWrite, DefaultHTTPWriteTimeout),
		CPUAffinity:      deref(g.CPUAffinity, false),
		Splice:           deref(g.Splice, SpliceAuto),
		Handoff:          deref(g.Handoff, true),
		WorkerSteering:   deref(g.WorkerSteering, SteerHash),
		Accel:            deref(g.Accel, AccelOff),
		StateFile:        deref(g.StateFile, ""),
		Resolvers:        g.Resolvers,
		ResolveInterval:  deref(g.ResolveEvery, DefaultResolveInterval),
		ResolveHold:      deref(g.ResolveHold, DefaultResolveHold),
	}}
	for _, r := range g.Resolvers {
		if _, err := ParseResolver(r); err != nil {
			errs.add(file, loc.key("global", 0, "resolvers"), "global: %v", err)
		}
	}
	if cfg.Global.ResolveInterval < MinResolveInterval {
		errs.add(file, loc.key("global", 0, "resolve_interval"), "global: resolve_interval must be at least 1s, not %s", cfg.Global.ResolveInterval)
	}
	if cfg.Global.ResolveHold < 0 {
		errs.add(file, loc.key("global", 0, "resolve_hold"), "global: resolve_hold must not be negative")
	}
	for key, a := range map[string]string{"metrics": cfg.Global.Metrics, "console": cfg.Global.Console} {
		if _, err := ParseHostPort(a); err != nil && a != "" {
			errs.add(file, loc.key("global", 0, key), "global: %s %v", key, err)
		}
	}
	if cfg.Global.MaxInspecting < 1 {
		errs.add(file, loc.key("global", 0, "max_inspecting"), "global: max_inspecting must be at least 1")
	}
	if cfg.Global.HTTPMaxConns < 1 || cfg.Global.HTTPMaxPerIP < 1 {
		errs.add(file, loc.key("global", 0, "http_max_connections"), "global: http_max_connections and http_max_connections_per_ip must be at least 1")
	}
	if cfg.Global.HTTPIdleTimeout <= 0 || cfg.Global.HTTPWriteTimeout <= 0 {
		errs.add(file, loc.key("global", 0, "http_idle_timeout"), "global: http_idle_timeout and http_write_timeout must be above 0")
	}
	for _, h := range cfg.Global.ConsoleHosts {
		if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err != nil && (h == "" || strings.ContainsAny(h, "/:[] \t")) {
			errs.add(file, loc.key("global", 0, "console_hosts"), "global: console_hosts: %q: want a host name or address without port", h)
		}
	}
	if f := cfg.Global.AccessFormat; f != "text" && f != "json" {
		errs.add(file, loc.key("global", 0, "access_log_format"), "global: access_log_format must be \"text\" or \"json\", not %q", f)
	}
	if m := cfg.Global.Splice; m != SpliceAuto && m != SpliceAlways && m != SpliceOff {
		errs.add(file, loc.key("global", 0, "splice"), "global: splice must be \"auto\", \"always\" or \"off\", not %q", m)
	}
	if m := cfg.Global.WorkerSteering; m != SteerHash && m != SteerLeast {
		errs.add(file, loc.key("global", 0, "worker_steering"), "global: worker_steering must be \"least\" or \"hash\", not %q", m)
	}
	if m := cfg.Global.Accel; m != AccelOff && m != AccelSockmap && m != AccelAuto {
		errs.add(file, loc.key("global", 0, "accel"), "global: accel must be \"sockmap\", \"off\" or \"auto\", not %q", m)
	}
	if cfg.Global.Workers < 0 || cfg.Global.Workers > MaxWorkers {
		errs.add(file, loc.key("global", 0, "workers"), "global: workers must be 0-%d, not %d", MaxWorkers, cfg.Global.Workers)
	}
	if cfg.Global.Backlog < 1 {
		errs.add(file, loc.key("global", 0, "backlog"), "global: backlog must be positive")
	}
	if _, err := ParseLevel(cfg.Global.LogLevel); err != nil {
		errs.add(file, loc.key("global", 0, "log_level"), "global: %v", err)
	}
	cfg.Cluster = resolveCluster(file, fc.Cluster, loc, errs)
	if a := fc.Admin; a != nil {
		cfg.Admin = &Admin{
			ID:      a.ID,
			Clients: resolveClients(g.clientProps, a.ClientDefaults, a.Clients),
			Listen:  resolveListen(file, listenProps{}, listenProps{}, a.Listen),
			Line:    loc.find("admin", 0),
		}
		if cfg.Admin.ID == "" {
			cfg.Admin.ID = "admin"
		}
	}
	for i, r := range fc.Rules {
		ruleWide := serverProps{ProxyProtocol: r.ProxyProtocol, SlowStart: pickPtr(g.SlowStart, r.SlowStart), IsolateAfter: pickPtr(g.IsolateAfter, r.IsolateAfter), OnDown: r.OnDown, Source: r.Source, Transparent: r.Transparent, TLS: r.TLS}
		servers, names := splitServers(resolveServers(file, ruleWide, r.ServerDefaults, r.Servers), r.ServerDefaults, r.Servers)
		cfg.Rules = append(cfg.Rules, Rule{
			ID:                r.ID,
			Algorithm:         r.Algorithm,
			Protocol:          deref(r.Protocol, ProtocolTCP),
			Responses:         int64(deref(r.Responses, 0)),
			Clients:           resolveClients(g.clientProps, r.ClientDefaults, r.Clients),
			Listen:            resolveListen(file, g.listenProps, r.ListenDefaults, r.Listen),
			Servers:           servers,
			Names:             names,
			ServerDefaults:    resolveServers(file, ruleWide, r.ServerDefaults, []serverEntry{{}})[0],
			HashBalanceFactor: pick(0, g.HashBalance, r.HashBalance),
			MaxConnections:    int64(deref(r.MaxConnections, 0)),
			SNI:               r.SNI,
			ALPN:              r.ALPN,
			Line:              loc.find("rule", i),
		})
		if cr := &cfg.Rules[i]; cr.Protocol == ProtocolUDP {
			for j := range cr.Listen {
				if cr.Listen[j].Timeout == 0 {
					cr.Listen[j].Timeout = DefaultUDPTimeout
				}
			}
		}
		if f := cfg.Rules[i].HashBalanceFactor; f != 0 && (f <= 1 || f > 100) {
			errs.add(file, loc.key("rule", i, "hash_balance_factor"), "rule %q: hash_balance_factor must be above 1 and at most 100 (0 = no bound), not %g", r.ID, f)
		}
		if hc := r.HealthCheck; hc != nil {
			c, problems := hc.resolve(file)
			for _, err := range problems {
				errs.add(file, loc.key("rule", i, "health_check"), "rule %q: health_check: %v", r.ID, err)
			}
			cfg.Rules[i].HealthCheck = c
		}
		if o := r.Outlier; o != nil {
			c, err := o.resolve()
			if err != nil {
				errs.add(file, loc.key("rule", i, "outlier"), "rule %q: outlier: %v", r.ID, err)
			}
			cfg.Rules[i].Outlier = c
		}
		if a := r.AgentCheck; a != nil {
			c, err := a.resolve()
			if err != nil {
				errs.add(file, loc.key("rule", i, "agent_check"), "rule %q: agent_check: %v", r.ID, err)
			}
			cfg.Rules[i].AgentCheck = c
		}
	}
	if n := deref(g.MaxServers, 0); n != 0 {
		cfg.Global.MaxServers = n
		if total := cfg.serverCount(); n < total || n > MaxServerSlots {
			errs.add(file, loc.key("global", 0, "max_servers"), "global: max_servers must hold the config's %d servers and be at most %d, not %d", total, MaxServerSlots, n)
		}
	}
	return cfg
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// pick returns the most specific value that was written.
func pick[T any](def T, levels ...*T) T {
	v := def
	for _, p := range levels {
		if p != nil {
			v = *p
		}
	}
	return v
}

func resolveClients(global, list clientProps, entries []clientEntry) []Client {
	out := make([]Client, 0, len(entries))
	for _, e := range entries {
		p, _ := ParsePattern(e.Pattern) // validate reports a bad pattern
		if p.Text == "" {
			p.Text = e.Pattern
		}
		out = append(out, Client{
			Pattern:             p,
			Deny:                deref(e.Deny, false),
			MaxConnections:      int64(pick(0, global.MaxConnections, list.MaxConnections, e.MaxConnections)),
			MaxIP:               int64(pick(0, global.MaxIP, list.MaxIP, e.MaxIP)),
			MaxConnectionsPerIP: int64(pick(0, global.MaxConnectionsPerIP, list.MaxConnectionsPerIP, e.MaxConnectionsPerIP)),
			MaxRate:             pick(Rate{}, global.MaxRate, list.MaxRate, e.MaxRate),
			MaxRateTotal:        pick(Rate{}, global.MaxRateTotal, list.MaxRateTotal, e.MaxRateTotal),
		})
	}
	return out
}

func resolveListen(file string, global, list listenProps, entries []listenEntry) []Listen {
	out := make([]Listen, 0, len(entries))
	for _, e := range entries {
		out = append(out, Listen{
			Address:        e.Address,
			Timeout:        pick(0, global.Timeout, list.Timeout, e.Timeout),
			InspectTimeout: pick(DefaultInspectTimeout, global.InspectTimeout, list.InspectTimeout, e.InspectTimeout),
			AcceptProxy:    pick("", global.AcceptProxy, list.AcceptProxy, e.AcceptProxy),
			ProxySources:   pick(nil, global.ProxySources, list.ProxySources, e.ProxySources),
			Keepalive:      pickPtr(global.Keepalive, list.Keepalive, e.Keepalive).resolve(),
			QuickAck:       pick(false, global.QuickAck, list.QuickAck, e.QuickAck),
			TLS:            pickPtr(global.TLS, list.TLS, e.TLS).resolve(file),
			Responses:      int64(pick(0, global.Responses, list.Responses, e.Responses)),
		})
	}
	return out
}

// resolveServers applies, most specific last: the rule-wide keys (and
// [global]'s slow_start and isolate_after), server_defaults, the entry.
func resolveServers(file string, rule, list serverProps, entries []serverEntry) []Server {
	out := make([]Server, 0, len(entries))
	for _, e := range entries {
		out = append(out, Server{
			Address:        e.Address + e.SRV, // one of them is empty
			MaxConnections: int64(pick(0, list.MaxConnections, e.MaxConnections)),
			Heartbeat:      pick(0, list.Heartbeat, e.Heartbeat),
			Weight:         int(pick(1, list.Weight, e.Weight)),
			ProxyProtocol:  pick("", rule.ProxyProtocol, list.ProxyProtocol, e.ProxyProtocol),
			Backup:         pick(false, list.Backup, e.Backup),
			SlowStart:      pick(0, rule.SlowStart, list.SlowStart, e.SlowStart),
			IsolateAfter:   int(pick(DefaultIsolateAfter, rule.IsolateAfter, list.IsolateAfter, e.IsolateAfter)),
			OnDown:         pick("", rule.OnDown, list.OnDown, e.OnDown),
			Keepalive:      pickPtr(list.Keepalive, e.Keepalive).resolve(),
			QuickAck:       pick(false, list.QuickAck, e.QuickAck),
			Source:         pick(nil, rule.Source, list.Source, e.Source),
			Transparent:    pick(false, rule.Transparent, list.Transparent, e.Transparent),
			TLS:            pickPtr(rule.TLS, list.TLS, e.TLS).resolve(file),
			HealthCheck:    pickPtr(list.HealthCheck, e.HealthCheck).resolveQuiet(file),
		})
	}
	return out
}

// splitServers takes the name entries out of a rule's resolved servers
// (entries: the same, as written).
func splitServers(all []Server, list serverProps, entries []serverEntry) ([]Server, []Name) {
	var servers []Server
	var names []Name
	for i, s := range all {
		e := entries[i]
		if e.SRV == "" && !isNameEntry(e.Address) {
			servers = append(servers, s)
			continue
		}
		n := Name{Entry: s.Address, Host: e.SRV, SRV: e.SRV != "", At: len(servers), Server: s,
			WeightSet: list.Weight != nil || e.Weight != nil}
		n.Server.Address = ""
		if !n.SRV {
			n.Host, n.Port, _ = ParseNameEntry(e.Address) // validate reports a bad one
		}
		if t := n.Server.TLS; t != nil && t.ServerName == "" && !n.SRV {
			named := *t
			named.ServerName = n.Host // the name the operator gave is the one to verify
			n.Server.TLS = &named
		}
		names = append(names, n)
	}
	return servers, names
}

// pickPtr returns the most specific pointer that is set.
func pickPtr[T any](levels ...*T) *T {
	var v *T
	for _, p := range levels {
		if p != nil {
			v = p
		}
	}
	return v
}
