package worker

import (
	"errors"
	"net/netip"
	"sync/atomic"

	"g6/inspect"

	"golang.org/x/sys/unix"
)

// Looking before routing (issue #17). On an inspected address a session
// starts in stateInspecting with only its client socket: the worker reads
// into the session's early buffer until it holds a PROXY header (if
// accept_proxy) and then a ClientHello (if a rule there has sni), each
// within inspect_timeout, and at most inspectLimit bytes. The header is
// consumed: from then on the client is the header's source. The rest of
// what was read is forwarded first, unchanged, once the server is
// connected (established), and the stream goes on as for any session.
// Bytes may still be queued behind the ones read (edge triggering gives no
// new edge for them), so a routed client is marked readable.

// inspectLimit bounds the bytes read before routing: the largest PROXY
// header, the largest ClientHello, and room for the headers of the TLS
// records it comes in. A session starts with earlySize (most hellos fit,
// post-quantum key shares included) and the buffer doubles as the bytes
// need, so silent or small clients hold little.
const (
	inspectLimit = inspect.MaxProxyV2 + inspect.MaxHello + 1024
	earlySize    = 2 << 10
)

// inspection is what a session on an inspected address keeps: the bytes
// read before routing (until established) and what they said (for its
// life). The fast path's sessions have none, so it costs them nothing.
type inspection struct {
	at      int64          // stateInspecting: when the current look gives up
	timeout int64          // the chosen rule's idle timeout (session.idleTimeout)
	early   []byte         // bytes read before routing; early[off:] goes to the server first
	off     int            // the PROXY header's length
	proxied bool           // the PROXY header has been read
	tlvs    []byte         // its v2 TLVs, within early
	dst     netip.AddrPort // its destination; invalid = this socket's local address
	via     netip.AddrPort // the peer that sent it; invalid = none
	sni     string         // the ClientHello's server name
}

// getInspection gives s a cleared inspection (no early buffer yet).
func (w *Worker) getInspection(s *session) *inspection {
	var l *inspection
	if n := len(w.inspections); n > 0 {
		l = w.inspections[n-1]
		w.inspections = w.inspections[:n-1]
	} else {
		l = &inspection{}
	}
	*l = inspection{}
	s.inspection = l
	return l
}

// putInspection takes s's inspection back when the session ends.
func (w *Worker) putInspection(s *session) {
	l := s.inspection
	if l.early != nil {
		w.putEarly(l.early)
	}
	*l = inspection{}
	if len(w.inspections) < keepPooled {
		w.inspections = append(w.inspections, l)
	}
	s.inspection = nil
}

// startInspect begins a session on an inspected address.
func (w *Worker) startInspect(ln *listener, fd int, peer netip.AddrPort) {
	lk := ln.inspector
	if lk.accept != "" && !lk.trusted(peer.Addr()) {
		w.log.Debug("refused: PROXY header from an untrusted source", "listen", ln.addr, "client", peer)
		lk.owner.slot.ProxyUntrusted.Add(1)
		if w.access != nil {
			w.access.refused(w, ln, peer.String(), endProxyUntrusted)
		}
		sysClose(fd)
		return
	}
	if w.inspecting >= w.maxInspecting {
		lk.owner.slot.InspectFull.Add(1)
		w.warnLimited(&w.inspectFull, "refused: max_inspecting connections are being read before routing",
			"listen", ln.addr, "max_inspecting", w.maxInspecting)
		if w.access != nil {
			w.access.refused(w, ln, peer.String(), endInspectFull)
		}
		sysClose(fd)
		return
	}
	s := w.openSession(ln, fd, peer) // s.rule is lk.owner until routed
	if s == nil {
		return
	}
	s.state = stateInspecting
	w.inspecting++
	s.front.canRead = true // EAGAIN corrects it
	w.getInspection(s).early = w.getEarly()
	s.inspection.at = w.helloDeadline(s, lk.timeout)
	w.timers.push(timerEntry{at: s.inspection.at, t: s, gen: s.gen})
	w.inspect(s)
}

// onInspectEvent handles readiness of a client still being read.
func (w *Worker) onInspectEvent(s *session, ev uint32) {
	if ev&unix.EPOLLERR != 0 {
		w.end(s)
		return
	}
	s.front.canRead = s.front.canRead || ev&(evRead|unix.EPOLLHUP|unix.EPOLLRDHUP) != 0
	s.front.hup = s.front.hup || ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0
	s.front.canWrite = s.front.canWrite || ev&evWrite != 0
	w.inspect(s)
}

// inspect reads what the client has sent and routes the session as soon
// as the bytes allow.
func (w *Worker) inspect(s *session) {
	for s.front.canRead && s.state == stateInspecting {
		l := s.inspection
		if len(l.early) == inspectLimit {
			w.refuse(s, &s.ln.inspector.owner.slot.BadHello, endBadHello, errors.New("nothing to route by in the bytes read"))
			return
		}
		if len(l.early) == cap(l.early) {
			w.growEarly(l)
		}
		n, e := sysRead(s.front.fd, l.early[len(l.early):cap(l.early)])
		switch {
		case e == unix.EAGAIN:
			s.front.canRead = false
		case e != 0:
			w.end(s)
		case n == 0:
			w.endWith(s, endClientClose) // gave up before it could be routed
		default:
			l.early = l.early[:len(l.early)+n]
			w.examine(s)
		}
	}
}

// examine parses what has been read: the PROXY header, then the ClientHello,
// and routes, refuses, or waits for more.
func (w *Worker) examine(s *session) {
	lk, l := s.ln.inspector, s.inspection
	if lk.accept != "" && !l.proxied {
		p, n, err := inspect.ParseProxy(l.early, lk.accept)
		switch {
		case err == inspect.ErrShort:
			return
		case err != nil:
			w.refuse(s, &lk.owner.slot.BadProxy, endBadProxy, err)
			return
		}
		l.proxied, l.off = true, n
		if !p.Local {
			l.via, s.peer, l.dst, l.tlvs = s.peer, p.Src, p.Dst, p.TLVs
		}
		l.at = w.helloDeadline(s, lk.timeout) // the ClientHello's own time
	}
	if !lk.hello {
		w.route(s, lk.fallback, "")
		return
	}
	h, err := inspect.ParseClientHello(l.early[l.off:])
	switch {
	case err == inspect.ErrShort:
	case errors.Is(err, inspect.ErrNotTLS):
		w.route(s, lk.fallback, "")
	case err != nil:
		if s.ln.tls != nil {
			lk.owner.slot.TLSBadHello.Add(1)
		}
		w.refuse(s, &lk.owner.slot.BadHello, endBadHello, err)
	default:
		w.route(s, lk.choose(&h), h.SNI)
	}
}

// route hands an inspected session to rt's rule (nil: no rule took it).
func (w *Worker) route(s *session, rt *route, sni string) {
	s.inspection.sni = sni
	if rt == nil {
		w.refuse(s, &s.ln.inspector.owner.slot.NoRule, endNoRule, errors.New("no rule for this server name"))
		return
	}
	s.rule, s.inspection.timeout = rt.rule, rt.timeout
	s.front.bytes = int64(len(s.inspection.early) - s.inspection.off)
	ip16 := s.peer.Addr().As16()
	client, reason := w.admitClient(rt.rule, s.peer, ip16)
	if client == nil {
		w.endWith(s, reason)
		return
	}
	s.pattern, s.ip16 = client, ip16
	if s.ln.tls != nil {
		w.startTLS(s) // still counted against max_inspecting until its handshake ends
		return
	}
	s.state = stateConnecting // no longer read before routing: out of max_inspecting
	w.inspecting--
	s.front.canRead = true
	w.balance(s)
}

// refuse closes a session that could not be routed, counting why.
func (w *Worker) refuse(s *session, counter *atomic.Int64, reason endReason, err error) {
	w.log.Debug("refused before routing", "listen", s.ln.addr, "client", s.peer, "end", reason, "err", err)
	counter.Add(1)
	w.endWith(s, reason)
}

// inspectExpired closes a session whose header or ClientHello did not
// arrive in time.
func (w *Worker) inspectExpired(s *session) {
	if s.ln.tls != nil {
		s.ln.inspector.owner.slot.TLSTimeout.Add(1)
	}
	w.refuse(s, &s.ln.inspector.owner.slot.InspectTimeout, endInspectTimeout, errors.New("inspect_timeout"))
}

// helloDeadline is when the next look before routing must be done:
// inspect_timeout from now and, on a TLS address, no later than
// handshake_timeout from the accept, which bounds the whole handshake.
func (w *Worker) helloDeadline(s *session, timeout int64) int64 {
	at := w.now + timeout
	if s.ln.tls != nil {
		at = min(at, s.started+s.ln.tlsLimit)
	}
	return at
}

// sendEarly queues, behind any PROXY header, what was read before routing.
func (w *Worker) sendEarly(s *session) bool {
	l := s.inspection
	b := l.early[l.off:]
	ok := len(b) == 0 || w.deliver(s, &s.back, b)
	w.putEarly(l.early)
	l.early, l.tlvs = nil, nil
	return ok
}

// getEarly is an empty buffer of earlySize for a session's first bytes.
func (w *Worker) getEarly() []byte {
	if n := len(w.earlies); n > 0 {
		b := w.earlies[n-1]
		w.earlies = w.earlies[:n-1]
		return b[:0]
	}
	return make([]byte, 0, earlySize)
}

// growEarly doubles l's buffer, up to inspectLimit. The old one goes to
// the GC, not the pool: l.tlvs may point into it.
func (w *Worker) growEarly(l *inspection) {
	b := make([]byte, len(l.early), min(2*cap(l.early), inspectLimit))
	copy(b, l.early)
	l.early = b
}

// putEarly keeps a few buffers of earlySize; grown ones go to the GC.
func (w *Worker) putEarly(b []byte) {
	if cap(b) == earlySize && len(w.earlies) < 256 {
		w.earlies = append(w.earlies, b[:0])
	}
}
