package health

import (
	"crypto/tls"
	"fmt"
	"math"
	"time"

	"g6/conf"
)

// Warning is a check that passes with something to say: a tls check's
// certificate with fewer than 2 × min_days left. The runner logs it.
type Warning struct{ Msg string }

func (w *Warning) Error() string { return w.Msg }

// checkTLS: the handshake succeeds (verified as the probe's tls.Config
// says); with min_days, the server's certificate has at least that many
// days left.
func checkTLS(c *tls.Conn, hc *conf.HealthCheck, now time.Time) error {
	if err := c.Handshake(); err != nil {
		return fmt.Errorf("handshake: %v", unwrapOp(err))
	}
	if hc.MinDays == 0 {
		return nil
	}
	certs := c.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return fmt.Errorf("no certificate")
	}
	return daysLeft(certs[0].NotAfter, now, hc.MinDays)
}

// daysLeft judges a certificate's expiry against min_days.
func daysLeft(notAfter, now time.Time, minDays int) error {
	left := notAfter.Sub(now).Hours() / 24
	switch {
	case left < float64(minDays):
		return fmt.Errorf("certificate expires in %.1f days (%s), min_days is %d", math.Max(left, 0), notAfter.UTC().Format(time.DateOnly), minDays)
	case left < float64(2*minDays):
		return &Warning{fmt.Sprintf("certificate expires in %.1f days (%s)", left, notAfter.UTC().Format(time.DateOnly))}
	}
	return nil
}
