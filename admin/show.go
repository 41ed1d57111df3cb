package admin

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"g6/conf"
	"g6/fleet"
	"g6/ipc"
	"g6/pool"
	"g6/resolve"
	"g6/shared"

	"github.com/shirou/gopsutil/v3/process"
)

// ServerState is a server's state as the admin commands report it.
type ServerState struct {
	Rule       string  `json:"rule"`
	Address    string  `json:"address"`
	From       string  `json:"from,omitempty"` // the name entry that yielded the address
	State      string  `json:"state"`          // up, down, ejected, disabled, draining, heartbeat-wait, removed
	Heartbeat  float64 `json:"heartbeat_seconds"`
	Until      int64   `json:"until_unix"` // when a disable, drain or moratorium ends; 0 = none, -1 = until enabled
	Active     int64   `json:"active"`
	Total      int64   `json:"total"`
	Failures   int64   `json:"failures"`
	FromServer int64   `json:"bytes_from_server"`
	FromClient int64   `json:"bytes_to_server"`
	RTms       float64 `json:"response_ms"` // the RT algorithm's moving average of FirstByte's samples
	// Quantiles of the server's histograms (shared.Histogram), in ms.
	Connect   Quantiles                  `json:"connect_ms"`
	FirstByte Quantiles                  `json:"first_byte_ms"`
	Duration  Quantiles                  `json:"session_duration_ms"`
	hist      [3][shared.NBuckets]uint64 // the bucket counts, for show stats per rule
	Weight    int                        `json:"weight"`
	MaxConns  int64                      `json:"max_connections"`
	Backup    bool                       `json:"backup,omitempty"`
	Check     string                     `json:"health_check,omitempty"` // "failing" while the health check holds it down
	// CheckError is why the health check failed last, while it holds
	// the server down.
	CheckError string `json:"health_check_error,omitempty"`
	// Ejected is why the server is out as an outlier (outlier), while it is.
	Ejected string `json:"ejected,omitempty"`
	// Agent is the state the server's agent last said (agent_check).
	Agent string `json:"agent,omitempty"`
	// Where the server and its values come from: "config", "admin",
	// "fleet" or "dns" (pool.Source*).
	Origin       string `json:"source"`
	WeightFrom   string `json:"weight_source"`
	MaxConnsFrom string `json:"max_connections_source"`
	// In a fleet: how many of its live nodes can use the server now.
	FleetUp    int `json:"fleet_up,omitempty"`
	FleetNodes int `json:"fleet_nodes,omitempty"`
}

// Quantiles are p50, p90 and p99 of a histogram, in ms (0 without samples).
type Quantiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

func quantilesOf(counts [shared.NBuckets]uint64) Quantiles {
	ms := func(q float64) float64 { return float64(shared.Quantile(counts, q)) / 1e6 }
	return Quantiles{P50: ms(0.5), P90: ms(0.9), P99: ms(0.99)}
}

func (q Quantiles) String() string { return fmt.Sprintf("%.2f/%.2f/%.2f", q.P50, q.P90, q.P99) }

// addFleetView fills FleetUp and FleetNodes from the registry.
func addFleetView(states []ServerState, nodes []fleet.NodeInfo) {
	for i := range states {
		s := &states[i]
		s.FleetNodes = len(nodes)
		s.FleetUp = len(nodes)
		for _, n := range nodes {
			if slices.Contains(n.Down, s.Rule+" "+s.Address) {
				s.FleetUp--
			}
		}
	}
}

func serverState(e *pool.Entry, slot *shared.ServerSlot, snap *Snapshot, now int64, wall time.Time) ServerState {
	s := &e.Server
	st := ServerState{Rule: e.Rule, Address: s.Address, From: s.From, State: "up", Heartbeat: s.Heartbeat.D().Seconds(),
		Active: slot.Active.Load(), Total: slot.Total.Load(), Failures: slot.Failures.Load(),
		FromServer: slot.FromServer.Load(), FromClient: slot.FromClient.Load(),
		RTms: float64(slot.RTAvg.Load()) / 1e6, Weight: int(slot.Weight.Load()), MaxConns: slot.MaxConns.Load(),
		Backup: s.Backup, Origin: e.Origin, WeightFrom: e.WeightFrom, MaxConnsFrom: e.MaxConnsFrom, Agent: e.Agent}
	for i, h := range []*shared.Histogram{&slot.Connect, &slot.FirstByte, &slot.Duration} {
		st.hist[i], _ = h.Counts()
	}
	st.Connect, st.FirstByte, st.Duration = quantilesOf(st.hist[0]), quantilesOf(st.hist[1]), quantilesOf(st.hist[2])
	toWall := func(mono int64) int64 {
		if mono == shared.Forever {
			return -1
		}
		return wall.Add(time.Duration(mono - now)).Unix()
	}
	flags := slot.Flags.Load()
	switch {
	case slot.Member.Load() == 0:
		st.State = "removed"
	case flags&shared.FlagDisabled != 0 && slot.DisabledUntil.Load() > now:
		st.State, st.Until = "disabled", toWall(slot.DisabledUntil.Load())
	case flags&shared.FlagDraining != 0:
		st.State, st.Until = "draining", toWall(slot.DrainUntil.Load())
	case slot.MoratoriumUntil.Load() > now:
		st.State, st.Until = "down", toWall(slot.MoratoriumUntil.Load())
	case flags&shared.FlagEjected != 0 && slot.EjectedUntil.Load() > now:
		st.State, st.Until, st.Ejected = "ejected", toWall(slot.EjectedUntil.Load()), snap.Ejected[e.Slot]
	case flags&shared.FlagCheckDown != 0:
		st.State, st.Check, st.CheckError = "down", "failing", snap.CheckErrors[e.Slot]
	case flags&shared.FlagAgentDown != 0 && e.Agent == pool.AgentDrain:
		st.State = "draining"
	case flags&shared.FlagAgentDown != 0:
		st.State = "down"
	case s.Heartbeat > 0 && slot.HeartbeatUntil.Load() <= now:
		st.State = "heartbeat-wait"
	}
	return st
}

// allServers lists every rule's servers in order, then the removed ones
// that still have sessions.
func allServers(snap *Snapshot) []ServerState {
	now, wall := shared.Now(), time.Now()
	var out []ServerState
	for _, es := range snap.Servers {
		for j := range es {
			out = append(out, serverState(&es[j], snap.Region.Server(es[j].Slot), snap, now, wall))
		}
	}
	for j := range snap.Gone {
		out = append(out, serverState(&snap.Gone[j], snap.Region.Server(snap.Gone[j].Slot), snap, now, wall))
	}
	return out
}

// RuleInfo is one rule in show rules json.
type RuleInfo struct {
	ID        string        `json:"id"`
	Algorithm string        `json:"algorithm"`
	Clients   []string      `json:"clients"`
	Listen    []string      `json:"listen"`
	SNI       []string      `json:"sni,omitempty"` // JSON only: the text keeps G6's layout
	ALPN      []string      `json:"alpn,omitempty"`
	Servers   []ServerState `json:"servers,omitempty"`
	// Panic: every server that could serve is isolated by moratorium
	// alone, so they are tried anyway (since PanicSince, unix seconds).
	Panic            bool  `json:"panic"`
	PanicSince       int64 `json:"panic_since_unix,omitempty"`
	PanicConnections int64 `json:"panic_connections"`
	// Protocol is "tcp" or "udp"; a UDP rule counts datagrams each way
	// and those it dropped.
	Protocol            string `json:"protocol"`
	DatagramsFromClient int64  `json:"datagrams_from_client,omitempty"`
	DatagramsFromServer int64  `json:"datagrams_from_server,omitempty"`
	DatagramsDropped    int64  `json:"datagrams_dropped,omitempty"`
}

// PanicSince is when rule i of snap entered panic, zero if it is not in
// panic.
func PanicSince(snap *Snapshot, i int) time.Time {
	since := snap.Region.Rule(snap.Rules[i]).PanicSince.Load()
	if since == 0 {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(since - shared.Now()))
}

// showRules prints G6's layout: ID | ALG | CLIENTS - LISTENS > SERVER(HB|DOWN|UNTIL) ...,
// then " | panic" while the rule is in panic.
func showRules(snap *Snapshot) (any, string) {
	var rules []RuleInfo
	if a := snap.Config.Admin; a != nil {
		ri := RuleInfo{ID: a.ID, Algorithm: "G", Protocol: conf.ProtocolTCP}
		for _, c := range a.Clients {
			ri.Clients = append(ri.Clients, c.Pattern.Text)
		}
		for _, l := range a.Listen {
			ri.Listen = append(ri.Listen, l.Address)
		}
		rules = append(rules, ri)
	}
	states := allServers(snap)
	for i, r := range snap.Config.Rules {
		n := len(snap.Servers[i])
		rs := snap.Region.Rule(snap.Rules[i])
		ri := RuleInfo{ID: r.ID, Algorithm: r.Algorithm, SNI: r.SNI, ALPN: r.ALPN, Servers: states[:n],
			PanicConnections: rs.PanicConnections.Load(), Protocol: r.Protocol}
		if r.Protocol == conf.ProtocolUDP {
			ri.DatagramsFromClient, ri.DatagramsFromServer = rs.DatagramsFromClient.Load(), rs.DatagramsFromServer.Load()
			ri.DatagramsDropped = rs.DatagramsDropped.Load()
		}
		if at := PanicSince(snap, i); !at.IsZero() {
			ri.Panic, ri.PanicSince = true, at.Unix()
		}
		states = states[n:]
		for _, c := range r.Clients {
			ri.Clients = append(ri.Clients, c.Pattern.Text)
		}
		for _, l := range r.Listen {
			ri.Listen = append(ri.Listen, l.Address)
		}
		rules = append(rules, ri)
	}
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "%s | %s | %s - %s", r.ID, r.Algorithm, strings.Join(r.Clients, " "), strings.Join(r.Listen, " "))
		if len(r.Servers) > 0 {
			b.WriteString(" >")
			for _, s := range r.Servers {
				down := 0
				if s.State != "up" {
					down = 1
				}
				fmt.Fprintf(&b, " %s(%g|%d|%d)", s.Address, s.Heartbeat, down, s.Until)
			}
		}
		if r.Panic {
			b.WriteString(" | panic") // g6's: G6's layout ends before it
		}
		if r.Protocol == conf.ProtocolUDP {
			fmt.Fprintf(&b, " | udp %d/%d datagrams, %d dropped", r.DatagramsFromClient, r.DatagramsFromServer, r.DatagramsDropped)
		}
		b.WriteByte('\n')
	}
	if len(rules) == 0 {
		b.WriteString("no rules\n")
	}
	return map[string]any{"rules": rules}, b.String()
}

func showServers(snap *Snapshot, nodes []fleet.NodeInfo) (any, string) {
	states := allServers(snap)
	addFleetView(states, nodes)
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tSERVER\tSTATE\tACTIVE\tTOTAL\tFAILURES\tRESPONSE_MS\tFIRST_BYTE_MS_P50/90/99\tWEIGHT\tMAX_CONNECTIONS\tSOURCE")
	for _, s := range states {
		server := s.Address
		if s.From != "" {
			server = s.From + " → " + server
		}
		if s.Backup {
			server += " (backup)"
		}
		fleetUp := ""
		if s.FleetNodes > 0 {
			fleetUp = fmt.Sprintf("\tup on %d/%d nodes", s.FleetUp, s.FleetNodes)
		}
		state := s.State
		if s.Agent != "" && s.Agent != pool.AgentUp {
			state += " (agent: " + s.Agent + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%.2f\t%s\t%d (%s)\t%d (%s)\t%s%s\n", s.Rule, server, state, s.Active, s.Total,
			s.Failures, s.RTms, s.FirstByte, s.Weight, s.WeightFrom, s.MaxConns, s.MaxConnsFrom, s.Origin, fleetUp)
	}
	tw.Flush()
	for _, s := range states {
		if s.CheckError != "" {
			fmt.Fprintf(&b, "%s %s down: check: %s\n", s.Rule, s.Address, s.CheckError)
		}
		if s.Ejected != "" {
			fmt.Fprintf(&b, "%s %s ejected: %s\n", s.Rule, s.Address, s.Ejected)
		}
	}
	return map[string]any{"servers": states}, b.String()
}

// WorkerInfo is one worker in show workers.
type WorkerInfo struct {
	Slot     int     `json:"slot"`
	Pid      int     `json:"pid"`
	Uptime   float64 `json:"uptime_seconds"`
	Sessions int64   `json:"sessions"`
	CPU      float64 `json:"cpu_percent"`
	RSS      uint64  `json:"rss_bytes"`
	Restarts int     `json:"restarts"`
	Steering string  `json:"steering"` // "hash", "least", or "away": steered, not answering its master
}

func showWorkers(snap *Snapshot) (any, string) {
	var ws []WorkerInfo
	for _, w := range snap.Workers {
		wi := WorkerInfo{Slot: w.Slot, Pid: w.Pid, Uptime: time.Since(w.Started).Seconds(), Restarts: w.Restarts,
			Steering: w.Steering}
		for _, es := range snap.Servers {
			for _, e := range es {
				wi.Sessions += int64(snap.Region.Server(e.Slot).PerWorker[w.Counter].Load())
			}
		}
		if p, err := process.NewProcess(int32(w.Pid)); err == nil {
			wi.CPU, _ = p.CPUPercent()
			if mi, err := p.MemoryInfo(); err == nil {
				wi.RSS = mi.RSS
			}
		}
		ws = append(ws, wi)
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tPID\tUPTIME\tSESSIONS\tCPU%\tRSS_KB\tRESTARTS\tSTEERING")
	for _, w := range ws {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%.1f\t%d\t%d\t%s\n", w.Slot, w.Pid,
			time.Duration(w.Uptime*float64(time.Second)).Round(time.Second), w.Sessions, w.CPU, w.RSS/1024, w.Restarts, w.Steering)
	}
	tw.Flush()
	return map[string]any{"workers": ws}, b.String()
}

// Stats are the totals of show stats.
type Stats struct {
	Uptime     float64       `json:"uptime_seconds"`
	Workers    int           `json:"workers"`
	Sessions   int64         `json:"sessions"`
	Total      int64         `json:"connections_total"`
	PerSecond  float64       `json:"connections_per_second"`
	Failures   int64         `json:"connect_failures"`
	Refused    int64         `json:"refused_by_client_limits"`
	RateLimit  int64         `json:"refused_by_rate_limits"`
	FromServer int64         `json:"bytes_from_servers"`
	FromClient int64         `json:"bytes_to_servers"`
	ServersUp  int           `json:"servers_up"`
	ServersAll int           `json:"servers"`
	Rules      []RuleLatency `json:"rules"`
	// UDP rules' datagrams; the text shows them when there is a UDP rule.
	DatagramsFromClients int64 `json:"udp_datagrams_from_clients"`
	DatagramsFromServers int64 `json:"udp_datagrams_from_servers"`
	DatagramsDropped     int64 `json:"udp_datagrams_dropped"`
}

// RuleLatency is one rule's latency quantiles in show stats: its servers'
// histograms added up.
type RuleLatency struct {
	Rule      string    `json:"rule"`
	Connect   Quantiles `json:"connect_ms"`
	FirstByte Quantiles `json:"first_byte_ms"`
	Duration  Quantiles `json:"session_duration_ms"`
}

func showStats(snap *Snapshot) (any, string) {
	st := Stats{Uptime: time.Since(snap.Started).Seconds(), Workers: len(snap.Workers), Rules: []RuleLatency{}}
	byRule := map[string]*[3][shared.NBuckets]uint64{}
	for _, r := range snap.Config.Rules {
		byRule[r.ID] = new([3][shared.NBuckets]uint64)
	}
	for _, s := range allServers(snap) {
		if acc := byRule[s.Rule]; acc != nil {
			for i := range s.hist {
				shared.Add(&acc[i], s.hist[i])
			}
		}
		st.Sessions += s.Active
		st.ServersAll++
		if s.State == "up" {
			st.ServersUp++
		}
	}
	for _, slots := range snap.Clients {
		for _, i := range slots {
			st.Refused += snap.Region.Client(i).Refused.Load()
			st.RateLimit += snap.Region.Client(i).RateLimited.Load()
		}
	}
	// The rules' own totals: a server removed with its counts does not
	// take them along (they must never go down).
	udp := false
	for i, slot := range snap.Rules {
		rs := snap.Region.Rule(slot)
		if snap.Config.Rules[i].Protocol == conf.ProtocolUDP {
			udp = true
			st.DatagramsFromClients += rs.DatagramsFromClient.Load()
			st.DatagramsFromServers += rs.DatagramsFromServer.Load()
			st.DatagramsDropped += rs.DatagramsDropped.Load()
		}
		st.Total += rs.Connections.Load()
		st.Failures += rs.Failures.Load()
		st.FromServer += rs.FromServer.Load()
		st.FromClient += rs.FromClient.Load()
	}
	st.PerSecond = snap.Rate
	window := "last 10 s"
	if !snap.RateKnown && st.Uptime > 0 {
		st.PerSecond, window = float64(st.Total)/st.Uptime, "since start"
	}
	text := fmt.Sprintf("uptime: %s\nworkers: %d\nsessions: %d\nconnections: %d\nconnections/s: %.1f ("+window+")\n"+
		"connect failures: %d\nrefused by client limits: %d\nrefused by rate limits: %d\nbytes from servers: %d\nbytes to servers: %d\nservers up: %d of %d\n",
		time.Duration(st.Uptime*float64(time.Second)).Round(time.Second), st.Workers, st.Sessions, st.Total, st.PerSecond,
		st.Failures, st.Refused, st.RateLimit, st.FromServer, st.FromClient, st.ServersUp, st.ServersAll)
	if udp {
		text += fmt.Sprintf("udp datagrams: %d from clients, %d from servers, %d dropped\n", st.DatagramsFromClients, st.DatagramsFromServers, st.DatagramsDropped)
	}
	for _, r := range snap.Config.Rules {
		acc := byRule[r.ID]
		rl := RuleLatency{Rule: r.ID, Connect: quantilesOf(acc[0]), FirstByte: quantilesOf(acc[1]), Duration: quantilesOf(acc[2])}
		st.Rules = append(st.Rules, rl)
		text += fmt.Sprintf("rule %s ms p50/p90/p99: connect %s, first byte %s, session %s\n", r.ID, rl.Connect, rl.FirstByte, rl.Duration)
	}
	return st, text
}

func showSessions(sessions []ipc.Session, missing []string) (any, string) {
	var b strings.Builder
	for _, s := range sessions {
		fmt.Fprintf(&b, "%s | %s | %s - %s > %s | worker %d pid %d | %.0fs | %d/%d bytes", s.Rule, s.State,
			s.Client, s.Listen, s.Server, s.Worker, s.Pid, s.Age, s.FromClient, s.FromServer)
		if s.SNI != "" {
			fmt.Fprintf(&b, " | sni %s", s.SNI)
		}
		if s.Via != "" {
			fmt.Fprintf(&b, " | via %s", s.Via)
		}
		if s.Path != "" && s.Path != "copy" {
			fmt.Fprintf(&b, " | %s", s.Path)
		}
		if s.TLS != "" {
			fmt.Fprintf(&b, " | %s", s.TLS)
		}
		if s.Protocol == "udp" {
			fmt.Fprintf(&b, " | udp %d/%d datagrams", s.DatagramsFromClient, s.DatagramsFromServer)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "%d sessions\n", len(sessions))
	for _, m := range missing {
		fmt.Fprintf(&b, "missing: %s\n", m)
	}
	if sessions == nil {
		sessions = []ipc.Session{}
	}
	return map[string]any{"sessions": sessions, "missing": missing}, b.String()
}

// showNodes lists the fleet: one row per node, this one and those whose
// config differs from most nodes' marked.
func showNodes(nodes []fleet.NodeInfo) (any, string) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tVERSION\tUPTIME\tCONFIG\tWORKERS\tSESSIONS\tCONN/S\tNOTE")
	for _, n := range nodes {
		var notes []string
		if n.Self {
			notes = append(notes, "this node")
		}
		if n.ConfigDiffers {
			notes = append(notes, "config differs from most nodes")
		}
		if n.Error != "" {
			notes = append(notes, "refused a config: "+n.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%.1f\t%s\n", n.Node, n.Version,
			time.Since(time.Unix(n.Started, 0)).Round(time.Second), n.ConfigHash, n.Workers, n.Sessions, n.Rate, strings.Join(notes, "; "))
	}
	tw.Flush()
	return map[string]any{"nodes": nodes}, b.String()
}

// showResolvers lists every name entry: its last answer, when it was
// looked up and will be again, and how its lookups fail.
func showResolvers(list []resolve.Status, now time.Time) (any, string) {
	doc := map[string]any{"resolvers": list}
	if len(list) == 0 {
		return doc, "no name entries\n"
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENTRY\tTYPE\tRULES\tANSWER\tRESOLVED\tNEXT\tSTATE")
	ago := func(t time.Time) string { return now.Sub(t).Round(time.Second).String() }
	for _, s := range list {
		var answer []string
		for _, r := range s.Answer {
			a := r.Address
			if s.Type == "SRV" {
				a += fmt.Sprintf(" p%d w%d", r.Priority, r.Weight)
			}
			answer = append(answer, fmt.Sprintf("%s ttl %gs", a, r.TTL))
		}
		resolved := "never"
		if !s.ResolvedAt.IsZero() {
			resolved = ago(s.ResolvedAt) + " ago"
		}
		state := "ok"
		switch {
		case s.Error != "" && !s.HeldUntil.IsZero():
			state = fmt.Sprintf("failing for %s, addresses held %s more: %s", ago(s.FailingSince), s.HeldUntil.Sub(now).Round(time.Second), s.Error)
		case s.Error != "":
			state = fmt.Sprintf("failing for %s, no address: %s", ago(s.FailingSince), s.Error)
		case s.Next.IsZero():
			state = "first lookup running"
		case s.Partial != "":
			state = "ok, but failing: " + s.Partial
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\tin %s\t%s\n", s.Entry, s.Type, strings.Join(s.Rules, ","), strings.Join(answer, ", "),
			resolved, max(s.Next.Sub(now), 0).Round(time.Second), state)
	}
	tw.Flush()
	return doc, b.String()
}
