// Package certs reads the certificates and keys of g6's TLS, checks them
// (each key matches its certificate, none has expired) and describes them
// (g6 check, show certs, the expiry metric), and picks the certificate a
// ClientHello's server name asks for.
//
// Model: a Pair is one certificate chain with its key, parsed once; the
// master reads the files and hands their bytes to the workers, which parse
// the same bytes, so a file changed on disk between the two is never half
// seen. Selection (Select) is by the leaf's names: an exact DNS name before
// a one-label wildcard, case-insensitive, and the first pair when nothing
// matches (a client that sends no name, or one the address does not
// serve, still gets a certificate, as from HAProxy's first crt).
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Pair is a certificate chain with its private key.
type Pair struct {
	Cert tls.Certificate
	Info Info
}

// Info describes a certificate for people: show certs, g6 check, metrics.
type Info struct {
	File     string    `json:"file"`
	KeyFile  string    `json:"key_file"`
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	Names    []string  `json:"names"` // the leaf's DNS names and IP addresses
	NotAfter time.Time `json:"not_after"`
}

// DaysLeft is how many whole days the certificate has left at now
// (negative once it expired).
func (i Info) DaysLeft(now time.Time) int {
	return int(i.NotAfter.Sub(now).Hours() / 24)
}

// Parse makes a Pair from the PEM bytes of a certificate chain and its
// key; the file names go into errors and Info.
func Parse(certPEM, keyPEM []byte, certFile, keyFile string) (*Pair, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: %s with key %s: %w", certFile, keyFile, err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", certFile, err)
	}
	c.Leaf = leaf
	info := Info{File: certFile, KeyFile: keyFile, Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String(), NotAfter: leaf.NotAfter}
	info.Names = append(info.Names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		info.Names = append(info.Names, ip.String())
	}
	return &Pair{Cert: c, Info: info}, nil
}

// Read reads and parses a certificate file and its key file.
func Read(certFile, keyFile string) (*Pair, []byte, []byte, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("certs: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("certs: %w", err)
	}
	p, err := Parse(certPEM, keyPEM, certFile, keyFile)
	return p, certPEM, keyPEM, err
}

// ErrExpired is returned by Check for a certificate past its NotAfter.
var ErrExpired = errors.New("certificate expired")

// Check says whether a certificate can serve at now: an error once it has
// expired (or before it is valid), a warning when fewer than warnDays are
// left.
func Check(i Info, leaf *x509.Certificate, now time.Time, warnDays int) (warning string, err error) {
	switch {
	case now.After(i.NotAfter):
		return "", fmt.Errorf("certs: %s: %w on %s", i.File, ErrExpired, i.NotAfter.UTC().Format(time.DateOnly))
	case leaf != nil && now.Before(leaf.NotBefore):
		return "", fmt.Errorf("certs: %s: not valid before %s", i.File, leaf.NotBefore.UTC().Format(time.RFC3339))
	case i.DaysLeft(now) < warnDays:
		return fmt.Sprintf("%s expires in %d days (%s)", i.File, i.DaysLeft(now), i.NotAfter.UTC().Format(time.DateOnly)), nil
	}
	return "", nil
}

// Pool parses a PEM bundle of CA certificates (client_ca, a server's ca).
func Pool(pemBytes []byte, file string) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	n := 0
	for rest := pemBytes; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certs: %s: %w", file, err)
		}
		p.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("certs: %s: no PEM certificate in it", file)
	}
	return p, nil
}

// Select picks the pair for a ClientHello's server name: one whose leaf
// names it exactly, else one whose wildcard covers it (one label), else
// the first. pairs must not be empty.
func Select(pairs []*Pair, name string) *Pair {
	name = strings.TrimSuffix(name, ".")
	if name != "" {
		for _, p := range pairs {
			for _, n := range p.Info.Names {
				if strings.EqualFold(n, name) {
					return p
				}
			}
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			for _, p := range pairs {
				for _, n := range p.Info.Names {
					if rest, ok := strings.CutPrefix(n, "*."); ok && strings.EqualFold(rest, name[i+1:]) {
						return p
					}
				}
			}
		}
	}
	return pairs[0]
}
