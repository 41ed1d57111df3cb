package ipc

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxFrame bounds one frame (a config or a session list of a busy worker).
const MaxFrame = 64 << 20

// ErrFrame marks a malformed frame.
var ErrFrame = errors.New("ipc: bad frame")

// Encode returns m as one frame.
func Encode(m Message) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("ipc: encode: %w", err)
	}
	if len(b) > MaxFrame {
		return nil, fmt.Errorf("%w: %d bytes", ErrFrame, len(b))
	}
	out := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(out, uint32(len(b)))
	return append(out, b...), nil
}

// Decoder turns a byte stream into messages incrementally.
type Decoder struct {
	buf []byte
}

// Feed appends bytes read from the stream.
func (d *Decoder) Feed(b []byte) { d.buf = append(d.buf, b...) }

// Next returns the next complete message, ok=false if more bytes are needed.
func (d *Decoder) Next() (m Message, ok bool, err error) {
	if len(d.buf) < 4 {
		return m, false, nil
	}
	n := binary.BigEndian.Uint32(d.buf)
	if n > MaxFrame {
		return m, false, fmt.Errorf("%w: length %d", ErrFrame, n)
	}
	if len(d.buf) < 4+int(n) {
		return m, false, nil
	}
	m, err = decode(d.buf[4 : 4+n])
	d.buf = d.buf[4+n:]
	if len(d.buf) == 0 {
		d.buf = nil
	}
	if err != nil {
		return m, false, err
	}
	return m, true, nil
}

// decode parses one frame's payload, which must be of this build's
// protocol version.
func decode(b []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: %w", ErrFrame, err)
	}
	if m.V != ProtocolVersion {
		return m, fmt.Errorf("%w: protocol version %d, this build speaks %d", ErrFrame, m.V, ProtocolVersion)
	}
	return m, nil
}

// Read reads exactly one message from a blocking reader.
func Read(r io.Reader) (Message, error) {
	var hdr [4]byte
	var m Message
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return m, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return m, fmt.Errorf("%w: length %d", ErrFrame, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return m, fmt.Errorf("ipc: read: %w", err)
	}
	return decode(b)
}

// Write writes one message to a blocking writer.
func Write(w io.Writer, m Message) error {
	b, err := Encode(m)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("ipc: write: %w", err)
	}
	return nil
}
