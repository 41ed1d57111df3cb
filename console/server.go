package console

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"g6/admin"
	"g6/conf"

	"github.com/libp2p/go-reuseport"
)

// Server is the master's HTTP side: /metrics and the console (the page,
// /api/v1, its actions and its charts), on one listener per address.
type Server struct {
	backend admin.Backend
	version string
	log     *slog.Logger
	lns     []*limitListener // fixed once Start returns
	history history          // the charts, with a console
	stop    chan struct{}
}

// Start serves g's metrics and console addresses (either may be off; one
// listener when they are the same) for backend, which answers what the
// admin port answers; version goes into g6_build_info. A console samples
// its charts every second until Close.
func Start(backend admin.Backend, version string, g conf.Global, log *slog.Logger) (*Server, error) {
	s := &Server{backend: backend, version: version, log: log, stop: make(chan struct{})}
	muxes := map[string]*http.ServeMux{}
	mux := func(addr string) *http.ServeMux {
		if muxes[addr] == nil {
			muxes[addr] = http.NewServeMux()
		}
		return muxes[addr]
	}
	if g.Metrics != "" {
		mux(g.Metrics).Handle("/metrics", s.metricsHandler())
	}
	if g.Console != "" {
		mux(g.Console).Handle("/api/v1/", s.apiHandler())
		mux(g.Console).Handle("/", pageHandler())
	}
	for addr, mx := range muxes {
		ln, err := listen(addr)
		if err != nil {
			s.Close()
			return nil, err
		}
		lim := newLimitListener(ln, addr, g.HTTPMaxConns, g.HTTPMaxPerIP, log)
		s.lns = append(s.lns, lim)
		idle := g.HTTPIdleTimeout.D()
		srv := &http.Server{Handler: mx, ReadHeaderTimeout: min(5*time.Second, idle), ReadTimeout: idle,
			WriteTimeout: g.HTTPWriteTimeout.D(), IdleTimeout: idle, MaxHeaderBytes: 16 << 10,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn), ConnState: lim.connState}
		go srv.Serve(lim)
	}
	if g.Console != "" {
		go sampleHistory(s)
	}
	return s, nil
}

// Close stops listening and sampling; requests in flight finish.
func (s *Server) Close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	for _, ln := range s.lns {
		ln.Close()
	}
}

// sampleHistory feeds the charts every second until Close.
func sampleHistory(s *Server) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-tick.C:
			s.history.sample(s.backend.Snapshot(), now)
		}
	}
}

// listen binds an address of the HTTP endpoints. SO_REUSEPORT: during a
// USR2 upgrade the new master binds the address while the old one still
// serves it (the kernel shares connections out between the two until the
// old one exits).
func listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: reuseport.Control}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, errors.Join(errors.New("console: http "+addr), err)
	}
	return ln, nil
}
