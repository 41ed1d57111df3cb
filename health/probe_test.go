package health

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"testing"
	"time"

	"g6/conf"
)

// tlsServer serves TLS on loopback with a self-signed certificate valid
// for left more.
func tlsServer(t *testing.T, left time.Duration) string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"db.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(left)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serveHandshakes(ln)
	return ln.Addr().String()
}

func serveHandshakes(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.(*tls.Conn).Handshake()
		c.Close()
	}
}

// TestProbeTLS runs the tls type over real sockets: days left against
// min_days, a warning within twice that.
func TestProbeTLS(t *testing.T) {
	for _, tt := range []struct {
		left    time.Duration
		minDays int
		want    string // "" ok, "warning", else the error's start
	}{
		{3 * 24 * time.Hour, 7, "min_days is 7"},
		{10 * 24 * time.Hour, 7, "warning"},
		{30 * 24 * time.Hour, 7, ""},
		{3 * 24 * time.Hour, 0, ""},
	} {
		p := &Probe{Check: &conf.HealthCheck{Type: conf.CheckTLS, Timeout: conf.Duration(5 * time.Second), MinDays: tt.minDays},
			Addr: tlsServer(t, tt.left), TLS: &tls.Config{ServerName: "db.test", InsecureSkipVerify: true}}
		err := p.Run(context.Background())
		_, warn := err.(*Warning)
		switch {
		case tt.want == "warning" && !warn, tt.want == "" && err != nil:
			t.Errorf("%v left, min_days %d: %v, want %s", tt.left, tt.minDays, err, tt.want)
		case tt.want != "" && tt.want != "warning":
			wantErr(t, tt.left.String(), err, tt.want)
		}
	}
}
