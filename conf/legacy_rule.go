package conf

import (
	"fmt"
	"strings"
)

// lentry is one address of a list with its own property groups.
type lentry struct {
	text  string
	tok   token
	props lprops
}

// llist is a client, listen or server list: list-level groups and entries.
type llist struct {
	defaults lprops
	entries  []lentry
}

// rule reads "ID ALG clients - listens [> servers] ;".
func (p *lparser) rule() bool {
	idTok, _ := p.next()
	id, ok := utf8Text(idTok.text)
	if !ok {
		p.errAt(idTok, "rule id is neither UTF-8 nor GBK text")
		return false
	}
	if id == ";" || id == "-" || id == ">" || id == ")" || id == "," || id == "=" {
		p.errAt(idTok, "expected a rule id, found %q (a stray ';'?)", id)
		return false
	}
	algTok, ok := p.next()
	if !ok {
		p.eofErr(fmt.Sprintf("after rule id %q", id))
		return false
	}
	if !isLegacyAlgorithm(algTok.text) {
		hint := ""
		if isLegacyAlgorithm(strings.ToUpper(algTok.text)) {
			hint = " (algorithms are upper case)"
		}
		p.errAt(algTok, "rule %q: %q is not an algorithm: %s or %s%s", id, algTok.text,
			AlgAdmin+", "+strings.Join(Algorithms[:len(Algorithms)-1], ", "), Algorithms[len(Algorithms)-1], hint)
		return false
	}
	alg := algTok.text
	g := p.global // global groups count only for the rules after them
	var clients, listens, servers llist
	if !p.list(id, lvClient, &clients, "-") {
		return false
	}
	end := p.list(id, lvListen, &listens, ">", ";")
	if !end {
		return false
	}
	last := p.toks[p.pos-1]
	if last.text == ";" && alg != AlgAdmin {
		p.errAt(last, "rule %q: no '>' and servers (only a G rule may end after its listen list)", id)
		return false
	}
	if last.text == ">" && !p.list(id, lvServer, &servers, ";") {
		return false
	}
	p.addRule(idTok, id, alg, &g, &clients, &listens, &servers)
	return true
}

// list reads addresses and groups up to one of the end tokens (consumed).
func (p *lparser) list(id string, lv level, l *llist, ends ...string) bool {
	for {
		t, ok := p.peek()
		if !ok {
			p.eofErr(fmt.Sprintf("in rule %q (missing %q?)", id, ends[len(ends)-1]))
			return false
		}
		for _, e := range ends {
			if t.text == e {
				p.pos++
				return true
			}
		}
		switch t.text {
		case "(":
			target := &l.defaults
			if len(l.entries) > 0 {
				target = &l.entries[len(l.entries)-1].props
			}
			if !p.group(lv, target) {
				return false
			}
		case ";", "-", ">", ")", ",", "=":
			p.errAt(t, "rule %q: unexpected %q in %s", id, t.text, levelName[lv])
			return false
		default:
			p.pos++
			l.entries = append(l.entries, lentry{text: t.text, tok: t})
		}
	}
}

// addRule turns a parsed rule into g6 semantics.
func (p *lparser) addRule(idTok token, id, alg string, g *lprops, clients, listens, servers *llist) {
	n := len(p.cfg.Rules)
	section := "rule"
	if alg == AlgAdmin {
		section, n = "admin", 0
	}
	var cs []Client
	for _, e := range clients.entries {
		pat, err := ParsePattern(e.text)
		if err != nil {
			p.errAt(e.tok, "rule %q: %v", id, err)
			continue
		}
		p.lines[fmt.Sprintf("%s/%d/%s", section, n, e.text)] = e.tok.line
		cs = append(cs, Client{Pattern: pat,
			MaxConnections:      int64(pick(0, g.maxConns, clients.defaults.maxConns, e.props.maxConns)),
			MaxIP:               int64(pick(0, g.maxIP, clients.defaults.maxIP, e.props.maxIP)),
			MaxConnectionsPerIP: int64(pick(0, g.maxPerIP, clients.defaults.maxPerIP, e.props.maxPerIP)),
		})
	}
	if len(clients.entries) == 0 {
		p.errAt(idTok, "rule %q has no client patterns: G6 refused every connection; write \"*:*\" to accept everyone", id)
	}
	var ls []Listen
	for _, e := range listens.entries {
		p.lines[fmt.Sprintf("%s/%d/%s", section, n, e.text)] = e.tok.line
		ls = append(ls, Listen{Address: e.text, Timeout: pick(0, g.timeout, listens.defaults.timeout, e.props.timeout), InspectTimeout: DefaultInspectTimeout})
	}
	var ss []Server
	seen := map[string]int{}
	for _, e := range servers.entries {
		p.lines[fmt.Sprintf("%s/%d/%s", section, n, e.text)] = e.tok.line
		if k, dup := seen[e.text]; dup {
			ss[k].Weight++
			p.warn(e.tok.line, "rule %q repeats server %s: G6 gave it one more share of round robin; g6 writes weight = %d", id, e.text, ss[k].Weight)
			continue
		}
		seen[e.text] = len(ss)
		ss = append(ss, p.server(id, e, &servers.defaults))
	}
	if g.moratorium != nil {
		p.cfg.Global.Moratorium = *g.moratorium
	}
	if alg == AlgAdmin {
		p.addAdmin(idTok, id, cs, ls, ss)
		return
	}
	p.cfg.Rules = append(p.cfg.Rules, Rule{ID: id, Algorithm: alg, Protocol: ProtocolTCP, Clients: cs, Listen: ls, Servers: ss, ServerDefaults: Server{Weight: 1, IsolateAfter: DefaultIsolateAfter}, Line: idTok.line})
}

func (p *lparser) server(id string, e lentry, d *lprops) Server {
	s := Server{Address: e.text, Weight: 1, IsolateAfter: DefaultIsolateAfter,
		MaxConnections: int64(pick(0, d.maxConns, e.props.maxConns)),
		Heartbeat:      pick(0, d.heartbeat, e.props.heartbeat)}
	// For a server, connections per IP are its connections (one IP).
	if per := int64(pick(0, d.maxPerIP, e.props.maxPerIP)); per > 0 && (s.MaxConnections == 0 || per < s.MaxConnections) {
		s.MaxConnections = per
	}
	if pick(0, d.maxIP, e.props.maxIP) > 0 {
		p.warn(e.tok.line, "rule %q: max_ip means nothing for server %s (one IP); dropped", id, e.text)
	}
	return s
}

func (p *lparser) addAdmin(idTok token, id string, cs []Client, ls []Listen, ss []Server) {
	p.admins++
	for i := range ls {
		ls[i].Timeout = 0 // G6 never timed out admin connections
	}
	if len(ss) > 0 {
		p.warn(idTok.line, "admin rule %q lists servers; G6 never used them, g6 drops them", id)
	}
	if p.cfg.Admin == nil {
		p.cfg.Admin = &Admin{ID: id, Clients: cs, Listen: ls, Line: idTok.line}
		return
	}
	p.warn(idTok.line, "second admin rule %q: g6 has one admin listener; its addresses and clients join %q", id, p.cfg.Admin.ID)
	p.cfg.Admin.Listen = append(p.cfg.Admin.Listen, ls...)
	p.cfg.Admin.Clients = append(p.cfg.Admin.Clients, cs...)
}
