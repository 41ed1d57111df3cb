package master

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"g6/conf"
	"g6/shared"
)

// Active health checks run in the master, once per server (not once per
// worker), and write their verdict into the shared region's FlagCheckDown,
// which every worker's selection honours. A check is a TCP connect, or a
// connect that sends `send` and expects the answer to start with `expect`.
// A server goes down after `fall` failures in a row and comes back after
// `rise` passes in a row. The verdict is one of four independent reasons a
// server may be skipped: an admin disable, a missed heartbeat, a moratorium
// after a failed connect, a failed health check; a server is used only when
// none applies (so an admin disable always wins).

// checker runs the health checks of one generation.
type checker struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

// startChecks starts a checker for every server of cfg whose rule has a
// health check; stopChecks ends them (on reload and stop).
func (m *Master) startChecks(g *generation) {
	c := &checker{stop: make(chan struct{})}
	for i, r := range g.cfg.Rules {
		hc := r.HealthCheck
		if hc == nil {
			for j := range r.Servers {
				m.region.Server(g.setup.Servers[i][j]).Flags.And(^int64(shared.FlagCheckDown))
			}
			continue
		}
		for j, s := range r.Servers {
			c.wg.Add(1)
			slot := m.region.Server(g.setup.Servers[i][j])
			go runCheck(c, hc, s.Address, slot, m.log.With("rule", r.ID, "server", s.Address))
		}
	}
	m.checks = c
}

func (m *Master) stopChecks() {
	if m.checks != nil {
		close(m.checks.stop)
		m.checks.wg.Wait()
		m.checks = nil
	}
}

// runCheck checks one server every interval until stopped.
func runCheck(c *checker, hc *conf.HealthCheck, addr string, slot *shared.ServerSlot, log *slog.Logger) {
	defer c.wg.Done()
	tick := time.NewTicker(hc.Interval.D())
	defer tick.Stop()
	passes, fails := 0, 0
	down := slot.Flags.Load()&shared.FlagCheckDown != 0
	for {
		err := checkOnce(hc, addr)
		if err == nil {
			passes, fails = passes+1, 0
		} else {
			passes, fails = 0, fails+1
		}
		switch {
		case down && passes >= hc.Rise:
			down = false
			slot.Flags.And(^int64(shared.FlagCheckDown))
			log.Info("health check passes; server up", "passes", passes)
		case !down && fails >= hc.Fall:
			down = true
			slot.Flags.Or(shared.FlagCheckDown)
			log.Warn("health check fails; server down", "fails", fails, "err", err)
		}
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
	}
}

// checkOnce is one probe.
func checkOnce(hc *conf.HealthCheck, addr string) error {
	conn, err := net.DialTimeout("tcp", addr, hc.Timeout.D())
	if err != nil {
		return err
	}
	defer conn.Close()
	if hc.Send == "" && hc.Expect == "" {
		return nil
	}
	conn.SetDeadline(time.Now().Add(hc.Timeout.D()))
	if hc.Send != "" {
		if _, err := io.WriteString(conn, hc.Send); err != nil {
			return err
		}
	}
	if hc.Expect == "" {
		return nil
	}
	buf := make([]byte, len(hc.Expect))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return err
	}
	if !bytes.Equal(buf, []byte(hc.Expect)) {
		return errUnexpected
	}
	return nil
}

var errUnexpected = errors.New("master: health check: answer does not start with the expected bytes")
