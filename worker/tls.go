package worker

import (
	"crypto/tls"
	"errors"
	"io"
	"iter"
	"net"
	"time"

	"g6/shared"

	"golang.org/x/sys/unix"
)

// The TLS machinery both ends share (the package doc says why the loop
// runs crypto/tls itself): tlsIO, the handshake as a coroutine, moving
// bytes into and out of TLS. terminate.go is the client's end,
// originate.go the server's.

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
			t.took = shared.Now() - t.began // w.now is the wakeup's: a fast peer finishes within one
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
			if !w.deliver(s, dst, w.plain[:n]) {
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
	if dt := s.tlsOf(dst); dt != nil && !w.closeNotify(src, dst, dt) {
		return false
	}
	return w.passEOF(src, dst, dst.pend == nil)
}

// deliver sends plaintext b on to dst: through dst's TLS if it speaks
// it, behind what dst still has pending.
func (w *Worker) deliver(s *session, dst *endpoint, b []byte) bool {
	if t := s.tlsOf(dst); t != nil {
		if _, err := t.conn.Write(b); err != nil {
			abort(dst.peer)
			return false
		}
		return w.sendTLS(dst, t)
	}
	if dst.pend != nil {
		dst.pend = append(dst.pend, b...)
		return true
	}
	return w.send(dst, b)
}

// closeNotify sends close_notify to TLS dst once src has ended, before
// passEOF's FIN; false on a socket error.
func (w *Worker) closeNotify(src, dst *endpoint, t *tlsEnd) bool {
	if !src.rdEOF || t.closeSent || dst.pend != nil {
		return true
	}
	t.closeSent = true
	t.conn.CloseWrite()
	return w.sendTLS(dst, t)
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
			if !w.deliver(s, dst, w.scratch[:n]) {
				return false
			}
		}
	}
	if !w.closeNotify(src, dst, t) {
		return false
	}
	return w.passEOF(src, dst, dst.pend == nil)
}
