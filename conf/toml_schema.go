package conf

import (
	"fmt"
	"sort"
)

// The raw g6.toml schema. Pointers mark "not written" so that inheritance can
// tell an explicit 0 (which cancels an inherited value) from an absent key.

type fileConfig struct {
	Global  fileGlobal   `toml:"global"`
	Admin   *fileAdmin   `toml:"admin"`
	Cluster *fileCluster `toml:"cluster"`
	Rules   []fileRule   `toml:"rule"`
}

type fileGlobal struct {
	Workers        *int      `toml:"workers"`
	Moratorium     *Duration `toml:"moratorium"`
	ConnectTimeout *Duration `toml:"connect_timeout"`
	DrainTimeout   *Duration `toml:"drain_timeout"`
	Backlog        *int      `toml:"backlog"`
	LogLevel       *string   `toml:"log_level"`
	LogFile        *string   `toml:"log_file"`
	AccessLog      *string   `toml:"access_log"`
	AccessFormat   *string   `toml:"access_log_format"`
	Metrics        *string   `toml:"metrics"`
	Console        *string   `toml:"console"`
	ConsoleToken   *string   `toml:"console_token"`
	ConsoleHosts   []string  `toml:"console_hosts"`
	HTTPMaxConns   *Count    `toml:"http_max_connections"`
	HTTPMaxPerIP   *Count    `toml:"http_max_connections_per_ip"`
	HTTPIdle       *Duration `toml:"http_idle_timeout"`
	HTTPWrite      *Duration `toml:"http_write_timeout"`
	CPUAffinity    *bool     `toml:"cpu_affinity"`
	Splice         *string   `toml:"splice"`
	Handoff        *bool     `toml:"handoff"`
	WorkerSteering *string   `toml:"worker_steering"`
	Accel          *string   `toml:"accel"`
	MaxServers     *int      `toml:"max_servers"`
	MaxInspecting  *Count    `toml:"max_inspecting"`
	MaxSessions    *Count    `toml:"max_sessions"` // UDP sessions per worker (udp.go)
	StateFile      *string   `toml:"state_file"`
	SlowStart      *Duration `toml:"slow_start"`
	IsolateAfter   *Count    `toml:"isolate_after"`
	HashBalance    *float64  `toml:"hash_balance_factor"`
	Resolvers      []string  `toml:"resolvers"`
	ResolveEvery   *Duration `toml:"resolve_interval"`
	ResolveHold    *Duration `toml:"resolve_hold"`
	listenProps
	clientProps
}

type fileCluster struct {
	Etcd     []string  `toml:"etcd"`
	Prefix   *string   `toml:"prefix"`
	Node     *string   `toml:"node"`
	CAFile   *string   `toml:"ca_file"`
	CertFile *string   `toml:"cert_file"`
	KeyFile  *string   `toml:"key_file"`
	Username *string   `toml:"username"`
	Password *string   `toml:"password"`
	Timeout  *Duration `toml:"dial_timeout"`
}

type fileAdmin struct {
	ID             string        `toml:"id"`
	ClientDefaults clientProps   `toml:"client_defaults"`
	Clients        []clientEntry `toml:"clients"`
	Listen         []listenEntry `toml:"listen"`
}

type fileRule struct {
	ID             string         `toml:"id"`
	Algorithm      string         `toml:"algorithm"`
	Protocol       *string        `toml:"protocol"`  // "tcp" or "udp" (udp.go)
	Responses      *Count         `toml:"responses"` // UDP: datagrams from the server per client datagram that end a session
	ProxyProtocol  *string        `toml:"proxy_protocol"`
	SlowStart      *Duration      `toml:"slow_start"`
	IsolateAfter   *Count         `toml:"isolate_after"`
	OnDown         *string        `toml:"on_down"`
	Source         *Sources       `toml:"source"`
	Transparent    *bool          `toml:"transparent"`
	TLS            *fileServerTLS `toml:"tls"`             // to the servers (servertls.go)
	MaxConnections *Count         `toml:"max_connections"` // the rule's sessions, all clients together
	HashBalance    *float64       `toml:"hash_balance_factor"`
	HealthCheck    *fileCheck     `toml:"health_check"`
	AgentCheck     *fileAgent     `toml:"agent_check"`
	Outlier        *fileOutlier   `toml:"outlier"`
	ClientDefaults clientProps    `toml:"client_defaults"`
	Clients        []clientEntry  `toml:"clients"`
	SNI            []string       `toml:"sni"`
	ALPN           []string       `toml:"alpn"`
	ListenDefaults listenProps    `toml:"listen_defaults"`
	Listen         []listenEntry  `toml:"listen"`
	ServerDefaults serverProps    `toml:"server_defaults"`
	Servers        []serverEntry  `toml:"servers"`
}

type fileOutlier struct {
	ConsecutiveFailures *int      `toml:"consecutive_failures"`
	Interval            *Duration `toml:"interval"`
	BaseEjection        *Duration `toml:"base_ejection"`
	MaxEjectionPercent  *int      `toml:"max_ejection_percent"`
	LatencyFactor       *float64  `toml:"latency_factor"`
	RetransFactor       *float64  `toml:"retrans_factor"`
}

type fileAgent struct {
	Port     *int      `toml:"port"`
	Interval *Duration `toml:"interval"`
	Timeout  *Duration `toml:"timeout"`
	Send     *string   `toml:"send"`
}

type fileCheck struct {
	Type         *string       `toml:"type"`
	Interval     *Duration     `toml:"interval"`
	Timeout      *Duration     `toml:"timeout"`
	Rise         *int          `toml:"rise"`
	Fall         *int          `toml:"fall"`
	Send         *string       `toml:"send"`
	Expect       *string       `toml:"expect"`
	Method       *string       `toml:"method"`
	Path         *string       `toml:"path"`
	Host         *string       `toml:"host"`
	ExpectStatus *StatusRanges `toml:"expect_status"`
	ExpectBody   *string       `toml:"expect_body"`
	TLS          *bool         `toml:"tls"`
	Verify       *bool         `toml:"verify"`
	ServerName   *string       `toml:"server_name"`
	CA           *string       `toml:"ca"`
	MinDays      *int          `toml:"min_days"`
	Role         *string       `toml:"role"`
	User         *string       `toml:"user"`
	Password     *string       `toml:"password"`
	Database     *string       `toml:"database"`
	Name         *string       `toml:"name"`
}

type clientProps struct {
	MaxConnections      *Count `toml:"max_connections"`
	MaxIP               *Count `toml:"max_ip"`
	MaxConnectionsPerIP *Count `toml:"max_connections_per_ip"`
	MaxRate             *Rate  `toml:"max_rate"`
	MaxRateTotal        *Rate  `toml:"max_rate_total"`
}

type listenProps struct {
	Timeout        *Duration      `toml:"timeout"`
	InspectTimeout *Duration      `toml:"inspect_timeout"`
	AcceptProxy    *string        `toml:"accept_proxy"`
	ProxySources   *[]string      `toml:"proxy_sources"`
	Keepalive      *fileKeepalive `toml:"keepalive"` // the client side
	QuickAck       *bool          `toml:"quickack"`
	TLS            *fileListenTLS `toml:"tls"` // terminate TLS (tls.go)
	Responses      *Count         `toml:"responses"`
}

type serverProps struct {
	MaxConnections *Count         `toml:"max_connections"`
	Heartbeat      *Duration      `toml:"heartbeat"`
	Weight         *Count         `toml:"weight"`
	ProxyProtocol  *string        `toml:"proxy_protocol"`
	Backup         *bool          `toml:"backup"`
	SlowStart      *Duration      `toml:"slow_start"`
	IsolateAfter   *Count         `toml:"isolate_after"`
	OnDown         *string        `toml:"on_down"`
	Keepalive      *fileKeepalive `toml:"keepalive"` // the server side
	QuickAck       *bool          `toml:"quickack"`
	Source         *Sources       `toml:"source"`
	Transparent    *bool          `toml:"transparent"`
	TLS            *fileServerTLS `toml:"tls"` // originate TLS (servertls.go)
	HealthCheck    *fileCheck     `toml:"health_check"`
}

// clientEntry is "PATTERN" or { pattern = "PATTERN", max_connections = N, deny = true, ... }.
type clientEntry struct {
	Pattern string
	Deny    *bool
	clientProps
}

type listenEntry struct {
	Address string
	listenProps
}

// serverEntry is "IP:PORT", "NAME:PORT", or a table with address or srv.
type serverEntry struct {
	Address string
	SRV     string
	serverProps
}

func (e *clientEntry) UnmarshalTOML(v any) error {
	return decodeEntry(v, "pattern", &e.Pattern, map[string]any{
		"max_connections": &e.MaxConnections, "max_ip": &e.MaxIP,
		"max_connections_per_ip": &e.MaxConnectionsPerIP, "deny": &e.Deny,
		"max_rate": &e.MaxRate, "max_rate_total": &e.MaxRateTotal,
	})
}

func (e *listenEntry) UnmarshalTOML(v any) error {
	return decodeEntry(v, "address", &e.Address, map[string]any{"timeout": &e.Timeout,
		"inspect_timeout": &e.InspectTimeout, "accept_proxy": &e.AcceptProxy, "proxy_sources": &e.ProxySources,
		"keepalive": &e.Keepalive, "quickack": &e.QuickAck, "tls": &e.TLS, "responses": &e.Responses})
}

func (e *serverEntry) UnmarshalTOML(v any) error {
	var srv *string
	props := map[string]any{
		"max_connections": &e.MaxConnections, "heartbeat": &e.Heartbeat, "weight": &e.Weight,
		"proxy_protocol": &e.ProxyProtocol, "backup": &e.Backup, "slow_start": &e.SlowStart, "isolate_after": &e.IsolateAfter, "on_down": &e.OnDown,
		"keepalive": &e.Keepalive, "quickack": &e.QuickAck, "source": &e.Source,
		"transparent": &e.Transparent, "srv": &srv, "tls": &e.TLS, "health_check": &e.HealthCheck,
	}
	if m, ok := v.(map[string]any); ok && m["srv"] != nil {
		if m["address"] != nil {
			return fmt.Errorf("entry %v has both address and srv: give one", m)
		}
		delete(props, "srv")
		return decodeEntry(v, "srv", &e.SRV, props)
	}
	return decodeEntry(v, "address", &e.Address, props)
}

// decodeEntry fills a string-or-table entry. props maps each allowed key to a
// **Count, **Duration, **Rate, **string, **bool, **[]string, **fileKeepalive,
// **fileListenTLS, **fileServerTLS or **Sources field.
func decodeEntry(v any, nameKey string, name *string, props map[string]any) error {
	switch x := v.(type) {
	case string:
		*name = x
		return nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := decodeEntryKey(k, x[k], nameKey, name, props); err != nil {
				return err
			}
		}
		if *name == "" {
			return fmt.Errorf("entry %v has no %q", x, nameKey)
		}
		return nil
	}
	return fmt.Errorf("entry must be a string or a table, not %T", v)
}

func decodeEntryKey(k string, val any, nameKey string, name *string, props map[string]any) error {
	if k == nameKey {
		s, ok := val.(string)
		if !ok {
			return fmt.Errorf("%s must be a string, not %T", nameKey, val)
		}
		*name = s
		return nil
	}
	switch dst := props[k].(type) {
	case **Count:
		*dst = new(Count)
		if err := (*dst).UnmarshalTOML(val); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	case **Duration:
		*dst = new(Duration)
		if err := (*dst).UnmarshalTOML(val); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	case **string:
		str, ok := val.(string)
		if !ok {
			return fmt.Errorf("%s must be a string, not %T", k, val)
		}
		*dst = &str
	case **bool:
		b, ok := val.(bool)
		if !ok {
			return fmt.Errorf("%s must be true or false, not %T", k, val)
		}
		*dst = &b
	case **Rate:
		*dst = new(Rate)
		if err := (*dst).UnmarshalTOML(val); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	case **Sources:
		*dst = new(Sources)
		if err := (*dst).UnmarshalTOML(val); err != nil {
			return err
		}
	case **fileListenTLS:
		t, err := decodeListenTLS(val)
		if err != nil {
			return err
		}
		*dst = t
	case **fileServerTLS:
		t, err := decodeServerTLS(val)
		if err != nil {
			return err
		}
		*dst = t
	case **fileCheck:
		c, err := decodeCheck(val)
		if err != nil {
			return err
		}
		*dst = c
	case **fileKeepalive:
		k, err := decodeKeepalive(val)
		if err != nil {
			return err
		}
		*dst = k
	case **[]string:
		list, ok := val.([]any)
		if !ok {
			return fmt.Errorf("%s must be a list of strings, not %T", k, val)
		}
		strs := make([]string, 0, len(list))
		for _, x := range list {
			str, ok := x.(string)
			if !ok {
				return fmt.Errorf("%s must be a list of strings, not %T", k, x)
			}
			strs = append(strs, str)
		}
		*dst = &strs
	default:
		allowed := []string{nameKey}
		for a := range props {
			allowed = append(allowed, a)
		}
		sort.Strings(allowed)
		return fmt.Errorf("unknown key %q (allowed: %v)", k, allowed)
	}
	return nil
}
