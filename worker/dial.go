package worker

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// dial opens a socket of type typ (SOCK_STREAM: connecting, non-blocking;
// SOCK_DGRAM: connected at once) to srv for a client at peer, its count
// already taken (nextServer). It returns the fd, or -1 and whether the
// next server may be tried: a failure of this host (a source address
// gone, no local port) or of the server (counted by serverFailed) may,
// one of socket() itself (out of fds) may not. On -1 the count is given
// back.
func (w *Worker) dial(r *rule, srv *server, typ int, peer netip.AddrPort) (int, bool) {
	fd, e := sysSocket(srv.family, typ)
	if e != 0 {
		srv.slot.Release(w.counter)
		w.warnLimited(&w.socketFailed, "socket failed", "rule", r.id, "err", e)
		if resourceShortage(e) {
			w.pauseAccept()
		}
		return -1, false
	}
	tcp := typ == unix.SOCK_STREAM
	if tcp {
		sysSetInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if srv.opts.set {
			srv.opts.apply(fd)
		}
	}
	if src := w.sourceFor(peer, srv, !tcp); src != nil {
		if tcp {
			// The port is left to connect, which picks it for the whole
			// 4-tuple: bind alone would give each source one port range
			// for all servers. (UDP has no such option: its bind picks
			// the port, so a UDP session holds one per source address.)
			sysSetInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		}
		if srv.transparent {
			transparent(fd, srv.family)
		}
		if e := sysBind(fd, &src.rsa, src.len); e != 0 {
			sysClose(fd)
			srv.slot.Release(w.counter)
			r.slot.LocalFailures.Add(1)
			w.warnLimited(&w.localFailed, "bind to the source address failed; server not isolated",
				"rule", r.id, "server", srv.text, "err", e)
			return -1, true
		}
	}
	if e := sysConnect(fd, &srv.rsa, srv.rsaLen); e != 0 && !(tcp && e == unix.EINPROGRESS) {
		sysClose(fd)
		srv.slot.Release(w.counter)
		if localConnectError(e) {
			// This host's fault (out of local ports, buffers): the server
			// stays usable and the next one is tried. A UDP session holds
			// a local port for its life, so many of them run out first.
			r.slot.LocalFailures.Add(1)
			w.warnLimited(&w.localFailed, "connect failed on this host; server not isolated (out of local ports? list more source addresses)",
				"rule", r.id, "server", srv.text, "err", e)
			return -1, true
		}
		w.serverFailed(r, srv, e)
		return -1, true
	}
	return fd, true
}

// sourceFor is the address a connection for peer to srv is bound to: the
// client's (transparent, same family; its port too with port, so a UDP
// server sees the client as it is), the server's next source, or nil.
func (w *Worker) sourceFor(peer netip.AddrPort, srv *server, port bool) *source {
	if !srv.transparent {
		return srv.nextSource()
	}
	if family(peer) != srv.family {
		return nil // an IPv6 client cannot be the source towards IPv4
	}
	ip := peer.Addr().As16()
	b := ip[:]
	if srv.family == unix.AF_INET {
		b = b[12:]
	}
	var p uint16
	if port {
		p = peer.Port()
	}
	w.src.rsa, w.src.len = rawSockaddr(srv.family, b, p)
	return &w.src
}
