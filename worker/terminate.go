package worker

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"

	"g6/certs"
	"g6/conf"
	"g6/inspect"
	"g6/shared"
)

// TLS g6 terminates on a listen address with a tls table: the session is
// routed by its ClientHello as on any inspected address, then the worker
// runs the server handshake, counted against max_inspecting until it
// ends and bounded by handshake_timeout from the accept; only then does
// it connect to a server.

// serverTLS is the crypto/tls configuration of a listen address's tls
// table, from the files' contents the master read (certs choose the
// certificate by the ClientHello's name).
func serverTLS(t *conf.ListenTLS, files map[string][]byte, keys [][32]byte) (*tls.Config, error) {
	var pairs []*certs.Pair
	for _, cf := range t.Certificates {
		p, err := certs.Parse(files[cf.Cert], files[cf.Key], cf.Cert, cf.Key)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, p)
	}
	if len(pairs) == 0 {
		return nil, errors.New("tls: no certificate")
	}
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: t.ALPN,
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &certs.Select(pairs, h.ServerName).Cert, nil
		},
		SessionTicketsDisabled: !t.SessionTickets,
	}
	if t.MinVersion == "1.3" {
		c.MinVersion = tls.VersionTLS13
	}
	if t.ClientCA != "" {
		pool, err := certs.Pool(files[t.ClientCA], t.ClientCA)
		if err != nil {
			return nil, err
		}
		c.ClientCAs = pool
	}
	switch {
	case t.ClientAuth == conf.ClientAuthRequire:
		c.ClientAuth = tls.RequireAndVerifyClientCert
	case t.ClientAuth == conf.ClientAuthRequest && t.ClientCA != "":
		c.ClientAuth = tls.VerifyClientCertIfGiven
	case t.ClientAuth == conf.ClientAuthRequest:
		c.ClientAuth = tls.RequestClientCert
	}
	if len(keys) > 0 {
		c.SetSessionTicketKeys(keys)
	}
	return c, nil
}

// setTicketKeys gives every TLS listener the keys of a rotation.
func (w *Worker) setTicketKeys(keys [][32]byte) {
	if len(keys) == 0 {
		return
	}
	for _, c := range w.tlsConfigs {
		c.SetSessionTicketKeys(keys)
	}
}

// startTLS begins the handshake of a routed session on a TLS address: the
// bytes read before routing (the ClientHello) are its first input. The
// session still counts against max_inspecting until the handshake ends.
func (w *Worker) startTLS(s *session) {
	in := s.inspection
	cfg := s.ln.tls
	t := w.newTLSEnd(func(c net.Conn) *tls.Conn { return tls.Server(c, cfg) }, in.early[in.off:])
	w.putEarly(in.early)
	in.early, in.tlvs = nil, nil
	t.requireCert = cfg.ClientAuth == tls.RequireAndVerifyClientCert
	s.tls = &tlsEnds{front: t}
	s.front.bytes = 0 // the application's bytes count, not the records'
	s.front.noSplice, s.noPair = true, true
	s.state = stateHandshaking
	in.at = s.started + s.ln.tlsLimit // from the accept; the timer set for the hello moves to it
	s.front.canRead = true            // more may wait behind what was read
	w.handshake(s)
}

// handshake goes on with a terminated session's handshake; once it is
// over the session connects to a server, or ends counted by why.
func (w *Worker) handshake(s *session) {
	t := s.tls.front
	if s.front.pend != nil && s.front.canWrite {
		if w.flush(&s.front) != nil {
			w.end(s)
			return
		}
	}
	done, ok := w.stepHandshake(s, &s.front, t)
	if !ok {
		w.end(s)
		return
	}
	if !done {
		return
	}
	w.inspecting--
	s.state = stateConnecting
	rs := s.rule.slot
	if t.err != nil {
		result := tlsResult(t)
		result.Counter(rs).Add(1)
		w.log.Debug("TLS handshake failed", "rule", s.rule.id, "client", s.peer, "result", result, "err", t.err)
		w.endWith(s, endHandshakeFailed)
		return
	}
	rs.TLSOK.Add(1)
	rs.TLSHandshake.Observe(t.took)
	w.balance(s)
}

// tlsExpired closes a terminated session whose handshake outlived
// handshake_timeout.
func (w *Worker) tlsExpired(s *session) {
	s.rule.slot.TLSTimeout.Add(1)
	w.inspecting--
	s.state = stateConnecting
	w.endWith(s, endHandshakeTimeout)
}

// tlsResult names a failed handshake for g6_tls_handshakes_total: not
// TLS at all, a client certificate refused (one that did not verify, or
// none where one is required), or any other failure.
func tlsResult(t *tlsEnd) shared.TLSResult {
	var rerr tls.RecordHeaderError
	var cerr *tls.CertificateVerificationError
	switch {
	case errors.As(t.err, &rerr):
		return shared.TLSBadHello
	case errors.As(t.err, &cerr):
		return shared.TLSClientCertRefused
	case t.requireCert && len(t.conn.ConnectionState().PeerCertificates) == 0 && !errors.Is(t.err, io.EOF):
		return shared.TLSNoCertificate
	}
	return shared.TLSFailed
}

// tlsVersion is the version of the TLS g6 terminated for s ("" if none,
// or not yet).
func (s *session) tlsVersion() string {
	if s.tls == nil || s.tls.front == nil || s.tls.front.next != nil {
		return ""
	}
	return tls.VersionName(s.tls.front.conn.ConnectionState().Version)
}

// terminatedSSL describes the TLS g6 terminated for s to a PROXY v2
// header (PP2_TYPE_SSL); nil if it terminated none.
func (s *session) terminatedSSL() *inspect.SSL {
	if s.tls == nil || s.tls.front == nil || s.tls.front.next != nil || s.tls.front.err != nil {
		return nil
	}
	t := s.tls.front
	cs := t.conn.ConnectionState()
	ssl := &inspect.SSL{Version: openSSLVersion(cs.Version), Cipher: tls.CipherSuiteName(cs.CipherSuite), Verified: true}
	if len(cs.PeerCertificates) > 0 {
		ssl.CN = cs.PeerCertificates[0].Subject.CommonName
		ssl.CertSess = true
		ssl.CertConn = !cs.DidResume
		ssl.Verified = len(cs.VerifiedChains) > 0
	}
	return ssl
}

// openSSLVersion names a TLS version as OpenSSL does ("TLSv1.3"): what
// servers that read HAProxy's PROXY headers expect.
func openSSLVersion(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return tls.VersionName(v)
}

// tlsLogArgs are a terminated session's access-log fields: version,
// cipher, how long the handshake took, whether it resumed a session, the
// client certificate's subject.
func (s *session) tlsLogArgs(args []any) []any {
	if s.tls == nil || s.tls.front == nil || s.tls.front.next != nil || s.tls.front.err != nil {
		return args
	}
	t := s.tls.front
	cs := t.conn.ConnectionState()
	args = append(args, "tls_version", tls.VersionName(cs.Version), "tls_cipher", tls.CipherSuiteName(cs.CipherSuite),
		"handshake_ms", float64(t.took)/float64(time.Millisecond))
	if cs.DidResume {
		args = append(args, "tls_resumed", true)
	}
	if len(cs.PeerCertificates) > 0 {
		args = append(args, "client_cert", cs.PeerCertificates[0].Subject.String())
	}
	return args
}
