package worker

import (
	"crypto/tls"
	"net/netip"
	"strconv"
	"unsafe"

	"g6/shared"

	"golang.org/x/sys/unix"
)

// acceptBatch bounds accepts per readiness event, so one busy listener does
// not starve established sessions.
const acceptBatch = 64

// listener is one inherited listening socket.
type listener struct {
	fd        int
	addr      string
	rule      *rule       // the rule (inspected: the one refusals count on, inspector.owner)
	timeout   int64       // idle timeout in ns, 0 = none (inspected: per route)
	nodelay   bool        // accepted sockets inherit TCP_NODELAY from the listener
	inspector *inspector  // nil: connections go to rule at once
	tls       *tls.Config // terminate TLS (tls.go); nil: plain
	tlsLimit  int64       // handshake_timeout, ns
	opts      sockopts
	dead      bool // no longer listening (shut down by the master): out of the epoll set for good
}

func peerAddr(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), ntohs(p.Port))
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr).Unmap(), ntohs(p.Port))
	}
	return netip.AddrPort{}
}

func ntohs(p uint16) uint16 { return p>>8 | p<<8 }

// onEvent accepts what is waiting on a listener.
func (ln *listener) onEvent(w *Worker, _ uint32) { w.onAccept(ln) }

func (w *Worker) onAccept(ln *listener) {
	for i := 0; i < acceptBatch && !w.draining && w.acceptResume == 0; i++ {
		fd, e := accept4(ln.fd, &w.rsa)
		if e != 0 {
			switch {
			case e == unix.EAGAIN:
			case notListening(e):
				// Level-triggered, a dead listener is readable forever.
				ln.dead = true
				w.poll.del(ln.fd)
				w.log.Warn("listening socket no longer listens; not polled again", "listen", ln.addr, "err", e)
			default:
				w.warnLimited(&w.acceptFailed, "accept failed", "listen", ln.addr, "err", e)
			}
			if resourceShortage(e) {
				w.pauseAccept()
			}
			return
		}
		w.admit(ln, fd, peerAddr(&w.rsa))
	}
}

// admit starts a session for an accepted client: at once on its rule, or
// by reading it first on an inspected address.
func (w *Worker) admit(ln *listener, fd int, peer netip.AddrPort) {
	if ln.inspector != nil {
		w.startInspect(ln, fd, peer)
		return
	}
	ip16 := peer.Addr().As16()
	client, reason := w.admitClient(ln.rule, peer, ip16)
	if client == nil {
		if w.access != nil {
			w.access.refused(w, ln, peer.String(), reason)
		}
		sysClose(fd)
		return
	}
	s := w.openSession(ln, fd, peer)
	if s == nil {
		w.unadmit(ln.rule, client, ip16)
		return
	}
	s.pattern, s.ip16 = client, ip16
	w.balance(s)
}

// openSession starts a session on an accepted client socket: the
// listener's socket options, then the epoll set; nil (the socket closed)
// if it cannot be watched.
func (w *Worker) openSession(ln *listener, fd int, peer netip.AddrPort) *session {
	if !ln.nodelay {
		sysSetInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if ln.opts.set {
		ln.opts.apply(fd)
	}
	s := w.newSession()
	s.rule, s.ln, s.peer = ln.rule, ln, peer
	s.front.fd = fd
	s.front.canWrite = true // a new socket has room; EAGAIN corrects it
	if err := w.poll.add(fd, evRead|evWrite|evEdge); err != nil {
		w.log.Warn("epoll add client", "err", err)
		sysClose(fd)
		w.recycle(s)
		return nil
	}
	w.bind(fd, &s.front)
	return s
}

// admitClient matches the client against r's patterns and takes its place
// under the pattern's limits; nil and the access log's reason if refused.
func (w *Worker) admitClient(r *rule, peer netip.AddrPort, ip16 [16]byte) (*client, endReason) {
	ip := peer.Addr().AppendTo(w.ipText[:0])
	port := strconv.AppendUint(w.portText[:0], uint64(peer.Port()), 10)
	client := r.match(peer.Addr(), ip, port)
	if client == nil {
		w.log.Debug("refused: client matches no pattern", "rule", r.id, "client", peer)
		r.slot.NoMatch.Add(1)
		return nil, endNoMatch
	}
	if client.deny {
		w.log.Debug("refused: client pattern denies", "rule", r.id, "client", peer, "pattern", client.pattern.Text)
		r.slot.Denied.Add(1)
		return nil, endDenied
	}
	if client.rated {
		if reason := w.region.AdmitRate(client.slot, ip16, w.now, &client.perIP, &client.total); reason != shared.RefuseNone {
			w.log.Debug("refused: rate limit", "rule", r.id, "client", peer,
				"pattern", client.pattern.Text, "limit", reason)
			return nil, endRateLimit
		}
	}
	if client.limited {
		if reason := w.region.Admit(client.slot, ip16, w.counter, &client.limits); reason != shared.RefuseNone {
			w.log.Debug("refused: client limit", "rule", r.id, "client", peer,
				"pattern", client.pattern.Text, "limit", reason)
			if client.rated {
				w.region.GiveBack(client.slot, ip16, w.now, &client.perIP, &client.total)
			}
			return nil, endLimit
		}
	}
	if t := r.total; t != nil {
		if reason := w.region.Admit(t.slot, ip16, w.counter, &t.limits); reason != shared.RefuseNone {
			w.log.Debug("refused: the rule's max_connections", "rule", r.id, "client", peer)
			w.releaseClient(client, ip16)
			if client.rated {
				w.region.GiveBack(client.slot, ip16, w.now, &client.perIP, &client.total)
			}
			return nil, endLimit
		}
	}
	return client, endUnknown
}

// releaseClient gives back a session's place under its pattern's limits.
func (w *Worker) releaseClient(c *client, ip16 [16]byte) {
	if c.limited {
		w.region.Release(c.slot, ip16, w.counter, &c.limits)
	}
}

// unadmit gives back what admitClient took: the pattern's place and the
// rule's.
func (w *Worker) unadmit(r *rule, c *client, ip16 [16]byte) {
	w.releaseClient(c, ip16)
	if t := r.total; t != nil {
		w.region.Release(t.slot, ip16, w.counter, &t.limits)
	}
}

// balance orders the rule's servers for an admitted session and starts
// connecting to the first.
func (w *Worker) balance(s *session) {
	w.beginSearch(&s.search, s.rule, s.peer)
	w.connectNext(s)
}
