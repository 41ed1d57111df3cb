package worker

import (
	"crypto/tls"
	"errors"
	"io"
	"iter"
	"net"
	"time"

	"g6/certs"
	"g6/conf"
	"g6/shared"

	"golang.org/x/sys/unix"
)

// TLS sessions (issue #34): g6 terminates TLS on a listen address with a
// tls table (the front end) and originates it to a server with one (the
// back end), with crypto/tls driven by the loop itself, not by goroutines
// of its own.
//
// Why in the loop: the worker's one P is held by the loop, which waits in
// a raw epoll_pwait, so a goroutine per TLS session would run only when
// the loop yields, and a pair per session would cost two stacks and a
// channel hop per record. crypto/tls reads and writes a net.Conn; here
// that is tlsIO, which holds the ciphertext the loop read from the socket
// (in) and the ciphertext crypto/tls wrote (out), which the loop sends
// with the same backpressure as any other bytes. After the handshake a
// read that finds nothing returns a temporary error, which crypto/tls
// gives back without keeping (a record read in part waits in its buffer).
// The handshake keeps errors, so it runs as a coroutine (iter.Pull): its
// reads yield to the loop when they need bytes and resume when the socket
// has brought them, with no scheduler in between; one handshake's CPU is
// what it can hold the loop for. Kernel TLS (CONFIG_TLS, not on the test
// machines) could take the record layer over after the handshake: the
// session's ends would then be plain sockets again.
//
// A TLS end is not handed to another worker on HUP or USR2 (its keys live
// in this process): such a session stays and drains here.

// tlsEnd is one end of a session that speaks TLS.
type tlsEnd struct {
	conn      *tls.Conn
	io        tlsIO
	next      func() (struct{}, bool) // the handshake's coroutine; nil once it is over
	stop      func()
	err       error // what ended the handshake, nil if it succeeded
	began     int64 // when the handshake began
	took      int64 // how long it took, ns
	closeSent bool  // close_notify is in io.out (or sent)
	// requireCert: the listener requires a client certificate.
	requireCert bool
}

// tlsEnds are a session's TLS ends, by endpoint: front (terminated) and
// back (originated); either may be nil.
type tlsEnds struct {
	front, back *tlsEnd
}

// of is ep's TLS end in s, or nil.
func (s *session) tlsOf(ep *endpoint) *tlsEnd {
	if s.tls == nil {
		return nil
	}
	if ep == &s.front {
		return s.tls.front
	}
	return s.tls.back
}

// errWouldBlock is what tlsIO's Read says when it has nothing and the loop
// has to bring more: temporary, so crypto/tls does not keep it.
var errWouldBlock = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "tls: would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

var errHandshakeAborted = errors.New("tls: handshake abandoned")

// tlsIO is the net.Conn crypto/tls sees: bytes the loop read, bytes for
// the loop to send.
type tlsIO struct {
	in    []byte
	out   []byte
	eof   bool                // the socket said EOF: in is all there is
	yield func(struct{}) bool // within the handshake: wait for the loop to bring bytes
}

func (t *tlsIO) Read(b []byte) (int, error) {
	for len(t.in) == 0 {
		switch {
		case t.eof:
			return 0, io.EOF
		case t.yield == nil:
			return 0, errWouldBlock
		case !t.yield(struct{}{}):
			return 0, errHandshakeAborted
		}
	}
	n := copy(b, t.in)
	t.in = t.in[n:]
	if len(t.in) == 0 {
		t.in = t.in[:0:cap(t.in)]
	}
	return n, nil
}

func (t *tlsIO) Write(b []byte) (int, error) {
	t.out = append(t.out, b...)
	return len(b), nil
}

func (t *tlsIO) Close() error                     { return nil }
func (t *tlsIO) LocalAddr() net.Addr              { return nil }
func (t *tlsIO) RemoteAddr() net.Addr             { return nil }
func (t *tlsIO) SetDeadline(time.Time) error      { return nil }
func (t *tlsIO) SetReadDeadline(time.Time) error  { return nil }
func (t *tlsIO) SetWriteDeadline(time.Time) error { return nil }

// feed appends what the loop read from the socket.
func (t *tlsIO) feed(b []byte) {
	if len(t.in) == 0 {
		t.in = t.in[:0]
	}
	t.in = append(t.in, b...)
}

// newTLSEnd starts a handshake on conn (tls.Server or tls.Client over
// the end's io, made by mk), with early already read from the socket.
func (w *Worker) newTLSEnd(mk func(net.Conn) *tls.Conn, early []byte) *tlsEnd {
	t := &tlsEnd{began: w.now}
	t.io.feed(early)
	t.conn = mk(&t.io)
	t.next, t.stop = iter.Pull(func(yield func(struct{}) bool) {
		t.io.yield = yield
		t.err = t.conn.Handshake()
		t.io.yield = nil
	})
	return t
}

// stepHandshake runs the handshake of ep's end as far as the bytes allow:
// its output is sent, its socket read while it asks for more. It reports
// whether the handshake is over (then t.err says how) and false for ok
// if the session failed on the way (a socket error).
func (w *Worker) stepHandshake(s *session, ep *endpoint, t *tlsEnd) (done, ok bool) {
	for {
		_, more := t.next()
		if !w.sendTLS(ep, t) {
			return true, false
		}
		if !more {
			t.next, t.stop = nil, nil
			t.took = w.now - t.began
			return true, true
		}
		if !ep.canRead {
			return false, true
		}
		n, e := sysRead(ep.fd, w.scratch)
		switch {
		case e == unix.EAGAIN:
			ep.canRead = false
		case e != 0:
			t.io.eof = true
		case n == 0:
			t.io.eof = true
		default:
			t.io.feed(w.scratch[:n])
		}
	}
}

// sendTLS sends what crypto/tls wrote for ep (pending if the socket is
// full); false on a socket error.
func (w *Worker) sendTLS(ep *endpoint, t *tlsEnd) bool {
	if len(t.io.out) == 0 {
		return true
	}
	var ok bool
	if ep.pend != nil {
		ep.pend = append(ep.pend, t.io.out...)
		ok = true
	} else {
		ok = w.send(ep, t.io.out)
	}
	t.io.out = t.io.out[:0]
	return ok
}

// dropTLS ends what s's TLS ends still run (a handshake's coroutine).
func (s *session) dropTLS() {
	if s.tls == nil {
		return
	}
	for _, t := range []*tlsEnd{s.tls.front, s.tls.back} {
		if t != nil && t.stop != nil {
			t.stop()
		}
	}
	s.tls = nil
}

// moveFromTLS moves a TLS src's plaintext to dst: what crypto/tls holds
// first, then what the socket brings; false means the session failed.
func (w *Worker) moveFromTLS(s *session, src, dst *endpoint, t *tlsEnd) bool {
	if dst.pend != nil {
		if !dst.canWrite {
			return true
		}
		if err := w.flush(dst); err != nil {
			return false
		}
	}
	for dst.pend == nil && !src.rdEOF {
		n, err := t.conn.Read(w.plain)
		if n > 0 {
			w.received(s, src, n)
			if !w.send(dst, w.plain[:n]) {
				return false
			}
			continue
		}
		if !w.sendTLS(src, t) { // key updates, alerts
			return false
		}
		switch {
		case err == errWouldBlock:
			if !src.canRead {
				return w.passEOF(src, dst, dst.pend == nil)
			}
			k, e := sysRead(src.fd, w.scratch)
			switch {
			case e == unix.EAGAIN:
				src.canRead = false
			case e != 0:
				abort(dst)
				return false
			case k == 0:
				t.io.eof = true
			default:
				t.io.feed(w.scratch[:k])
			}
		case err == io.EOF:
			w.sawEOF(s, src)
		default: // a bad record, a truncated stream: the peer sees a reset
			abort(dst)
			return false
		}
	}
	return w.passEOF(src, dst, dst.pend == nil)
}

// moveToTLS moves a plain src's bytes into dst's TLS; at src's end it
// sends close_notify before the FIN.
func (w *Worker) moveToTLS(s *session, src, dst *endpoint, t *tlsEnd) bool {
	if dst.pend != nil {
		if !dst.canWrite {
			return true
		}
		if err := w.flush(dst); err != nil {
			return false
		}
	}
	for src.canRead && !src.rdEOF && dst.pend == nil {
		n, e := sysRead(src.fd, w.scratch)
		switch {
		case e == unix.EAGAIN:
			src.canRead = false
		case e != 0:
			abort(dst)
			return false
		case n == 0:
			w.sawEOF(s, src)
		default:
			w.received(s, src, n)
			if n < len(w.scratch) {
				readShort(src)
			}
			if _, err := t.conn.Write(w.scratch[:n]); err != nil {
				abort(src)
				return false
			}
			if !w.sendTLS(dst, t) {
				return false
			}
		}
	}
	if src.rdEOF && !t.closeSent && dst.pend == nil {
		t.closeSent = true
		t.conn.CloseWrite()
		if !w.sendTLS(dst, t) {
			return false
		}
	}
	return w.passEOF(src, dst, dst.pend == nil)
}

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
	in.at = w.now + s.ln.tlsLimit
	w.timers.push(timerEntry{at: in.at, t: s, gen: s.gen})
	s.front.canRead = true // more may wait behind what was read
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
