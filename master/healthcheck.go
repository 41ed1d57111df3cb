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

// checker runs the health checks of the current servers, one goroutine
// per server slot.
type checker struct {
	running map[int]*check
	wg      sync.WaitGroup
}

// check is one server's running health check.
type check struct {
	stop chan struct{}
	hc   conf.HealthCheck
	addr string
}

// syncChecks makes the running checks those of the pool's current servers
// (after a start, a reload and every runtime change): new servers get one,
// removed ones lose theirs, and a server whose rule has no check is never
// held down by an old verdict.
func (m *Master) syncChecks() {
	m.checkMu.Lock()
	defer m.checkMu.Unlock()
	if m.checks == nil {
		m.checks = &checker{running: map[int]*check{}}
	}
	c := m.checks
	cfg, entries := m.pool.Current()
	want := map[int]bool{}
	for i, r := range cfg.Rules {
		for _, e := range entries[i] {
			slot := m.region.Server(e.Slot)
			if r.HealthCheck == nil {
				slot.Flags.And(^int64(shared.FlagCheckDown))
				continue
			}
			want[e.Slot] = true
			if ch := c.running[e.Slot]; ch != nil && ch.hc == *r.HealthCheck && ch.addr == e.Server.Address {
				continue
			} else if ch != nil {
				close(ch.stop)
			}
			ch := &check{stop: make(chan struct{}), hc: *r.HealthCheck, addr: e.Server.Address}
			c.running[e.Slot] = ch
			c.wg.Add(1)
			onDown := func() {}
			if e.Server.OnDown == conf.OnDownShutdown {
				onDown = m.onDownFunc(e)
			}
			go runCheck(c, ch, slot, onDown, m.log.With("rule", r.ID, "server", e.Server.Address))
		}
	}
	for slot, ch := range c.running {
		if !want[slot] {
			close(ch.stop)
			delete(c.running, slot)
		}
	}
}

func (m *Master) stopChecks() {
	m.checkMu.Lock()
	defer m.checkMu.Unlock()
	if m.checks != nil {
		for _, ch := range m.checks.running {
			close(ch.stop)
		}
		m.checks.wg.Wait()
		m.checks = nil
	}
}

// runCheck checks one server every interval until stopped.
func runCheck(c *checker, ch *check, slot *shared.ServerSlot, onDown func(), log *slog.Logger) {
	defer c.wg.Done()
	hc, addr := &ch.hc, ch.addr
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
			slot.UpSince.Store(shared.Now())
			slot.Flags.And(^int64(shared.FlagCheckDown))
			log.Info("health check passes; server up", "passes", passes)
		case !down && fails >= hc.Fall:
			down = true
			slot.Flags.Or(shared.FlagCheckDown)
			log.Warn("health check fails; server down", "fails", fails, "err", err)
			onDown()
		}
		select {
		case <-ch.stop:
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
