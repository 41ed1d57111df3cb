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
// the loop to send. out is the worker's one buffer (tlsOut), not the
// session's: every call into crypto/tls is followed by sendTLS, which
// empties it (or abandon, which drops it), before the loop calls into
// another session's, so an idle session keeps no output buffer (the
// server's first flight alone is ~2 KiB). in borrows the worker's read
// buffer (lend) while the loop serves this end, so ciphertext is not
// copied on its way to crypto/tls's record buffer; keep copies what is
// left of it before the loop reads into that buffer again.
type tlsIO struct {
	in       []byte
	borrowed bool // in is (part of) the worker's read buffer
	out      *[]byte
	eof      bool                // the socket said EOF: in is all there is
	yield    func(struct{}) bool // within the handshake: wait for the loop to bring bytes
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
	return n, nil
}

func (t *tlsIO) Write(b []byte) (int, error) {
	*t.out = append(*t.out, b...)
	return len(b), nil
}

func (t *tlsIO) Close() error                     { return nil }
func (t *tlsIO) LocalAddr() net.Addr              { return nil }
func (t *tlsIO) RemoteAddr() net.Addr             { return nil }
func (t *tlsIO) SetDeadline(time.Time) error      { return nil }
func (t *tlsIO) SetReadDeadline(time.Time) error  { return nil }
func (t *tlsIO) SetWriteDeadline(time.Time) error { return nil }

// lend hands crypto/tls b, read from the socket into the worker's read
// buffer, without a copy; the caller calls keep before that buffer is
// read into again.
func (t *tlsIO) lend(b []byte) {
	if len(t.in) > 0 {
		t.keep()
		t.in = append(t.in, b...)
		return
	}
	t.in, t.borrowed = b, true
}

// keep makes what is unread of in the end's own: crypto/tls took less
// than the loop lent it (its record buffer was full, or the session
// stopped reading because the other side is full).
func (t *tlsIO) keep() {
	if !t.borrowed {
		return
	}
	t.borrowed = false
	if len(t.in) == 0 {
		t.in = nil
		return
	}
	t.in = append([]byte(nil), t.in...)
}

// newTLSEnd starts a handshake on conn (tls.Server or tls.Client over
// the end's io, made by mk), with early already read from the socket.
func (w *Worker) newTLSEnd(mk func(net.Conn) *tls.Conn, early []byte) *tlsEnd {
	t := &tlsEnd{began: w.now}
	t.io.out = &w.tlsOut
	t.io.in = append([]byte(nil), early...) // the inspection's buffer goes back to its pool
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
	defer t.io.keep()
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
		if !w.readCipher(ep, t) {
			t.io.eof = true // the handshake ends with an error crypto/tls reports
		}
	}
}

// readCipher reads ep's socket once into t's input (lent, see lend);
// false on a socket error.
func (w *Worker) readCipher(ep *endpoint, t *tlsEnd) bool {
	n, e := sysRead(ep.fd, w.scratch)
	switch {
	case e == unix.EAGAIN:
		ep.canRead = false
	case e != 0:
		return false
	case n == 0:
		t.io.eof = true
	default:
		t.io.lend(w.scratch[:n])
	}
	return true
}

// sendTLS sends what crypto/tls wrote for ep (pending if the socket is
// full); false on a socket error.
func (w *Worker) sendTLS(ep *endpoint, t *tlsEnd) bool {
	out := *t.io.out
	if len(out) == 0 {
		return true
	}
	var ok bool
	if ep.pend != nil {
		ep.pend = append(ep.pend, out...)
		ok = true
	} else {
		ok = w.send(ep, out)
	}
	*t.io.out = out[:0]
	return ok
}

// abandon ends t's handshake coroutine if it still runs; what it wrote
// on the way out (an alert) is dropped, never left in the shared buffer
// for another session's sendTLS.
func (t *tlsEnd) abandon() {
	if t.stop != nil {
		t.stop()
		t.next, t.stop = nil, nil
	}
	*t.io.out = (*t.io.out)[:0]
}

// dropTLS abandons what s's TLS ends still run.
func (s *session) dropTLS() {
	if s.tls == nil {
		return
	}
	for _, t := range []*tlsEnd{s.tls.front, s.tls.back} {
		if t != nil {
			t.abandon()
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
	defer t.io.keep()
	for dst.pend == nil && !src.rdEOF {
		n, err := w.readPlain(t)
		// Before deliver: what reading wrote (a key update's answer, an
		// alert) is src's, in the buffer dst's TLS writes into next.
		if !w.sendTLS(src, t) {
			return false
		}
		if n > 0 {
			w.received(s, src, n)
			if !w.deliver(s, dst, w.plain[:n]) {
				return false
			}
			continue
		}
		switch {
		case err == errWouldBlock:
			if !src.canRead {
				return w.passEOF(src, dst, dst.pend == nil)
			}
			if !w.readCipher(src, t) {
				abort(dst)
				return false
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

// readPlain decrypts into w.plain as many records as crypto/tls has
// whole, so that they go on in one send, not one per record.
func (w *Worker) readPlain(t *tlsEnd) (int, error) {
	got := 0
	for {
		n, err := t.conn.Read(w.plain[got:])
		got += n
		if err != nil || n == 0 || len(w.plain)-got < maxPlainRecord {
			return got, err
		}
	}
}

// maxPlainRecord is the most plaintext one TLS record carries.
const maxPlainRecord = 16 << 10

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
