package ipc

import (
	"encoding/json"
	"fmt"
)

// The body of each message type, one named type each, so both ends compile
// against the same contract:
//
//	TypeConfig    Setup
//	TypeDrain     Drain
//	TypeSessions  request: none; reply: Sessions
//	TypePing      request: none; reply: none
//	TypeShutdown  request: Shutdown; reply: Closed
//	TypeAdopt     none; one fd attached (handoff.go)
//	TypeHandoff   HandoffBatch; two fds per session attached
//	TypeHandoffAck HandoffAck
//	TypeReady, TypeStop, TypeReopen: none

// Drain is the body of TypeDrain.
type Drain struct {
	Timeout int64 `json:"timeout_ns"` // how long live sessions may go on, in ns; must be > 0
	// Handoff: a handoff channel is attached; established sessions go
	// over it to a new worker and only the rest drain.
	Handoff bool `json:"handoff,omitempty"`
	// Stop: g6 is stopping, no generation follows. UDP sessions end at
	// once and the UDP listen sockets close: a worker that kept them to
	// send replies would keep them in their reuseport group, and the
	// datagrams the kernel gave them would go unread while a g6 started
	// next to it (a restart) serves the same addresses.
	Stop bool `json:"stop,omitempty"`
}

// Shutdown is the body of TypeShutdown: the server slots whose live
// sessions are to be closed now.
type Shutdown struct {
	Slots []int `json:"slots"`
}

// Closed is the reply body of TypeShutdown.
type Closed struct {
	Sessions int `json:"sessions"`
}

// Sessions is the reply body of TypeSessions.
type Sessions []Session

// DecodeBody reads m's body into T. An empty or malformed body is an error
// naming the message type: a receiver must refuse it, not act on zero values.
func DecodeBody[T any](m Message) (T, error) {
	var v T
	if len(m.Body) == 0 {
		return v, fmt.Errorf("ipc: %s: empty body", m.Type)
	}
	if err := json.Unmarshal(m.Body, &v); err != nil {
		return v, fmt.Errorf("ipc: %s body: %w", m.Type, err)
	}
	return v, nil
}
