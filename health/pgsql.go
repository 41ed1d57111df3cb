package health

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"g6/conf"
)

// maxPgMessage bounds one message a pgsql check reads (an error with its
// fields, a SASL challenge, a row of one boolean are all far smaller).
const maxPgMessage = 16 << 10

// checkPgSQL sends a startup message. Without a password, an
// authentication request, ready-for-query or a refused login (SQLSTATE
// class 28: the server is up and judging logins) is up; any other error
// (57P03 starting up, 53300 too many connections) is down. With a
// password it logs in (SCRAM-SHA-256, md5 or cleartext, as the server
// asks) and with a role asks SELECT pg_is_in_recovery().
func checkPgSQL(c io.ReadWriter, hc *conf.HealthCheck) error {
	user := hc.User
	if user == "" {
		user = "g6-health-check"
	}
	db := hc.Database
	if db == "" {
		db = user
	}
	if _, err := c.Write(startupMessage(user, db)); err != nil {
		return fmt.Errorf("send: %w", unwrapOp(err))
	}
	br := bufio.NewReader(c)
	login := hc.Password != "" || hc.Role != ""
	var scram *scramClient
	for {
		typ, body, err := readPg(br)
		if err != nil {
			return err
		}
		switch typ {
		case 'E':
			fields := pgFields(body)
			if !login && strings.HasPrefix(fields['C'], "28") {
				return nil
			}
			return fmt.Errorf("%s %s: %s", fields['S'], fields['C'], quote(fields['M']))
		case 'R':
			if !login {
				return nil
			}
			if scram, err = pgAuth(c, body, user, hc.Password, scram); err != nil {
				return err
			}
		case 'Z':
			if hc.Role == "" {
				c.Write([]byte{'X', 0, 0, 0, 4})
				return nil
			}
			return pgRole(c, br, hc.Role)
		}
		// 'S' parameter status, 'K' key data, 'N' notices: read on.
	}
}

// startupMessage is protocol 3.0's first message.
func startupMessage(user, db string) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0, 0, 0, 3, 0, 0})
	for _, kv := range []string{"user", user, "database", db, "application_name", "g6-health-check"} {
		b.WriteString(kv)
		b.WriteByte(0)
	}
	b.WriteByte(0)
	out := b.Bytes()
	binary.BigEndian.PutUint32(out, uint32(len(out)))
	return out
}

// pgMessage frames a frontend message.
func pgMessage(typ byte, body []byte) []byte {
	out := make([]byte, 5, 5+len(body))
	out[0] = typ
	binary.BigEndian.PutUint32(out[1:], uint32(4+len(body)))
	return append(out, body...)
}

var errNotPg = errors.New("not a PostgreSQL message")

// readPg reads one backend message.
func readPg(br *bufio.Reader) (byte, []byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(br, head[:]); err != nil {
		return 0, nil, fmt.Errorf("answer: %v", unwrapOp(err))
	}
	n := int(binary.BigEndian.Uint32(head[1:]))
	switch {
	case head[0] < 'A' || head[0] > 'z' || n < 4:
		return 0, nil, fmt.Errorf("%w (%s)", errNotPg, quote(string(head[:])))
	case n-4 > maxPgMessage:
		return 0, nil, fmt.Errorf("%w (a message of %d bytes)", errNotPg, n)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(br, body); err != nil {
		return 0, nil, fmt.Errorf("answer: %v", unwrapOp(err))
	}
	return head[0], body, nil
}

// pgFields reads an error's fields (S severity, C code, M message).
func pgFields(body []byte) map[byte]string {
	out := map[byte]string{}
	for len(body) > 1 {
		k := body[0]
		v, rest, ok := bytes.Cut(body[1:], []byte{0})
		if !ok {
			break
		}
		out[k] = string(v)
		body = rest
	}
	return out
}

// pgAuth answers one authentication request.
func pgAuth(w io.Writer, body []byte, user, password string, scram *scramClient) (*scramClient, error) {
	if len(body) < 4 {
		return nil, errNotPg
	}
	code, data := binary.BigEndian.Uint32(body), body[4:]
	var reply []byte
	switch code {
	case 0: // ok
		return scram, nil
	case 3: // cleartext
		reply = pgMessage('p', append([]byte(password), 0))
	case 5: // md5
		if len(data) < 4 {
			return nil, errNotPg
		}
		inner := md5.Sum([]byte(password + user))
		outer := md5.Sum(append([]byte(hex.EncodeToString(inner[:])), data[:4]...))
		reply = pgMessage('p', append([]byte("md5"+hex.EncodeToString(outer[:])), 0))
	case 10: // SASL: the mechanisms offered
		if !bytes.Contains(data, []byte("SCRAM-SHA-256\x00")) {
			return nil, fmt.Errorf("the server offers no SCRAM-SHA-256 (%s)", quote(string(data)))
		}
		scram = newSCRAM(password)
		first := scram.first()
		msg := append([]byte("SCRAM-SHA-256\x00"), 0, 0, 0, 0)
		binary.BigEndian.PutUint32(msg[len(msg)-4:], uint32(len(first)))
		reply = pgMessage('p', append(msg, first...))
	case 11: // SASL continue
		if scram == nil {
			return nil, errNotPg
		}
		final, err := scram.final(string(data))
		if err != nil {
			return nil, err
		}
		reply = pgMessage('p', []byte(final))
	case 12: // SASL final
		if scram == nil {
			return nil, errNotPg
		}
		return scram, scram.verify(string(data))
	default:
		return nil, fmt.Errorf("authentication method %d is not one a check speaks", code)
	}
	if _, err := w.Write(reply); err != nil {
		return nil, fmt.Errorf("send: %w", unwrapOp(err))
	}
	return scram, nil
}

// pgRole asks whether the server is in recovery and compares with role.
func pgRole(c io.ReadWriter, br *bufio.Reader, role string) error {
	if _, err := c.Write(pgMessage('Q', []byte("SELECT pg_is_in_recovery()\x00"))); err != nil {
		return fmt.Errorf("send: %w", unwrapOp(err))
	}
	recovery := ""
	for {
		typ, body, err := readPg(br)
		if err != nil {
			return err
		}
		switch typ {
		case 'E':
			f := pgFields(body)
			return fmt.Errorf("pg_is_in_recovery(): %s %s", f['C'], quote(f['M']))
		case 'D':
			recovery, err = pgBoolRow(body)
			if err != nil {
				return err
			}
		case 'Z':
			c.Write([]byte{'X', 0, 0, 0, 4})
			switch {
			case recovery == "":
				return errors.New("pg_is_in_recovery(): no row")
			case role == conf.RolePrimary && recovery == "t":
				return errors.New("in recovery (a standby), expected a primary")
			case role == conf.RoleStandby && recovery == "f":
				return errors.New("not in recovery (a primary), expected a standby")
			}
			return nil
		}
	}
}

// pgBoolRow reads a data row of one text column, "t" or "f".
func pgBoolRow(body []byte) (string, error) {
	if len(body) < 6 || binary.BigEndian.Uint16(body) != 1 {
		return "", errors.New("pg_is_in_recovery(): not one column")
	}
	n := int32(binary.BigEndian.Uint32(body[2:]))
	if n != 1 || len(body) != 7 || body[6] != 't' && body[6] != 'f' {
		return "", fmt.Errorf("pg_is_in_recovery(): %s is not t or f", quote(string(body[6:])))
	}
	return string(body[6:]), nil
}
