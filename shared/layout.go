package shared

import (
	"sync/atomic"
	"unsafe"
)

// Version is the layout version; bump it on any change to the structs below.
const Version = 17

// MaxWorkers is the number of per-worker counters in each server slot.
const MaxWorkers = 64

const (
	magic      = "G6SHARED"
	headerSize = 128 + 8*MaxWorkers
	keySize    = 96
)

type header struct {
	Magic      [8]byte
	Version    uint32
	HeaderSize uint32
	TotalSize  uint64
	Lock       atomic.Int64 // client table lock: 0 or the holder's pid
	NRules     uint32
	NServers   uint32
	NClients   uint32
	NIPs       uint32
	RuleSize   uint32
	ServerSize uint32
	MaxWorkers uint32
	_          [4]byte
	// AccessLogDropped counts access-log lines the workers could not
	// write (a full disk); the master reports it.
	AccessLogDropped atomic.Int64
	_                [56]byte
	// Owners says which master claimed each per-worker counter slot (its
	// pid; 0 = free): masters of every generation claim and free them
	// here (ClaimWorker), so two can never take the same one.
	Owners [MaxWorkers]atomic.Int64
}

// Forever as a deadline means "until changed".
const Forever = int64(1<<63 - 1)

// Server flags: why a server takes no new connections.
const (
	FlagDisabled  = 1 << iota // disabled by an admin until DisabledUntil
	FlagCheckDown             // the master's health check says down
	FlagDraining              // drained by an admin; sessions left at DrainUntil are closed
	FlagAgentDown             // the server's agent says down, drain or maint
	FlagEjected               // ejected as an outlier until EjectedUntil
)

// Server settings bits (ServerSlot.Settings).
const (
	SetBackup      = 1 << iota // chosen only when no other server of the rule can take a connection
	SetProxyV1                 // send a PROXY v1 header
	SetProxyV2                 // send a PROXY v2 header
	SetQuickAck                // TCP_QUICKACK on the socket to the server
	SetTransparent             // connect from the client's address (IP_TRANSPARENT)
	SetTCPInfo                 // add the server sockets' TCP_INFO retransmits to Retrans/SegsOut (outlier retrans_factor)
)

// ServerSlot is one (rule, server) pair's shared state. The master writes
// the membership and settings block; a worker reads a rule's servers from
// it (Members) and each server's weight and limit at every selection.
type ServerSlot struct {
	Key             [keySize]byte
	Flags           atomic.Int64
	DisabledUntil   atomic.Int64 // CLOCK_MONOTONIC ns; Forever; 0 = not disabled
	HeartbeatUntil  atomic.Int64 // 0 = no report yet
	MoratoriumUntil atomic.Int64
	Active          atomic.Int64
	Total           atomic.Int64 // connections established (failed attempts count in Failures)
	Failures        atomic.Int64
	FromServer      atomic.Int64 // bytes read from the server (sent to the client)
	FromClient      atomic.Int64 // bytes read from the client (sent to the server)
	RTAvg           atomic.Int64 // ns, moving average; 0 = not measured

	// Member is the rule slot + 1 of the rule whose current servers include
	// this one; 0 = in no rule (removed; kept while sessions are open).
	Member     atomic.Int64
	Order      atomic.Int64 // position in the rule: config order, runtime additions after
	Weight     atomic.Int64 // 0..conf.MaxWeight; 0 = no new connections
	MaxConns   atomic.Int64 // 0 = no limit
	Period     atomic.Int64 // ns period of the heartbeat the server must report; 0 = none
	SlowStart  atomic.Int64 // ns the share ramps over after UpSince; 0 = none
	UpSince    atomic.Int64 // when an admin or a check last brought the server back
	DrainUntil atomic.Int64 // FlagDraining: when the sessions left are closed; Forever = never
	Settings   atomic.Int64 // Set* bits
	// Keepalive on the socket to the server (PackKeepalive); 0 = off.
	Keepalive atomic.Int64
	// IsolateAfter is how many connect failures in a row isolate the
	// server (conf isolate_after; 0 counts as 1); FailStreak counts them,
	// and an established connect sets it back to 0. IsolatedAt is when
	// the latest moratorium began: a rule in panic tries the longest
	// isolated server first.
	IsolateAfter atomic.Int64
	FailStreak   atomic.Int64
	IsolatedAt   atomic.Int64
	// Outlier ejection (conf.Outlier): EjectStreak counts failures the
	// server caused in a row (a refused or timed-out connect, a failed TLS
	// handshake, a reset or close before its first byte) and its first
	// byte sets it back to 0; with FlagEjected the server takes no new
	// connections until EjectedUntil. Retrans and SegsOut add up
	// TCP_INFO's tcpi_total_retrans and tcpi_segs_out of its sockets as
	// their sessions end (SetTCPInfo).
	EjectStreak  atomic.Int64
	EjectedUntil atomic.Int64
	Retrans      atomic.Int64
	SegsOut      atomic.Int64

	PerWorker [MaxWorkers]atomic.Int32
	// Latency histograms (histogram.go): connect time, time to the
	// server's first byte, session duration.
	Connect, FirstByte, Duration Histogram
	// TLSProfile names the TLS g6 speaks to the server
	// (conf.ServerTLS.Profile); 0 = plain TCP.
	TLSProfile atomic.Uint64
	// Sources are the addresses connections to the server are bound to
	// (conf.Server.Source), NSources of them, IPv4 mapped; like Addr they
	// are written before the rule's Members moves (SetSources).
	NSources atomic.Int64
	// Addr is the server's IP (16 bytes, IPv4 mapped) and port (big
	// endian), written before Member publishes the slot.
	Addr    [18]byte
	Sources [MaxSources][16]byte
	_       [6]byte
}

// MaxSources is how many source addresses a server slot holds.
const MaxSources = 6

// RuleSlot is one rule's shared state.
type RuleSlot struct {
	Key    [keySize]byte
	Cursor atomic.Uint64
	// Members changes whenever the master changes which servers the rule
	// has (or their settings): workers rebuild their list when it does.
	Members  atomic.Uint64
	NoServer atomic.Int64 // connections closed because no server could take them
	NoMatch  atomic.Int64 // connections closed because no client pattern matched
	// LocalFailures counts connects that failed on this host (no local
	// port, no buffers), which do not isolate the server.
	LocalFailures atomic.Int64
	// Closed while being read before routing (issue #17). They are
	// counted on the rule an address falls back to: its rule without
	// sni, else the first rule listening there.
	InspectTimeout atomic.Int64 // no PROXY header or ClientHello in inspect_timeout
	BadProxy       atomic.Int64 // a malformed PROXY header, or none
	ProxyUntrusted atomic.Int64 // a client outside proxy_sources
	BadHello       atomic.Int64 // a malformed or oversized ClientHello
	NoRule         atomic.Int64 // matched no rule's sni, and the address has no rule without sni
	Denied         atomic.Int64 // the first client pattern that matched has deny = true
	// PanicSince is when the rule entered panic (every server that could
	// serve was isolated by moratorium alone, so they were tried anyway;
	// a worker sets it), 0 when not in panic; the master clears it once a
	// server is usable again. PanicConnections counts the sessions that
	// went through panic.
	PanicSince       atomic.Int64
	PanicConnections atomic.Int64
	// InspectFull: the worker already read max_inspecting connections
	// before routing (counted like the refusals above it).
	InspectFull atomic.Int64
	// The rule's own totals, counted by the workers beside the servers'
	// (which leave with a removed server): connections established,
	// connects that failed, bytes from and to its servers. They only grow.
	Connections atomic.Int64
	Failures    atomic.Int64
	FromServer  atomic.Int64
	FromClient  atomic.Int64
	// TLS handshakes g6 terminated for the rule, by result, and how long
	// the good ones took.
	TLSOK, TLSTimeout, TLSBadHello, TLSNoCert, TLSClientCert, TLSFailed atomic.Int64
	TLSHandshake                                                        Histogram
	// UDP rules (issue #36): datagrams forwarded each way, new sessions
	// refused because the worker's table held max_sessions, and datagrams
	// dropped (no server took the session, a send the kernel refused).
	DatagramsFromClient, DatagramsFromServer atomic.Int64
	SessionsFull, DatagramsDropped           atomic.Int64
}

// TLSResult is a result of a TLS handshake g6 terminated, as
// g6_tls_handshakes_total labels it.
type TLSResult uint8

// Handshake results.
const (
	TLSOK TLSResult = iota
	TLSTimeout
	TLSBadHello
	TLSNoCertificate // client_auth = "require" and the client sent none
	TLSClientCertRefused
	TLSFailed
	tlsResults
)

var tlsResultNames = [tlsResults]string{"ok", "timeout", "bad_hello", "no_certificate", "client_cert_refused", "failed"}

func (r TLSResult) String() string { return tlsResultNames[r] }

// Counter is the rule slot's counter of r.
func (r TLSResult) Counter(s *RuleSlot) *atomic.Int64 {
	return [tlsResults]*atomic.Int64{&s.TLSOK, &s.TLSTimeout, &s.TLSBadHello, &s.TLSNoCert, &s.TLSClientCert, &s.TLSFailed}[r]
}

// TLSResults lists every result, for the metrics.
func TLSResults() []TLSResult {
	return []TLSResult{TLSOK, TLSTimeout, TLSBadHello, TLSNoCertificate, TLSClientCertRefused, TLSFailed}
}

// Refusal is one of a rule slot's counters of connections closed at once,
// with the reason metrics label it with.
type Refusal struct {
	Reason string
	N      *atomic.Int64
}

// Refusals lists the rule slot's counters of connections closed at once
// (client limits are counted on the client slots).
func (s *RuleSlot) Refusals() [10]Refusal {
	return [10]Refusal{{"no_server", &s.NoServer}, {"no_match", &s.NoMatch}, {"denied", &s.Denied},
		{"inspect_timeout", &s.InspectTimeout}, {"bad_proxy", &s.BadProxy},
		{"proxy_untrusted", &s.ProxyUntrusted}, {"bad_hello", &s.BadHello}, {"no_rule", &s.NoRule},
		{"inspect_full", &s.InspectFull}, {"sessions_full", &s.SessionsFull}}
}

// ClientSlot is one client pattern's shared state (guarded by the lock).
type ClientSlot struct {
	Key       [keySize]byte
	Active    int32 // connections admitted through this pattern
	IPs       int32 // distinct source IPs with Active > 0
	Refused   atomic.Int64
	PerWorker [MaxWorkers]int32
	// The pattern's max_rate_total bucket (GCRA: the time its next token
	// is due) and the connections a rate limit refused. Lock-free.
	RateTAT     atomic.Int64
	RateLimited atomic.Int64
}

// rateEntry is one (client pattern, source IP) max_rate bucket in a
// lock-free table of NIPs entries (rate.go). Key 0 is free.
type rateEntry struct {
	Key atomic.Uint64
	TAT atomic.Int64
}

// ipEntry counts one source IP's connections under one client pattern, in
// an open-addressing table (linear probing, backward-shift deletion, so no
// tombstones ever pile up: G6 bug B6 in docs/g6-differences.md). Guarded by the lock.
type ipEntry struct {
	Client    int32 // client slot + 1; 0 = empty
	Total     int32
	IP        [16]byte
	PerWorker [MaxWorkers]uint16
	_         [8]byte
}

const (
	serverSize = int(unsafe.Sizeof(ServerSlot{}))
	ruleSize   = int(unsafe.Sizeof(RuleSlot{}))
	clientSize = int(unsafe.Sizeof(ClientSlot{}))
	ipSize     = int(unsafe.Sizeof(ipEntry{}))
	rateSize   = int(unsafe.Sizeof(rateEntry{}))
)

// Rule, server and client slots are whole cache lines so two workers' counters never share one
// (the golden test, layout_test.go, pins every size and offset to Version).
func init() {
	if unsafe.Sizeof(header{}) != headerSize || serverSize%64 != 0 || ruleSize%64 != 0 ||
		clientSize%64 != 0 || ipSize%32 != 0 {
		panic("shared: a slot is no longer a whole number of cache lines")
	}
}

func regionSize(nRules, nServers, nClients, nIPs int) int {
	return headerSize + nRules*ruleSize + nServers*serverSize + nClients*clientSize + nIPs*(ipSize+rateSize)
}

// PackKeepalive packs TCP keepalive settings into ServerSlot.Keepalive:
// idle and interval in seconds (at most 32767, the kernel's bound), count.
func PackKeepalive(idle, interval, count int) int64 {
	return int64(idle)<<32 | int64(interval)<<16 | int64(count)
}

// UnpackKeepalive is PackKeepalive's inverse.
func UnpackKeepalive(v int64) (idle, interval, count int) {
	return int(v >> 32), int(v >> 16 & 0xffff), int(v & 0xffff)
}
