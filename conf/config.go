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
	AlgAdmin         = "G"
)

// Algorithms are the balancing algorithms a rule may name, in G6's order.
var Algorithms = []string{AlgMasterStandby, AlgRoundRobin, AlgLeastConns, AlgResponseTime, AlgRandom, AlgHash}

// IsAlgorithm reports whether name is one of Algorithms.
func IsAlgorithm(name string) bool { return slices.Contains(Algorithms, name) }

// isLegacyAlgorithm reports whether name may follow a rule id in G6.conf.
func isLegacyAlgorithm(name string) bool { return name == AlgAdmin || IsAlgorithm(name) }

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
	Admin    *Admin `json:",omitempty"`
	Rules    []Rule
	Warnings []string `json:",omitempty"` // legacy constructs G6 took silently
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
	CPUAffinity    bool   // pin worker slot i to the i-th allowed CPU
	Splice         string // SpliceAuto, SpliceAlways or SpliceOff
}

// Splice modes: when a direction's bytes move by splice(2) through a pipe
// instead of being copied through the worker.
const (
	SpliceAuto   = "auto"   // after a direction has carried 256 KiB (a bulk stream)
	SpliceAlways = "always" // from the first byte
	SpliceOff    = "off"    // never
)

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
	ID          string
	Algorithm   string
	Clients     []Client
	Listen      []Listen
	Servers     []Server
	HealthCheck *HealthCheck `json:",omitempty"`
	Line        int
}

// HealthCheck is a rule's active check of its servers, run by the master.
type HealthCheck struct {
	Interval Duration
	Timeout  Duration
	Rise     int    // passes in a row to come back
	Fall     int    // failures in a row to go down
	Send     string // bytes to send after connecting ("" = connect only)
	Expect   string // the answer must start with these bytes ("" = no check)
}

// Client is a client pattern with its effective limits (0 = unlimited).
type Client struct {
	Pattern             Pattern
	MaxConnections      int64
	MaxIP               int64
	MaxConnectionsPerIP int64
}

// Listen is a listen address with its effective idle timeout (0 = none).
type Listen struct {
	Address string
	Timeout Duration
}

// Server is a backend with its effective settings.
type Server struct {
	Address        string
	MaxConnections int64    // 0 = unlimited
	Heartbeat      Duration // 0 = no heartbeat; >0 starts down until a report
	Weight         int
	ProxyProtocol  string `json:",omitempty"` // "", "v1" or "v2": header sent before the client's bytes
}
