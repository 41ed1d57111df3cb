package master

import (
	"crypto/rand"
	"fmt"
	"time"

	"g6/ipc"
)

// TLS session ticket keys. Every worker encrypts tickets with the same
// newest key and accepts any of the kept ones, so a client resumes on
// whichever worker its next connection reaches. The master makes a key at
// start, a new one every ticketRotation, and keeps ticketKeep (a ticket
// lives at most ticketKeep × ticketRotation); a USR2 successor inherits
// them (a memfd), so a binary upgrade does not cost every client a full
// handshake. The keys never leave memory: a stop forgets them.
const (
	ticketRotation = 12 * time.Hour
	ticketKeep     = 3
)

// newTicketKeys is the key set of a master that inherited none.
func newTicketKeys() ([][32]byte, error) {
	return rotateTicketKeys(nil)
}

// rotateTicketKeys puts a fresh key first and drops the oldest beyond
// ticketKeep.
func rotateTicketKeys(keys [][32]byte) ([][32]byte, error) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return keys, fmt.Errorf("master: tls ticket key: %w", err)
	}
	out := append([][32]byte{k}, keys...)
	return out[:min(len(out), ticketKeep)], nil
}

// onTicketRotation gives every worker a new newest key.
func (m *Master) onTicketRotation() {
	keys, err := rotateTicketKeys(m.tickets)
	if err != nil {
		m.log.Error("tls session ticket keys not rotated; keeping the current ones", "err", err)
		return
	}
	m.tickets = keys
	m.broadcast(ipc.TypeTickets, ipc.TicketKeys{Keys: keys})
}

// ticketsFd hands the keys to a USR2 successor.
func (m *Master) ticketsFd() (int, error) {
	b := make([]byte, 0, 32*len(m.tickets))
	for _, k := range m.tickets {
		b = append(b, k[:]...)
	}
	return memfdWith("g6-tickets", b)
}

// readTicketsFd reads the keys a predecessor handed down.
func readTicketsFd(fd int) ([][32]byte, error) {
	b, err := readMemfd(fd)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 || len(b)%32 != 0 || len(b) > 32*ticketKeep {
		return nil, fmt.Errorf("master: upgrade: tls ticket keys: %d bytes", len(b))
	}
	keys := make([][32]byte, len(b)/32)
	for i := range keys {
		copy(keys[i][:], b[32*i:])
	}
	return keys, nil
}
