package master

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"g6/conf"
	"g6/health"
	"g6/shared"
)

// Active health checks run in the master, once per server (not once per
// worker), and write their verdict into the shared region's FlagCheckDown,
// which every worker's selection honours. What a check speaks is its type
// (package health). A server goes down after `fall` failures in a row and
// comes back after `rise` passes in a row; while it is down, why its last
// check failed is shown by show servers. The verdict is one of four
// independent reasons a server may be skipped: an admin disable, a missed
// heartbeat, a moratorium after a failed connect, a failed health check; a
// server is used only when none applies (so an admin disable always wins).

// checker runs the health checks of the current servers, one goroutine
// per server slot.
type checker struct {
	running map[int]*check // health checks by server slot
	agents  map[int]*check // agent checks by server slot
	wg      sync.WaitGroup
	mu      sync.Mutex     // guards why
	why     map[int]string // why a server held down failed, by slot
}

// check is one server's running health or agent check.
type check struct {
	ctx  context.Context // cancelled to stop it, a probe in flight too
	stop context.CancelFunc
	// what it checks: a change starts a new one
	hc    conf.HealthCheck
	agent conf.AgentCheck
	addr  string
	tls   *conf.ServerTLS
}

func newCheck(c check) *check {
	c.ctx, c.stop = context.WithCancel(context.Background())
	return &c
}

// same: a running check that checks what c would.
func (ch *check) same(c check) bool {
	return ch != nil && reflect.DeepEqual(ch.hc, c.hc) && ch.agent == c.agent && ch.addr == c.addr && reflect.DeepEqual(ch.tls, c.tls)
}

// syncChecks makes the running checks those of the pool's current servers
// (after a start, a reload and every runtime change): new servers get one,
// removed ones lose theirs, and a server whose rule has no check is never
// held down by an old verdict.
func (m *Master) syncChecks() {
	m.checkMu.Lock()
	defer m.checkMu.Unlock()
	if m.checks == nil {
		m.checks = &checker{running: map[int]*check{}, agents: map[int]*check{}, why: map[int]string{}}
	}
	c := m.checks
	cfg, entries := m.pool.Current()
	want, wantAgent := map[int]bool{}, map[int]bool{}
	for i, r := range cfg.Rules {
		for _, e := range entries[i] {
			slot := m.region.Server(e.Slot)
			log := m.log.With("rule", r.ID, "server", e.Server.Address)
			if a := r.AgentCheck; a != nil {
				wantAgent[e.Slot] = true
				m.startAgent(c, e, *a, log)
			}
			hc := e.Server.HealthCheck // the server's own, else the rule's
			if hc == nil {
				hc = r.HealthCheck
			}
			if hc == nil {
				slot.Flags.And(^int64(shared.FlagCheckDown))
				continue
			}
			want[e.Slot] = true
			key := check{hc: *hc, addr: e.Server.Address, tls: e.Server.TLS}
			if ch := c.running[e.Slot]; ch.same(key) {
				continue
			} else if ch != nil {
				ch.stop()
			}
			p := &health.Probe{Check: hc, Addr: e.Server.Address, Network: r.Protocol}
			var err error
			if p.TLS, err = checkTLSConfig(hc, e.Server, cfg.Files); err != nil {
				log.Error("health check not started", "err", err)
				continue
			}
			ch := newCheck(key)
			c.running[e.Slot] = ch
			c.wg.Add(1)
			onDown := func() {}
			if e.Server.OnDown == conf.OnDownShutdown {
				onDown = m.onDownFunc(e)
			}
			go runCheck(c, ch, p, e.Slot, slot, onDown, log)
		}
	}
	for slot, ch := range c.running {
		if !want[slot] {
			ch.stop()
			delete(c.running, slot)
			c.setWhy(slot, "")
		}
	}
	for slot, ch := range c.agents {
		if !wantAgent[slot] {
			ch.stop()
			delete(c.agents, slot)
		}
	}
	m.forgetAgents(cfg, entries)
	m.syncOutliers()
}

// checkTLSConfig is how a check that speaks TLS handshakes with srv:
// with the server's own tls table unless the check names a server_name
// or a ca of its own. A tls check verifies the chain only against a ca
// (its own or the server's).
func checkTLSConfig(hc *conf.HealthCheck, srv conf.Server, files map[string][]byte) (*tls.Config, error) {
	if hc.Type != conf.CheckTLS && !hc.TLS {
		return nil, nil
	}
	t := conf.ServerTLS{ServerName: hc.ServerName, CA: hc.CA, Verify: hc.Verify}
	if srv.TLS != nil && hc.ServerName == "" && hc.CA == "" {
		t = *srv.TLS
		if hc.Type == conf.CheckTLS {
			t.Verify = t.Verify && t.CA != ""
		}
	}
	c, err := t.Config(files, nil)
	if err != nil {
		return nil, err
	}
	c.ClientSessionCache = nil // every check a full handshake: it is what is checked
	if c.ServerName == "" {
		c.ServerName = serverHost(srv.Address)
	}
	return c, nil
}

// serverHost is the IP of an IP:port, for a certificate to name.
func serverHost(addr string) string {
	ap, err := conf.ParseHostPort(addr)
	if err != nil {
		return addr
	}
	return ap.Addr().Unmap().String()
}

func (c *checker) setWhy(slot int, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if why == "" {
		delete(c.why, slot)
	} else {
		c.why[slot] = why
	}
}

// checkErrors is why each server held down by its check failed, by slot.
func (m *Master) checkErrors() map[int]string {
	m.checkMu.Lock()
	c := m.checks
	m.checkMu.Unlock()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]string, len(c.why))
	for k, v := range c.why {
		out[k] = v
	}
	return out
}

func (m *Master) stopChecks() {
	m.checkMu.Lock()
	defer m.checkMu.Unlock()
	if m.checks != nil {
		for _, ch := range m.checks.running {
			ch.stop()
		}
		for _, ch := range m.checks.agents {
			ch.stop()
		}
		m.checks.wg.Wait()
		m.checks = nil
	}
	m.stopOutliers()
}

// runCheck checks one server every interval until stopped.
func runCheck(c *checker, ch *check, p *health.Probe, n int, slot *shared.ServerSlot, onDown func(), log *slog.Logger) {
	defer c.wg.Done()
	ctx, hc := ch.ctx, p.Check
	tick := time.NewTicker(hc.Interval.D())
	defer tick.Stop()
	passes, fails := 0, 0
	down := slot.Flags.Load()&shared.FlagCheckDown != 0
	warned := ""
	for {
		err := p.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		var warn *health.Warning
		if errors.As(err, &warn) {
			if warn.Msg != warned {
				log.Warn("health check passes with a warning", "warning", warn.Msg)
				warned = warn.Msg
			}
			err = nil
		}
		if err == nil {
			passes, fails = passes+1, 0
		} else {
			passes, fails = 0, fails+1
		}
		switch {
		case down && passes >= hc.Rise:
			down = false
			c.setWhy(n, "")
			slot.UpSince.Store(shared.Now())
			slot.Flags.And(^int64(shared.FlagCheckDown))
			log.Info("health check passes; server up", "type", hc.Type, "passes", passes)
		case !down && fails >= hc.Fall:
			down = true
			c.setWhy(n, err.Error())
			slot.Flags.Or(shared.FlagCheckDown)
			log.Warn("health check fails; server down", "type", hc.Type, "fails", fails, "err", err)
			onDown()
		case down && err != nil:
			c.setWhy(n, err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
