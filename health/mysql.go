package health

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// maxMySQLGreeting bounds the first packet a mysql check reads (a real
// greeting is under 200 bytes).
const maxMySQLGreeting = 4 << 10

// checkMySQL reads the server's first packet: protocol 10's handshake
// means up; an error packet (too many connections, host blocked) down.
func checkMySQL(r io.Reader) error {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return fmt.Errorf("no greeting: %v", unwrapOp(err))
	}
	n := int(head[0]) | int(head[1])<<8 | int(head[2])<<16
	if n == 0 || n > maxMySQLGreeting {
		return fmt.Errorf("a first packet of %d bytes is not a greeting", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return fmt.Errorf("greeting: %v", unwrapOp(err))
	}
	return mysqlGreeting(body)
}

// mysqlGreeting judges the first packet's payload.
func mysqlGreeting(p []byte) error {
	switch {
	case p[0] == 10:
		if !strings.Contains(string(p[1:]), "\x00") {
			return fmt.Errorf("protocol 10 greeting without a version")
		}
		return nil
	case p[0] == 0xff && len(p) >= 3:
		code := binary.LittleEndian.Uint16(p[1:3])
		msg := p[3:]
		if len(msg) >= 6 && msg[0] == '#' { // SQL state marker (protocol 4.1)
			msg = msg[6:]
		}
		return fmt.Errorf("error %d: %s", code, quote(string(msg)))
	}
	return fmt.Errorf("not a MySQL greeting (first byte %#x)", p[0])
}
