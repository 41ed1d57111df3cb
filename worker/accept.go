package worker

import (
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
	fd      int
	addr    string
	rule    *rule
	timeout int64 // idle timeout in ns, 0 = none
	nodelay bool  // accepted sockets inherit TCP_NODELAY from the listener
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

func (w *Worker) onAccept(ln *listener) {
	for i := 0; i < acceptBatch && !w.draining && w.acceptResume == 0; i++ {
		fd, e := accept4(ln.fd, &w.rsa)
		if e != 0 {
			if e != unix.EAGAIN {
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

// admit matches the client against the rule and starts a session.
func (w *Worker) admit(ln *listener, fd int, peer netip.AddrPort) {
	ip := peer.Addr().AppendTo(w.ipText[:0])
	port := strconv.AppendUint(w.portText[:0], uint64(peer.Port()), 10)
	client := ln.rule.match(ip, port)
	if client == nil {
		w.log.Debug("refused: client matches no pattern", "rule", ln.rule.id, "client", peer)
		ln.rule.slot.NoMatch.Add(1)
		if w.access != nil {
			w.access.refused(w, ln, peer.String(), endNoMatch)
		}
		sysClose(fd)
		return
	}
	ip16 := peer.Addr().As16()
	if client.limited {
		if reason := w.region.Admit(client.slot, ip16, w.counter, &client.limits); reason != shared.RefuseNone {
			w.log.Debug("refused: client limit", "rule", ln.rule.id, "client", peer,
				"pattern", client.pattern.Text, "limit", reason)
			if w.access != nil {
				w.access.refused(w, ln, peer.String(), endLimit)
			}
			sysClose(fd)
			return
		}
	}
	if !ln.nodelay {
		sysSetInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	s := w.newSession()
	s.rule, s.ln, s.peer, s.client, s.ip16 = ln.rule, ln, peer, client, ip16
	s.c.fd = fd
	s.c.canWrite = true // a new socket has room; EAGAIN corrects it
	if err := w.poll.add(fd, evRead|evWrite|evEdge); err != nil {
		w.log.Warn("epoll add client", "err", err)
		sysClose(fd)
		w.recycle(s)
		return
	}
	w.bind(fd, &s.c)
	r := ln.rule
	r.refresh(w.region)
	s.servers, s.nPrimary = r.servers, r.primary.Len()
	s.order = r.order(w.now, ip, s.order)
	w.connectNext(s)
}
