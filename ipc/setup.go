package ipc

import "g6/conf"

// Inherited file descriptors of a worker, in ForkExec order.
const (
	FdControl   = 3 // the worker's end of the socketpair
	FdShared    = 4 // the shared region's memfd
	FdListeners = 5 // first listening socket; Setup.Listeners names each in order
)

// Setup is the body of TypeConfig: everything a worker needs to serve.
type Setup struct {
	Slot       int          // worker slot, 0..workers-1 (which listening sockets it has)
	Counter    int          // index of its per-worker counters in the shared region
	Generation int          // config generation, for logs
	Config     *conf.Config // resolved config
	Listeners  []string     // listen address of fd FdListeners+i
	RuleSlots  []int        // shared rule slot of each rule
	Clients    [][]int      // shared client slot of each rule's client patterns, then of its max_connections if set
	// Steer is the fd of the worker steering table (package steer), after
	// the listeners; 0 = not steered.
	Steer int `json:",omitempty"`
	// Accel: pair established sessions in a sockmap (package accel).
	Accel bool `json:",omitempty"`
	// Files are the contents of the files the config's TLS names
	// (conf.Config.Files), as the master read and checked them: workers
	// never read them.
	Files map[string][]byte `json:",omitempty"`
	// TicketKeys encrypt and decrypt TLS session tickets, the newest
	// first: the same in every worker, so a session resumes on any.
	TicketKeys [][32]byte `json:",omitempty"`
	// HoldUDP: workers of an older generation will hand their sessions
	// to this one, so it reads its UDP listen sockets only once they have
	// handed their UDP sessions (ipc.HandoffBatch.UDPDone), or after a
	// short bound.
	HoldUDP bool `json:",omitempty"`
}

// TicketKeys is TypeTicketKeys's body: the keys after a rotation.
type TicketKeys struct {
	Keys [][32]byte
}

// Session is one live proxied session, as a worker reports it.
type Session struct {
	Rule       string  `json:"rule"`
	Client     string  `json:"client"`
	Listen     string  `json:"listen"`
	Server     string  `json:"server"`
	State      string  `json:"state"`
	Worker     int     `json:"worker"`
	Pid        int     `json:"pid"`
	Age        float64 `json:"age_seconds"`
	FromClient int64   `json:"bytes_from_client"`
	FromServer int64   `json:"bytes_from_server"`
	SNI        string  `json:"sni,omitempty"` // the ClientHello's server name, on addresses with sni rules
	// Path is how its bytes move now: "copy", "splice", or "sockmap" (a
	// direction is forwarded in the kernel).
	Path string `json:"path"`
	// TLS is the version g6 terminated the client's TLS with ("" = none).
	TLS string `json:"tls,omitempty"`
	// Via is the peer that sent a PROXY header for the client, which is
	// then the header's source; "" when there was none.
	Via string `json:"via,omitempty"`
	// Protocol is "tcp" or "udp"; a UDP session counts its datagrams
	// each way too.
	Protocol            string `json:"protocol"`
	DatagramsFromClient int64  `json:"datagrams_from_client,omitempty"`
	DatagramsFromServer int64  `json:"datagrams_from_server,omitempty"`
}
