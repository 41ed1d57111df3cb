package inspect

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// MaxHello bounds how many bytes of a stream are read for its ClientHello.
const MaxHello = 16 << 10

// ErrNotTLS says the stream does not start with a TLS handshake record.
var ErrNotTLS = errors.New("inspect: not a TLS ClientHello")

// Hello is what routing needs from a ClientHello.
type Hello struct {
	SNI  string   // the host_name of server_name, "" if none
	ALPN []string // the protocols offered, in the client's order
}

const (
	recordHandshake   = 0x16
	typeClientHello   = 1
	extServerName     = 0
	extALPN           = 16
	recordHeader      = 5
	maxRecordFragment = 1<<14 + 2048 // TLS 1.2's bound on a record's fragment
)

// ParseClientHello reads the ClientHello at the start of a stream, which
// may span several TLS records: ErrShort until it is complete, ErrNotTLS
// (wrapped) for what is no TLS handshake, another error for a malformed
// one. A stream that needs more than MaxHello bytes is an error.
func ParseClientHello(b []byte) (Hello, error) {
	msg, err := handshakeMessage(b)
	if err != nil {
		return Hello{}, err
	}
	return parseHello(msg)
}

// handshakeMessage joins the payloads of the handshake records at the
// start of b until they hold the first handshake message, and returns it
// (its body only). In the usual case, one record, it is a subslice of b.
func handshakeMessage(b []byte) ([]byte, error) {
	var joined []byte
	first, owned := true, false // owned: joined is a copy, not a part of b
	for {
		if len(b) < recordHeader {
			if first && len(b) > 0 && b[0] != recordHandshake {
				return nil, fmt.Errorf("%w (first byte 0x%02x)", ErrNotTLS, b[0])
			}
			return nil, short(len(joined))
		}
		typ, major, n := b[0], b[1], int(b[3])<<8|int(b[4])
		switch {
		case typ != recordHandshake || major != 3:
			if first {
				return nil, fmt.Errorf("%w (record type 0x%02x, version %d.%d)", ErrNotTLS, typ, major, b[2])
			}
			return nil, fmt.Errorf("inspect: ClientHello cut by a record of type 0x%02x", typ)
		case n == 0 || n > maxRecordFragment:
			return nil, fmt.Errorf("inspect: TLS record of %d bytes", n)
		case len(b) < recordHeader+n:
			return nil, short(len(joined) + n)
		}
		payload := b[recordHeader : recordHeader+n]
		b = b[recordHeader+n:]
		switch {
		case first:
			joined = payload // the usual case: no copy
		case !owned:
			joined = append(append(make([]byte, 0, 2*(len(joined)+n)), joined...), payload...)
			owned = true
		default:
			joined = append(joined, payload...)
		}
		first = false
		if len(joined) >= 4 {
			if joined[0] != typeClientHello {
				return nil, fmt.Errorf("%w (handshake type %d)", ErrNotTLS, joined[0])
			}
			l := 4 + (int(joined[1])<<16 | int(joined[2])<<8 | int(joined[3]))
			if l > MaxHello {
				return nil, fmt.Errorf("inspect: ClientHello of %d bytes (max %d)", l, MaxHello)
			}
			if len(joined) >= l {
				return joined[4:l], nil
			}
		}
	}
}

// short is ErrShort while the bytes needed stay within MaxHello.
func short(have int) error {
	if have > MaxHello {
		return fmt.Errorf("inspect: no complete ClientHello in %d bytes", MaxHello)
	}
	return ErrShort
}

// parseHello reads a ClientHello body (RFC 8446 4.1.2) for server_name
// (RFC 6066 3) and ALPN (RFC 7301 3.1).
func parseHello(msg []byte) (Hello, error) {
	s := cryptobyte.String(msg)
	var random, sessionID, suites, compression, exts cryptobyte.String
	var version uint16
	if !s.ReadUint16(&version) || !s.ReadBytes((*[]byte)(&random), 32) ||
		!s.ReadUint8LengthPrefixed(&sessionID) || !s.ReadUint16LengthPrefixed(&suites) ||
		!s.ReadUint8LengthPrefixed(&compression) {
		return Hello{}, errors.New("inspect: malformed ClientHello")
	}
	var h Hello
	if s.Empty() {
		return h, nil // no extensions at all
	}
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return Hello{}, errors.New("inspect: malformed ClientHello extensions")
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return Hello{}, errors.New("inspect: malformed ClientHello extension")
		}
		var err error
		switch typ {
		case extServerName:
			h.SNI, err = serverName(data)
		case extALPN:
			h.ALPN, err = alpn(data)
		}
		if err != nil {
			return Hello{}, err
		}
	}
	return h, nil
}

func serverName(data cryptobyte.String) (string, error) {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() || list.Empty() {
		return "", errors.New("inspect: malformed server_name")
	}
	for !list.Empty() {
		var typ uint8
		var name cryptobyte.String
		if !list.ReadUint8(&typ) || !list.ReadUint16LengthPrefixed(&name) || len(name) == 0 {
			return "", errors.New("inspect: malformed server_name")
		}
		if typ == 0 { // host_name
			return string(name), nil
		}
	}
	return "", nil
}

func alpn(data cryptobyte.String) ([]string, error) {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() || list.Empty() {
		return nil, errors.New("inspect: malformed ALPN")
	}
	var out []string
	for !list.Empty() {
		var p cryptobyte.String
		if !list.ReadUint8LengthPrefixed(&p) || len(p) == 0 {
			return nil, errors.New("inspect: malformed ALPN")
		}
		out = append(out, string(p))
	}
	return out, nil
}
