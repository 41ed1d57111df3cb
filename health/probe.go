package health

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"g6/conf"
)

// Probe is one check of one server.
type Probe struct {
	Check *conf.HealthCheck
	Addr  string      // the server, IP:port
	TLS   *tls.Config // http over TLS and tls checks: how to handshake (nil for the rest)
	// Network is "udp" for a UDP rule's server (udp.go); "" = TCP.
	Network string
}

// Run tries the server once, within the check's timeout.
func (p *Probe) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.Check.Timeout.D())
	defer cancel()
	network := "tcp"
	if p.Network == conf.ProtocolUDP {
		network = "udp"
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, p.Addr)
	if err != nil {
		return fmt.Errorf("connect: %w", unwrapOp(err))
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) }) // a stop cuts a read short
	defer stop()
	if network == "udp" { // a UDP rule: send/expect datagrams, or DNS
		if p.Check.Type == conf.CheckDNS {
			return checkDNS(c, p.Check)
		}
		return checkUDP(c, p.Check)
	}
	switch p.Check.Type {
	case conf.CheckHTTP:
		return checkHTTP(p.wrapTLS(c), p.Check, p.Addr)
	case conf.CheckTLS:
		return checkTLS(p.wrapTLS(c).(*tls.Conn), p.Check, time.Now())
	case conf.CheckRedis:
		return checkRedis(c, p.Check)
	case conf.CheckPgSQL:
		return checkPgSQL(c, p.Check)
	case conf.CheckMySQL:
		return checkMySQL(c)
	case conf.CheckSMTP:
		return checkSMTP(c)
	case conf.CheckDNS:
		return checkDNS(c, p.Check)
	}
	return checkTCP(c, p.Check)
}

// wrapTLS is c over TLS when the check speaks it.
func (p *Probe) wrapTLS(c net.Conn) net.Conn {
	if p.Check.Type == conf.CheckTLS || p.Check.TLS {
		return tls.Client(c, p.TLS)
	}
	return c
}

// unwrapOp drops net.OpError's addresses: the log line names the server.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// checkTCP: connected; with send, the bytes are written; with expect, the
// answer starts with them.
func checkTCP(c io.ReadWriter, hc *conf.HealthCheck) error {
	if hc.Send != "" {
		if _, err := io.WriteString(c, hc.Send); err != nil {
			return fmt.Errorf("send: %w", unwrapOp(err))
		}
	}
	if hc.Expect == "" {
		return nil
	}
	buf := make([]byte, len(hc.Expect))
	n, err := io.ReadFull(c, buf)
	if got := string(buf[:n]); got != hc.Expect {
		if err != nil {
			return fmt.Errorf("expected %s, got %s (%v)", quote(hc.Expect), quote(got), unwrapOp(err))
		}
		return fmt.Errorf("expected %s, got %s", quote(hc.Expect), quote(got))
	}
	return nil
}

// quote shows at most 40 bytes of an answer, escaped.
func quote(s string) string {
	if len(s) > 40 {
		return strconv.Quote(s[:40]) + "…"
	}
	return strconv.Quote(s)
}

// errTooLong: an answer longer than its protocol allows.
var errTooLong = errors.New("answer too long")

// readLine reads one line ending in \n (\r\n or \n, both cut) of at most
// max bytes.
func readLine(r *bufio.Reader, max int) (string, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max {
			return "", errTooLong
		}
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", unwrapOp(err)
		}
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return string(line), nil
}
