package ipc

import "encoding/json"

// ProtocolVersion is sent in every message, and a message of another is
// refused (Decoder, Read): master and workers are one binary, so only a
// bug or a stray writer sends one.
const ProtocolVersion = 1

// Message types.
const (
	TypeConfig   = "config"   // master → worker: the resolved config and setup (first message)
	TypeReady    = "ready"    // worker → master: listening, serving
	TypeDrain    = "drain"    // master → worker: stop accepting, finish sessions, exit
	TypeStop     = "stop"     // master → worker: exit now
	TypeReopen   = "reopen"   // master → worker: reopen the log file
	TypeSessions = "sessions" // master → worker request; reply lists live sessions
	TypePing     = "ping"     // master → worker request; the empty reply shows the loop runs
	TypeShutdown = "shutdown" // master → worker request: close the sessions of some servers; reply counts them
	TypeReply    = "reply"    // worker → master: answer to request ID
	TypeTickets  = "tickets"  // master → worker: new TLS session ticket keys (TicketKeys)
)

// Message is one frame's payload.
type Message struct {
	V     int             `json:"v"`
	ID    uint64          `json:"id,omitempty"`
	Type  string          `json:"type"`
	Error string          `json:"error,omitempty"`
	Body  json.RawMessage `json:"body,omitempty"`
}

// New builds a message with a JSON body.
func New(typ string, id uint64, body any) (Message, error) {
	m := Message{V: ProtocolVersion, ID: id, Type: typ}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return m, err
		}
		m.Body = b
	}
	return m, nil
}
