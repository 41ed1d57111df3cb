package health

import (
	"fmt"
	"net"

	"github.com/miekg/dns"

	"g6/conf"
)

// checkDNS asks for name's A records over TCP (RFC 7766 framing): any
// answer without an error code (NOERROR, even with no records) is up.
func checkDNS(c net.Conn, hc *conf.HealthCheck) error {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(hc.Name), dns.TypeA)
	co := &dns.Conn{Conn: c}
	if err := co.WriteMsg(q); err != nil {
		return fmt.Errorf("send: %w", unwrapOp(err))
	}
	r, err := co.ReadMsg()
	if err != nil {
		return fmt.Errorf("answer: %v", unwrapOp(err))
	}
	return dnsAnswer(q, r)
}

// dnsAnswer judges r, the answer to q.
func dnsAnswer(q, r *dns.Msg) error {
	switch {
	case r.Id != q.Id:
		return fmt.Errorf("answer to another query (id %d, sent %d)", r.Id, q.Id)
	case !r.Response:
		return fmt.Errorf("a query, not an answer")
	case r.Rcode != dns.RcodeSuccess:
		return fmt.Errorf("%s for %s", dns.RcodeToString[r.Rcode], q.Question[0].Name)
	}
	return nil
}
