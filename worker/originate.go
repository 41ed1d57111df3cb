package worker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"g6/conf"

	"golang.org/x/sys/unix"
)

// TLS to the servers (a server's tls table): once the TCP connect is
// established, g6 sends the PROXY header if the server takes one (in the
// clear, before the ClientHello, as HAProxy does), then runs the client
// handshake in the loop like a terminated one (tls.go), bounded by
// connect_timeout with the connect. A handshake that fails (a certificate
// that does not verify, a name it does not carry, no common version, a
// reset) is the server's failure, as a refused connect is: it counts
// towards isolate_after and the session tries the next server.

// errOriginTimeout: the server did not finish the handshake within
// connect_timeout.
var errOriginTimeout = errors.New("tls handshake timed out")

// originConfigs builds every server TLS setting of the config, by
// profile. The system's CAs are read here, at setup, not on the loop at
// the first handshake.
func originConfigs(cfg *conf.Config, files map[string][]byte) (map[uint64]*tls.Config, error) {
	profiles := cfg.ServerTLSProfiles()
	if len(profiles) == 0 {
		return nil, nil
	}
	var roots *x509.CertPool
	out := map[uint64]*tls.Config{}
	for p, t := range profiles {
		if t.CA == "" && roots == nil {
			var err error
			if roots, err = x509.SystemCertPool(); err != nil {
				return nil, fmt.Errorf("worker: the system's CA certificates: %w", err)
			}
		}
		c, err := t.Config(files, roots)
		if err != nil {
			return nil, fmt.Errorf("worker: server tls: %w", err)
		}
		out[p] = c
	}
	return out, nil
}

// forServer is c for one server: without a server_name, its IP is what
// the certificate must name (and no SNI is sent).
func forServer(c *tls.Config, srv *server) *tls.Config {
	if c.ServerName != "" {
		return c
	}
	c = c.Clone()
	c.ServerName = srv.addr.Addr().Unmap().String()
	return c
}

// originate starts the handshake with the server s just connected to.
func (w *Worker) originate(s *session) {
	s.state = stateOriginating
	s.back.canWrite = true
	if !w.sendProxyHeader(s) {
		w.end(s)
		return
	}
	cfg := s.server.tls
	t := w.newTLSEnd(func(c net.Conn) *tls.Conn { return tls.Client(c, cfg) }, nil)
	if s.tls == nil {
		s.tls = &tlsEnds{}
	}
	s.tls.back = t
	s.back.noSplice, s.noPair = true, true
	w.originHandshake(s)
}

// onOriginEvent handles readiness of the server socket while its
// handshake runs.
func (w *Worker) onOriginEvent(s *session, ev uint32) {
	if ev&unix.EPOLLERR != 0 {
		soerr, _ := sysSoError(s.back.fd)
		w.originFailed(s, unix.Errno(soerr))
		return
	}
	ep := &s.back
	ep.canRead = ep.canRead || ev&(evRead|unix.EPOLLHUP) != 0
	ep.hup = ep.hup || ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0
	ep.canWrite = ep.canWrite || ev&evWrite != 0
	w.originHandshake(s)
}

// originHandshake goes on with the handshake to the server; once it is
// over the session is established, or tries the next server.
func (w *Worker) originHandshake(s *session) {
	t := s.tls.back
	if s.back.pend != nil && s.back.canWrite {
		if err := w.flush(&s.back); err != nil {
			w.originFailed(s, err)
			return
		}
	}
	done, ok := w.stepHandshake(s, &s.back, t)
	switch {
	case !ok:
		w.originFailed(s, errors.New("connection reset during the handshake"))
	case !done:
	case t.err != nil:
		w.originFailed(s, t.err)
	default:
		w.established(s)
	}
}

// originFailed counts a failed handshake against the server and tries
// the next one.
func (w *Worker) originFailed(s *session, err error) {
	s.tls.back.abandon()
	s.tls.back = nil
	if s.tls.front == nil {
		s.tls = nil
	}
	w.serverFailed(s.rule, w.abandonServer(s), err)
	s.state = stateConnecting
	w.connectNext(s)
}
