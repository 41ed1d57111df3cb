package worker

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

type sessionState uint8

const (
	stateFree       sessionState = iota
	stateInspecting              // read before routing: no rule yet, no server socket (inspect.go)
	stateConnecting
	stateEstablished
	stateFlushing    // both directions done, send queues not yet empty (flush.go)
	stateHanding     // sent to a new worker, its answer awaited; out of the epoll set (handoff.go)
	stateHandshaking // a TLS handshake g6 terminates (tls.go); counts against max_inspecting
	stateOriginating // connected to a server, TLS handshake with it running (originate.go)
	stateClosed
)

// endpoint is one socket of a session. pend holds bytes read from the peer
// that this socket could not take yet.
type endpoint struct {
	fd       int
	s        *session
	peer     *endpoint
	canRead  bool
	canWrite bool
	rdEOF    bool
	wrShut   bool
	hup      bool // a hang-up was reported: read until EOF
	pend     []byte
	off      int
	pipe     *pipe // pending bytes of a spliced direction
	noSplice bool  // copy, never splice: no pipe could be had, or urgent data
	urgent   bool  // urgent data was reported: read inline, reads may stop short
	bytes    int64 // read from this socket
	// closeSends: the write side was not shut down because the session was
	// about to close, so close sends the FIN (and must wait, flush.go).
	closeSends bool
	// aborted: closing sends a reset, since the other side failed
	// (abort); on the front, that the server failed (outlier ejection).
	aborted bool
}

// session is one proxied connection: front is the client's socket, back
// g6's socket to the server.
type session struct {
	front, back endpoint
	state       sessionState
	reason      endReason // why it ended (access log); endUnknown until known
	rtDone      bool
	turns       uint8 // answers so far (server bytes after client bytes), up to pairAfter
	gen         uint32
	rule        *rule
	ln          *listener
	peer        netip.AddrPort
	server      *server
	search      search // its walk through the rule's servers
	pattern     *client
	ip16        [16]byte
	started     int64
	connectAt   int64       // deadline of the current connect attempt
	rtStart     int64       // when the connect to the server began, or the client last sent bytes
	active      int64       // last activity, for the idle timeout
	index       int32       // position in Worker.live
	unsent      int32       // bytes queued at the last look
	flushAt     int64       // stateFlushing: when to look at the send queues again
	flushWait   int64       // the current interval between looks
	inspection  *inspection // inspected addresses only (inspect.go); nil on the fast path
	paired      *pairing    // paired in the kernel (accel.go); nil otherwise
	tls         *tlsEnds    // its TLS ends (tls.go); nil for a plain session
	fromSrv     bool        // the latest bytes came from the server (turns)
	noPair      bool        // never to be paired: tried once, or ruled out (maybePair)
	// adopted: handed over by another worker, which may still hold the
	// sockets' files until it reads the answer; closing an fd then leaves
	// its epoll entry armed (entries belong to the file), so end deletes
	// them first.
	adopted bool
	// counted is what of c.bytes and b.bytes the server slot already has
	// (publishBytes), so its byte totals move while a long session lives.
	counted [2]int64
}

// idleTimeout is the session's idle timeout in ns (0 = none): its rule's
// listen entry's.
func (s *session) idleTimeout() int64 {
	if s.inspection != nil {
		return s.inspection.timeout
	}
	return s.ln.timeout
}

func (w *Worker) newSession() *session {
	var s *session
	if n := len(w.free); n > 0 {
		s = w.free[n-1]
		w.free = w.free[:n-1]
	} else {
		s = &session{search: search{order: make([]int, 0, 8)}}
	}
	gen := s.gen + 1
	order := s.search.order[:0]
	*s = session{gen: gen, search: search{order: order}, state: stateConnecting, started: w.now, active: w.now}
	s.front = endpoint{fd: -1, s: s}
	s.back = endpoint{fd: -1, s: s}
	s.front.peer, s.back.peer = &s.back, &s.front
	s.index = int32(len(w.live))
	w.live = append(w.live, s)
	return s
}

// recycle returns a closed session to the pool (at the end of a batch).
func (w *Worker) recycle(s *session) {
	last := w.live[len(w.live)-1]
	w.live[s.index] = last
	last.index = s.index
	w.live[len(w.live)-1] = nil
	w.live = w.live[:len(w.live)-1]
	s.state = stateFree
	s.rule, s.ln, s.server, s.search.servers, s.pattern = nil, nil, nil, nil, nil
	w.free = append(w.free, s)
}

// connectNext starts a connect to the next usable server in the session's
// order; when none is left the client is closed.
func (w *Worker) connectNext(s *session) {
	r := s.rule
	for {
		srv := w.nextServer(&s.search, r, s.peer, s.started)
		if srv == nil {
			break
		}
		fd, ok := w.dial(r, srv, unix.SOCK_STREAM, s.peer)
		if fd < 0 {
			if ok {
				continue
			}
			w.end(s)
			return
		}
		if err := w.poll.add(fd, evRead|evWrite|evEdge); err != nil {
			sysClose(fd)
			srv.slot.Release(w.counter)
			w.log.Warn("epoll add server", "err", err)
			w.end(s)
			return
		}
		s.server = srv
		s.back.fd = fd
		w.bind(fd, &s.back)
		s.connectAt = w.now + w.connectTimeout
		w.timers.push(timerEntry{at: s.connectAt, t: s, gen: s.gen})
		return
	}
	w.log.Debug("no server available", "rule", r.id, "client", s.peer)
	r.slot.NoServer.Add(1)
	w.endWith(s, endNoServer)
}

// transparent lets fd bind to an address this host does not have.
func transparent(fd, fam int) {
	if fam == unix.AF_INET {
		sysSetInt(fd, unix.IPPROTO_IP, unix.IP_TRANSPARENT, 1)
	} else {
		sysSetInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TRANSPARENT, 1)
	}
}

// localConnectError reports whether a connect failed for want of
// something on this host rather than because of the server.
func localConnectError(e unix.Errno) bool {
	switch e {
	case unix.EADDRNOTAVAIL, unix.EAGAIN, unix.ENOBUFS, unix.ENOMEM:
		return true
	}
	return false
}

// serverFailed counts a failure of srv (a TCP connect, a UDP server's
// ICMP error) against it: isolate_after of them in a row isolate it.
func (w *Worker) serverFailed(r *rule, srv *server, err error) {
	r.slot.Failures.Add(1)
	srv.slot.EjectStreak.Add(1)
	if !srv.slot.Fail(w.now, w.moratorium) {
		w.log.Debug("connect failed", "rule", r.id, "server", srv.text, "err", err,
			"in_a_row", srv.slot.FailStreak.Load(), "isolate_after", srv.slot.IsolateAfter.Load())
		return
	}
	w.log.Info("connect failed, server isolated", "rule", r.id, "server", srv.text,
		"err", err, "moratorium", w.moratoriumText)
}

// onConnectEvent handles readiness of a server socket still connecting.
func (w *Worker) onConnectEvent(s *session, ev uint32) {
	if ev&evBad == 0 && ev&unix.EPOLLOUT != 0 {
		// Writable without an error: connected (no SO_ERROR round trip).
		s.back.canRead = ev&unix.EPOLLIN != 0
		s.back.hup = ev&unix.EPOLLRDHUP != 0
		if s.server.tls != nil {
			w.originate(s)
			return
		}
		w.established(s)
		return
	}
	soerr, e := sysSoError(s.back.fd)
	if e == 0 && soerr == 0 {
		// No error and not writable: not the server's answer to this
		// connect (the connect timer still bounds it). Only a failure the
		// kernel reports for this socket counts against the server.
		return
	}
	var err error = e
	if e == 0 {
		err = unix.Errno(soerr)
	}
	w.serverFailed(s.rule, w.abandonServer(s), err)
	w.connectNext(s)
}

// abandonServer drops the session's server socket and the server's count,
// and returns the server. s.server is cleared so that ending the session
// (no further server) does not release the count a second time.
func (w *Worker) abandonServer(s *session) *server {
	srv := s.server
	w.deferClose(s.back.fd)
	srv.slot.Release(w.counter)
	s.server = nil
	s.back = endpoint{fd: -1, s: s, peer: &s.front}
	return srv
}

func (w *Worker) onConnectTimeout(s *session) {
	w.serverFailed(s.rule, w.abandonServer(s), errConnectTimeout)
	w.connectNext(s)
}

func (w *Worker) established(s *session) {
	s.state = stateEstablished
	s.server.slot.Total.Add(1)
	s.rule.slot.Connections.Add(1)
	s.server.slot.Connected()
	if s.search.tier == tierPanic {
		s.server.slot.Readmit(w.now)
	}
	began := s.connectAt - w.connectTimeout // when connect(2) was called
	s.server.slot.Connect.Observe(w.now - began)
	// The server socket's readiness came with the event that completed the
	// connect; the client's was recorded while connecting.
	s.back.canWrite = true
	// The first byte is timed from the connect's start, not from this
	// wakeup: a loop that sees the connect late (a busy machine) may see
	// the server's first byte in the same wakeup, and a 30 ms server would
	// be counted at 0.
	s.rtStart, s.active = began, w.now
	// The connect timer's entry is still in the heap and is re-armed lazily
	// with the idle deadline when it comes up (see expire); a second entry is
	// needed only when the idle deadline comes first.
	if t := s.idleTimeout(); t > 0 && w.now+t < s.connectAt {
		w.timers.push(timerEntry{at: w.now + t, t: s, gen: s.gen})
	}
	if s.tls == nil || s.tls.back == nil { // else it went before the ClientHello (originate)
		if !w.sendProxyHeader(s) {
			w.end(s)
			return
		}
	}
	if s.inspection != nil && s.inspection.early != nil && !w.sendEarly(s) {
		w.end(s)
		return
	}
	w.pump(s)
}

// sendProxyHeader sends the PROXY header to a server that takes one;
// false if the session failed.
func (w *Worker) sendProxyHeader(s *session) bool {
	v := s.server.proxy
	if v == "" {
		return true
	}
	var dst netip.AddrPort
	var tlvs []byte
	if s.inspection != nil {
		dst, tlvs = s.inspection.dst, s.inspection.tlvs
	}
	if !dst.IsValid() {
		dst = localAddr(s.front.fd)
	}
	hdr := proxyHeader(w.hdr[:], v, s.peer, dst, tlvs, s.terminatedSSL())
	return w.send(&s.back, hdr)
}

// onTimer handles a deadline of the session: a drain check or poll of a
// paired one, the read before routing, the connect, the flush, or the
// idle timeout; a deadline pushed back meanwhile is pushed again.
func (s *session) onTimer(w *Worker, gen uint32) {
	if s.gen != gen || s.state == stateFree || s.state == stateClosed {
		return
	}
	if s.paired != nil && s.state == stateEstablished {
		w.accelTimer(s)
	}
	d := w.deadline(s)
	switch {
	case d == 0:
	case d > w.now:
		w.timers.push(timerEntry{at: d, t: s, gen: s.gen})
	case s.state == stateInspecting:
		w.inspectExpired(s)
	case s.state == stateHandshaking:
		w.tlsExpired(s)
	case s.state == stateConnecting:
		w.onConnectTimeout(s)
	case s.state == stateOriginating:
		w.originFailed(s, errOriginTimeout)
	case s.state == stateFlushing:
		w.flushCheck(s)
	default:
		w.log.Debug("idle timeout", "rule", s.rule.id, "client", s.peer)
		w.endWith(s, endTimeout)
	}
}

// deadline is when the session's timer should fire, 0 for never.
func (w *Worker) deadline(s *session) int64 {
	switch {
	case s.state == stateInspecting, s.state == stateHandshaking:
		return s.inspection.at
	case s.state == stateConnecting, s.state == stateOriginating:
		return s.connectAt
	case s.state == stateEstablished:
		d := int64(0)
		if t := s.idleTimeout(); t > 0 {
			d = s.active + t
		}
		if s.paired != nil && s.paired.checkAt != 0 && (d == 0 || s.paired.checkAt < d) {
			d = s.paired.checkAt
		}
		return d
	case s.state == stateFlushing:
		return s.flushAt
	}
	return 0
}

// endWith ends a session, recording why unless a reason is already known.
func (w *Worker) endWith(s *session, reason endReason) {
	if s.reason == endUnknown {
		s.reason = reason
	}
	w.end(s)
}

// end closes a session: both fds (at the end of the batch), counts released.
func (w *Worker) end(s *session) {
	if s.state == stateClosed || s.state == stateFree {
		return
	}
	if s.reason == endUnknown {
		s.reason = endError
	}
	w.teardown(s, endedHere)
}

// leaving is how a session leaves this worker.
type leaving uint8

const (
	// endedHere: it is over. Its kernel pair goes, its access-log line,
	// duration and last bytes are written.
	endedHere leaving = iota
	// goesOn: it lives on in another worker (handed over, handoff.go; or
	// its adoption not answered, adopt.go: the old worker keeps it), which
	// writes its line and its bytes and keeps it paired.
	goesOn
)

// teardown is the one way a session leaves: counts given back, buffers
// pooled, fds closed after the batch (this worker's copies; the epoll
// entries of an adopted session's files go first, since the other worker
// may still hold them), the session recycled at reap.
func (w *Worker) teardown(s *session, how leaving) {
	here := how == endedHere
	if s.state == stateInspecting || s.state == stateHandshaking {
		w.inspecting--
	}
	if s.paired != nil {
		if here {
			w.unpair(s) // its bytes first: the log and the totals count them
		} else {
			w.dropPairing(s)
		}
	}
	if here && w.access != nil {
		w.access.session(w, s)
	}
	s.dropTLS() // after the log line, which reads its version and cipher
	if s.pattern != nil {
		w.unadmit(s.rule, s.pattern, s.ip16)
	}
	if s.server != nil {
		if here && (s.state == stateEstablished || s.state == stateFlushing) {
			s.server.slot.Duration.Observe(w.now - s.started)
			w.judgeServer(s)
		}
		s.server.slot.Release(w.counter)
		if here {
			w.publishBytes(s)
		}
		if w.tcpSeen != nil {
			delete(w.tcpSeen, s)
		}
	}
	w.putBuf(&s.front)
	w.putBuf(&s.back)
	w.putPipe(&s.front)
	w.putPipe(&s.back)
	if s.inspection != nil {
		w.putInspection(s)
	}
	if s.adopted {
		w.poll.del(s.front.fd)
		w.poll.del(s.back.fd)
	}
	w.deferClose(s.front.fd)
	w.deferClose(s.back.fd)
	s.state = stateClosed
	w.ended = append(w.ended, s)
}
