package ipc

// Session handoff (issue #19): an old worker passes its established
// sessions to a new one over a socketpair of their own (the handoff
// channel), made by the master on HUP or by the new master on USR2 and
// given to each side with TypeDrain (Handoff set) and TypeAdopt, one fd
// attached. On the channel the old worker sends TypeHandoff batches, each
// with two fds per session attached (client, then server); the new worker
// answers each with TypeHandoffAck before it touches any of them, so a
// batch it never acknowledged is still the old worker's to resume.

// HandoffVersion is the session format of TypeHandoff. A receiver that
// reads another version refuses the whole batch; the sender then drains
// those sessions itself. Version 3 only adds UDP sessions and UDPDone to
// a batch, so a version 3 receiver reads version 2 batches too
// (HandoffReads): an upgrade from a g6 without UDP hands its sessions
// over.
const HandoffVersion = 3 // 2: paired sessions (Accel) and their maps; 3: UDP sessions

// HandoffReads reports whether this build reads batches of format v.
func HandoffReads(v int) bool { return v == 2 || v == HandoffVersion }

// HandoffBatchMax bounds the sessions of one batch: two fds each, under
// the kernel's 253 fds per message (SCM_MAX_FD).
const HandoffBatchMax = 100

// HandoffBytesMax bounds the unsent bytes one batch carries (a session
// may carry more, alone in its batch).
const HandoffBytesMax = 8 << 20

// Handoff message types.
const (
	TypeAdopt      = "adopt"       // master → new worker: take sessions from the attached channel
	TypeHandoff    = "handoff"     // old worker → new worker: a HandoffBatch, fds attached
	TypeHandoffAck = "handoff-ack" // new worker → old worker: a HandoffAck
)

// HandoffBatch is the body of TypeHandoff. With Maps, three more fds
// follow the sessions': the sender's sockmap, cookie index and links
// (package accel), which its paired sessions stay in.
//
// UDP sessions (version 3) come first, one fd each (the socket connected
// to the server) after the maps' fds; the batch that carries the last of
// them, or an empty one if the sender has none, says UDPDone. Until every
// channel said it, the receiver does not read its UDP listen sockets, so
// no datagram of a session on its way is sent to a new server.
type HandoffBatch struct {
	Version  int             `json:"version"` // HandoffVersion
	Seq      uint64          `json:"seq"`
	Sessions []HandedSession `json:"sessions"`
	Maps     bool            `json:"maps,omitempty"`
	UDP      []HandedUDP     `json:"udp,omitempty"`
	UDPDone  bool            `json:"udp_done,omitempty"`
}

// HandedUDP is one UDP session as it moves: rule, listen address, server
// and client as for a TCP session, its life so far, and datagrams and
// bytes each way (from the client, from the server).
type HandedUDP struct {
	Rule      string   `json:"rule"`
	Listen    string   `json:"listen"`
	Server    string   `json:"server"`
	Client    string   `json:"client"`
	Started   int64    `json:"started"`
	Active    int64    `json:"active"`
	Datagrams [2]int64 `json:"datagrams"`
	Bytes     [2]int64 `json:"bytes"`
	Counted   [2]int64 `json:"counted"`
}

// HandedAccel is a paired session's place in the sender's maps and the
// state of its two directions (client → server first), as worker/accel.go
// keeps them.
type HandedAccel struct {
	Slots   [2]uint32 `json:"slots"`
	Cookies [2]uint64 `json:"cookies"`
	Dir     [2]uint8  `json:"dir"`
	Poll    [2]bool   `json:"poll"`
	Base    [2]int64  `json:"base"`
	RecvOff [2]int64  `json:"recv_off"`
	Folded  [2]int64  `json:"folded"`
}

// HandedSession is one established session as it moves: which rule,
// listen address and server it belongs to (matched by rule id and server
// address on the receiving side), its life so far and, per socket, its
// stream state and the bytes read for it but not yet written to it.
// Times are CLOCK_MONOTONIC ns (shared.Now), the same in every process.
type HandedSession struct {
	Rule    string    `json:"rule"`
	Listen  string    `json:"listen"`
	Server  string    `json:"server"`
	Client  string    `json:"client"` // the client's address (a PROXY header's source, if one came)
	Started int64     `json:"started"`
	Active  int64     `json:"active"` // last activity, for the idle timeout
	Counted [2]int64  `json:"counted"`
	RTStart int64     `json:"rt_start"`
	RTDone  bool      `json:"rt_done"`
	Reason  string    `json:"reason,omitempty"` // who closed first, if someone did
	SNI     string    `json:"sni,omitempty"`
	Via     string    `json:"via,omitempty"`
	Timeout int64     `json:"timeout,omitempty"` // an inspected session's idle timeout (its route's)
	C       HandedEnd `json:"client_end"`
	B       HandedEnd `json:"server_end"`
	// Accel: the session is paired in the batch's maps (Maps).
	Accel *HandedAccel `json:"accel,omitempty"`
}

// HandedEnd is one socket of a handed session.
type HandedEnd struct {
	Bytes      int64  `json:"bytes"` // read from this socket so far
	RdEOF      bool   `json:"rd_eof,omitempty"`
	WrShut     bool   `json:"wr_shut,omitempty"`
	Hup        bool   `json:"hup,omitempty"`
	CloseSends bool   `json:"close_sends,omitempty"`
	NoSplice   bool   `json:"no_splice,omitempty"`
	Urgent     bool   `json:"urgent,omitempty"`
	Unsent     []byte `json:"unsent,omitempty"` // to be written to this socket first
}

// HandoffAck is the body of TypeHandoffAck: Refused lists the indexes of
// the batch's sessions the receiver did not take (all of them, with
// Error, when it took none).
type HandoffAck struct {
	Seq        uint64 `json:"seq"`
	Refused    []int  `json:"refused,omitempty"`
	RefusedUDP []int  `json:"refused_udp,omitempty"` // indexes into the batch's UDP
	Error      string `json:"error,omitempty"`
}
