package health

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"g6/conf"
)

// maxDatagram is the largest UDP payload a check reads.
const maxDatagram = 64 << 10

// checkUDP sends send as one datagram on a connected socket and, with
// expect, takes a reply starting with it. Without expect (a service that
// never answers, such as syslog) the server is up unless an ICMP port
// unreachable comes back within the check's timeout, as NGINX Plus
// judges UDP servers. The ICMP error shows as ECONNREFUSED on the
// connected socket: the server is down.
func checkUDP(c interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
}, hc *conf.HealthCheck) error {
	if hc.Send == "" {
		return errors.New("a UDP check needs send: a datagram the server answers")
	}
	if _, err := c.Write([]byte(hc.Send)); err != nil {
		return udpErr("send", err)
	}
	buf := make([]byte, maxDatagram)
	n, err := c.Read(buf)
	if err != nil {
		if hc.Expect == "" && errors.Is(err, os.ErrDeadlineExceeded) {
			return nil // silence, and no ICMP error: up
		}
		return udpErr("answer", err)
	}
	if got := string(buf[:n]); len(got) < len(hc.Expect) || got[:len(hc.Expect)] != hc.Expect {
		return fmt.Errorf("expected %s, got %s", quote(hc.Expect), quote(got))
	}
	return nil
}

// udpErr names an ICMP port unreachable for what it is.
func udpErr(what string, err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s: port unreachable (ICMP)", what)
	}
	return fmt.Errorf("%s: %v", what, unwrapOp(err))
}
