package worker

import (
	"log/slog"
	"sync/atomic"
	"time"

	"g6/logging"
)

// endReason is why a session ended, as the access log says it (one byte
// in the session; endTexts has the words).
type endReason uint8

// Session end reasons; endUnknown = none recorded yet.
const (
	endUnknown endReason = iota
	endClientClose
	endServerClose
	endTimeout
	endLimit
	endNoServer
	endNoMatch
	endError
	endShutdown
	endServerGone // shutdown sessions, del server now, a drain's deadline, on_down
	endDenied
	endRateLimit
	// Closed before routing (inspect.go); metrics count them as
	// shared.RuleSlot.Refusals name them.
	endInspectTimeout
	endInspectFull
	endBadProxy
	endProxyUntrusted
	endBadHello
	endNoRule
	// A TLS handshake g6 terminates failed (tls.go).
	endHandshakeTimeout
	endHandshakeFailed
	// A UDP session (udp.go): idle for its timeout, its responses
	// received, its server's ICMP error with no other server left.
	endIdle
	endResponses
	endServerUnreachable
	endReasons
)

var endTexts = [endReasons]string{"", "client close", "server close", "timeout", "limit", "no server", "no match",
	"error", "shutdown", "server shutdown", "denied", "rate limit", "inspect timeout", "inspect full", "bad proxy",
	"proxy untrusted", "bad hello", "no rule", "handshake timeout", "handshake failed", "idle", "responses",
	"server unreachable"}

func (r endReason) String() string { return endTexts[r] }

// parseEndReason is the reason a text names (a handed session's), or
// endUnknown.
func parseEndReason(text string) endReason {
	for i, t := range endTexts {
		if t == text {
			return endReason(i)
		}
	}
	return endUnknown
}

// accessLog writes one line per finished session (off unless configured).
// A line the file does not take (a full disk) is counted in the region
// (the master reports the count) and the first failure of each run of
// them is logged here with its error.
type accessLog struct {
	file    *logging.File
	log     *slog.Logger
	dropped *atomic.Int64 // shared.Region.AccessLogDropped
	failing bool          // the last line was not written
	onFail  func(error)   // the first failure of a run
	onOK    func()        // the first line written after a run of failures
}

// Write passes a finished line to the file, counting a failure.
func (a *accessLog) Write(b []byte) (int, error) {
	n, err := a.file.Write(b)
	switch {
	case err != nil:
		a.dropped.Add(1)
		if !a.failing && a.onFail != nil {
			a.onFail(err)
		}
		a.failing = true
	case a.failing:
		a.failing = false
		if a.onOK != nil {
			a.onOK()
		}
	}
	return n, err
}

func openAccessLog(path, format string, dropped *atomic.Int64, onFail func(error), onOK func()) (*accessLog, error) {
	if path == "" {
		return nil, nil
	}
	f, err := logging.Open(path)
	if err != nil {
		return nil, err
	}
	a := &accessLog{file: f, dropped: dropped, onFail: onFail, onOK: onOK}
	var h slog.Handler = slog.NewTextHandler(a, nil)
	if format == "json" {
		h = slog.NewJSONHandler(a, nil)
	}
	a.log = slog.New(h)
	return a, nil
}

// session logs a session that ended (once: end() runs once per session).
func (a *accessLog) session(w *Worker, s *session) {
	server := ""
	if s.server != nil {
		server = s.server.text
	}
	args := []any{"rule", s.rule.id, "client", s.peer.String(), "listen", s.ln.addr, "server", server,
		"bytes_from_client", s.front.bytes, "bytes_from_server", s.back.bytes,
		"duration_ms", float64(w.now-s.started) / float64(time.Millisecond), "end", s.reason.String(), "worker", w.slot}
	if l := s.inspection; l != nil && l.sni != "" {
		args = append(args, "sni", l.sni)
	}
	if l := s.inspection; l != nil && l.via.IsValid() {
		args = append(args, "via", l.via.String())
	}
	args = s.tlsLogArgs(args)
	a.log.Info("session", args...)
}

// refused logs a connection closed before it became a session.
func (a *accessLog) refused(w *Worker, ln *listener, peer string, reason endReason) {
	a.log.Info("session", "rule", ln.rule.id, "client", peer, "listen", ln.addr, "server", "",
		"bytes_from_client", 0, "bytes_from_server", 0, "duration_ms", 0, "end", reason.String(), "worker", w.slot)
}

// udpSession logs a UDP session that ended: a TCP session's fields, the
// protocol, and the datagrams each way.
func (a *accessLog) udpSession(w *Worker, s *udpSession) {
	server := ""
	if s.lastServer != nil {
		server = s.lastServer.text
	}
	a.log.Info("session", "rule", s.rule.id, "protocol", "udp", "client", s.peer.String(), "listen", s.ln.addr, "server", server,
		"bytes_from_client", s.bytes[0], "bytes_from_server", s.bytes[1],
		"datagrams_from_client", s.dgrams[0], "datagrams_from_server", s.dgrams[1],
		"duration_ms", float64(w.now-s.started)/float64(time.Millisecond), "end", s.reason.String(), "worker", w.slot)
}

// refusedUDP logs a datagram refused before it became a session.
func (a *accessLog) refusedUDP(w *Worker, ln *udpListener, peer string, reason endReason) {
	a.log.Info("session", "rule", ln.rule.id, "protocol", "udp", "client", peer, "listen", ln.addr, "server", "",
		"bytes_from_client", 0, "bytes_from_server", 0, "datagrams_from_client", 0, "datagrams_from_server", 0,
		"duration_ms", 0, "end", reason.String(), "worker", w.slot)
}
