package conf

import (
	"slices"
	"time"
)

// Algorithm names, as G6 spelled them.
const (
	AlgMasterStandby = "MS"
	AlgRoundRobin    = "RR"
	AlgLeastConns    = "LC"
	AlgResponseTime  = "RT"
	AlgRandom        = "RD"
	AlgHash          = "HS"
	AlgPowerOfTwo    = "P2" // not in G6
	AlgAdmin         = "G"
)

// Algorithms are the balancing algorithms a rule may name: G6's, in its
// order, then g6's own.
var Algorithms = []string{AlgMasterStandby, AlgRoundRobin, AlgLeastConns, AlgResponseTime, AlgRandom, AlgHash, AlgPowerOfTwo}

// IsAlgorithm reports whether name is one of Algorithms.
func IsAlgorithm(name string) bool { return slices.Contains(Algorithms, name) }

// isLegacyAlgorithm reports whether name may follow a rule id in G6.conf:
// G6's algorithms and its admin rule.
func isLegacyAlgorithm(name string) bool {
	return name == AlgAdmin || slices.Contains(Algorithms[:6], name)
}

// MaxWeight bounds a server's weight (HAProxy's range); weight 0 takes no
// new connections.
const MaxWeight = 256

// DefaultIsolateAfter is G6's rule: one failed connect isolates a server;
// MaxIsolateAfter bounds isolate_after.
const (
	DefaultIsolateAfter = 1
	MaxIsolateAfter     = 1000
)

// OnDownShutdown is the on_down value that closes a server's live sessions
// when a health check or a missed heartbeat marks it down.
const OnDownShutdown = "shutdown-sessions"

// MinServerSlots is the least max_servers defaults to; MaxServerSlots is
// the most it may be.
const (
	MinServerSlots = 256
	MaxServerSlots = 4 * MaxConfigServers
)

// ServerSlots is the effective max_servers: as written, or four times the
// config's servers and at least MinServerSlots.
func (c *Config) ServerSlots() int {
	if c.Global.MaxServers > 0 {
		return c.Global.MaxServers
	}
	return min(max(4*c.serverCount(), MinServerSlots), MaxServerSlots)
}

func (c *Config) serverCount() int {
	n := 0
	for _, r := range c.Rules {
		n += len(r.Servers) + nameEstimate*len(r.Names)
	}
	return n
}

// Defaults for keys left out of a config.
const (
	DefaultMoratorium     = Duration(10 * time.Second)
	DefaultConnectTimeout = Duration(5 * time.Second)
	DefaultDrainTimeout   = Duration(60 * time.Second)
	DefaultBacklog        = 4096
)

// Config is a fully resolved configuration: every value is the effective one.
type Config struct {
	File     string
	Global   Global
	Admin    *Admin   `json:",omitempty"`
	Cluster  *Cluster `json:",omitempty"`
	Rules    []Rule
	Warnings []string `json:",omitempty"` // legacy constructs G6 took silently
	// Files are the bytes of every file the TLS settings name, by path, as
	// validation read and checked them: what the master hands the workers
	// (ipc.Setup.Files), so a file changed since is not served unchecked.
	Files map[string][]byte `json:"-"`
}

// Global holds process-wide settings and the defaults that rules inherit.
type Global struct {
	Workers        int
	Moratorium     Duration
	ConnectTimeout Duration
	DrainTimeout   Duration
	Backlog        int
	LogLevel       string
	LogFile        string
	AccessLog      string // "" = off
	AccessFormat   string // "text" or "json"
	Metrics        string // address of the Prometheus /metrics endpoint, "" = off
	Console        string `json:",omitempty"` // address of the web console and /api/v1, "" = off; may be Metrics
	ConsoleToken   string `json:"-"`          // bearer token the console's actions need besides [admin]'s patterns; "" = patterns only
	// ConsoleHosts are the Host header values a console action may carry
	// (host names or addresses, without port); none = the console's own
	// address and localhost.
	ConsoleHosts []string `json:",omitempty"`
	// The master's HTTP endpoints (metrics, console): connections held at
	// once per endpoint and per client IP, how long a connection may sit
	// between requests, and how long writing one answer may take.
	HTTPMaxConns     int64
	HTTPMaxPerIP     int64
	HTTPIdleTimeout  Duration
	HTTPWriteTimeout Duration
	CPUAffinity      bool   // pin worker slot i to the i-th allowed CPU
	Splice           string // SpliceAuto, SpliceAlways or SpliceOff
	// Handoff: on HUP and USR2 the old workers pass their established
	// sessions to the new ones instead of draining them (ipc/handoff.go).
	Handoff bool
	// WorkerSteering picks the worker of each new connection: SteerHash
	// (the kernel's reuseport hash) or SteerLeast (a BPF program: the live
	// worker with the fewest sessions; package steer).
	WorkerSteering string
	// Accel: AccelOff, AccelSockmap (established sessions forwarded in the
	// kernel, package accel) or AccelAuto (sockmap where this host allows).
	Accel string
	// MaxServers is how many server slots the shared region holds: every
	// rule's servers, those added at runtime, and those kept for sessions
	// still open on a removed server. Fixed at start. 0 = ServerSlots'
	// default.
	MaxServers int
	// MaxInspecting is how many connections a worker reads before routing
	// at once (PROXY headers, ClientHellos); past it new ones on inspected
	// addresses are refused (inspect_full).
	MaxInspecting int64
	// MaxSessions bounds a worker's UDP session table (udp.go).
	MaxSessions int64
	StateFile   string // where runtime server changes are kept, "" = in memory only
	// Resolvers are the DNS servers name entries are resolved with
	// (IP:PORT); none = the nameservers of /etc/resolv.conf.
	Resolvers       []string `json:",omitempty"`
	ResolveInterval Duration // upper bound between lookups of a name; a shorter TTL wins, never below 1 s
	ResolveHold     Duration // how long a name's addresses outlive failed lookups
}

// DefaultMaxInspecting bounds a worker's memory for connections not yet
// routed: each may hold up to 21 KiB of header and ClientHello, so about
// 43 MB at worst.
const DefaultMaxInspecting = 2048

// Defaults of the HTTP endpoints' limits (Global.HTTP*).
const (
	DefaultHTTPMaxConns     = 512
	DefaultHTTPMaxPerIP     = 32
	DefaultHTTPIdleTimeout  = Duration(30 * time.Second)
	DefaultHTTPWriteTimeout = Duration(30 * time.Second)
)

// Splice modes: when a direction's bytes move by splice(2) through a pipe
// instead of being copied through the worker.
const (
	SpliceAuto   = "auto"   // after a direction has carried 256 KiB (a bulk stream)
	SpliceAlways = "always" // from the first byte
	SpliceOff    = "off"    // never
)

// Worker steering modes (worker_steering).
const (
	SteerHash  = "hash"  // the kernel hashes each connection's 4-tuple over the workers' sockets
	SteerLeast = "least" // the live worker with the fewest sessions; a stalled one gets none
)

// Accel modes (accel).
const (
	AccelOff     = "off"     // every byte through the worker (copy or splice)
	AccelSockmap = "sockmap" // keep-alive sessions forwarded in the kernel
	AccelAuto    = "auto"    // sockmap if this host allows it, else off
)

// Cluster joins the node to a fleet: every node with the same etcd and
// prefix shares runtime server changes and lists the others.
type Cluster struct {
	Etcd     []string // endpoints, http:// or https:// URLs
	Prefix   string   // e.g. "/g6/prod": starts with '/', no trailing '/'
	Node     string   // this node's name; default the hostname
	CAFile   string   // TLS to etcd: the CA, and a client certificate if etcd wants one
	CertFile string
	KeyFile  string
	Username string   // etcd authentication
	Password string   `json:"-"`
	Timeout  Duration // dial timeout
}

// DefaultEtcdTimeout is how long a node waits for etcd to answer a dial.
const DefaultEtcdTimeout = Duration(2 * time.Second)

// Admin is the admin listener (G6's "G" rule).
type Admin struct {
	ID      string
	Listen  []Listen
	Clients []Client
	Servers []Server `json:",omitempty"` // kept from legacy G rules; never used
	Line    int
}

// Rule is one balancing rule.
type Rule struct {
	ID        string
	Algorithm string
	// Protocol is ProtocolTCP or ProtocolUDP (udp.go); Responses ends a
	// UDP session once the server has sent that many datagrams for each
	// one the client sent (nginx's proxy_responses; 0 = no such end),
	// unless its listen entry sets its own.
	Protocol    string
	Responses   int64 `json:",omitempty"`
	Clients     []Client
	Listen      []Listen
	Servers     []Server     // literal addresses
	Names       []Name       `json:",omitempty"` // entries by DNS name, resolved by the master
	HealthCheck *HealthCheck `json:",omitempty"`
	// AgentCheck asks each server's agent for its state and weight.
	AgentCheck *AgentCheck `json:",omitempty"`
	// Outlier ejects servers that fail, answer late or lose packets,
	// judged from what the workers saw (nil = off).
	Outlier *Outlier `json:",omitempty"`
	// HashBalanceFactor bounds HS: a server holding more than this times
	// the mean load per weight is passed over (0 = no bound).
	HashBalanceFactor float64 `json:",omitempty"`
	// MaxConnections bounds the rule's sessions, all clients together
	// (0 = none). Its count is one more client slot, RuleTotalKey.
	MaxConnections int64 `json:",omitempty"`
	// SNI routes TLS by server name: connections to a listen address that
	// several rules share go to the rule whose entry matches the
	// ClientHello's name (exact before "*." wildcards), else to the one
	// without sni. ALPN, if set, must also meet one protocol offered.
	SNI  []string `json:",omitempty"`
	ALPN []string `json:",omitempty"`
	// ServerDefaults is what a server added at runtime starts from: the
	// rule's server_defaults (and rule-wide keys) with no address.
	ServerDefaults Server
	Line           int
}

// Client is a client pattern with its effective limits (0 = unlimited).
// A Deny pattern closes the clients it is the first match for.
type Client struct {
	Pattern             Pattern
	Deny                bool `json:",omitempty"`
	MaxConnections      int64
	MaxIP               int64
	MaxConnectionsPerIP int64
	MaxRate             Rate `json:",omitzero"` // new connections per client IP
	MaxRateTotal        Rate `json:",omitzero"` // new connections of all clients of the pattern
}

// Listen is a listen address with its effective settings. Rules that
// share an address share its socket, so they agree on the inspection
// settings (validate).
type Listen struct {
	Address string
	Timeout Duration // idle timeout, 0 = none
	// InspectTimeout bounds each look before routing: the PROXY header,
	// then the ClientHello.
	InspectTimeout Duration `json:",omitempty"`
	AcceptProxy    string   `json:",omitempty"` // "", "v1", "v2" or "any": a PROXY header is read first
	ProxySources   []string `json:",omitempty"` // who may send one: CIDRs or IPs, as written (ParseSources)
	// Keepalive and QuickAck are set on the client's socket at accept.
	Keepalive Keepalive `json:",omitzero"`
	QuickAck  bool      `json:",omitempty"`
	// TLS, when set, terminates TLS on the address (tls.go).
	TLS *ListenTLS `json:",omitempty"`
	// Responses: a UDP session on this address ends once the server has
	// sent that many datagrams per client datagram (0 = the rule's).
	Responses int64 `json:",omitempty"`
}

// Server is a backend with its effective settings.
type Server struct {
	Address        string
	MaxConnections int64    // 0 = unlimited
	Heartbeat      Duration // 0 = no heartbeat; >0 starts down until a report
	Weight         int
	ProxyProtocol  string   `json:",omitempty"` // "", "v1" or "v2": header sent before the client's bytes
	Backup         bool     `json:",omitempty"` // used only when no other server of the rule can take a connection
	SlowStart      Duration `json:",omitempty"` // ramp from a small share to full weight after coming back
	// IsolateAfter: connect failures in a row that isolate the server for
	// the moratorium (DefaultIsolateAfter, as G6).
	IsolateAfter int    `json:",omitempty"`
	OnDown       string `json:",omitempty"` // "" or OnDownShutdown
	From         string `json:",omitempty"` // the Name entry a resolved server came from
	// Keepalive and QuickAck are set on g6's socket to the server.
	Keepalive Keepalive `json:",omitzero"`
	QuickAck  bool      `json:",omitempty"`
	// Source: the addresses g6's connections to the server are bound to,
	// taken in turn; none = the kernel's choice by route.
	Source Sources `json:",omitempty"`
	// Transparent: connect from the client's own address (IP_TRANSPARENT).
	Transparent bool `json:",omitempty"`
	// TLS, when set, originates TLS to the server (servertls.go).
	TLS *ServerTLS `json:",omitempty"`
	// HealthCheck is this server's own check (its entry's or the rule's
	// server_defaults'); nil = the rule's health_check.
	HealthCheck *HealthCheck `json:",omitempty"`
}
