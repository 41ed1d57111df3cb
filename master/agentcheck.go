package master

import (
	"log/slog"
	"net"
	"strconv"
	"time"

	"g6/conf"
	"g6/health"
	"g6/pool"
)

// Agent checks (agent_check): the master asks an agent on each server
// for its own state and weight every interval, and the pool applies what
// it said (pool.SetAgent): down, drain and maint hold the server out
// (FlagAgentDown), a percentage scales the configured weight, maxconn
// sets max_connections; what a line does not say stays as the last one
// said ("up" after "50%" keeps 50%). An agent that cannot be reached changes nothing
// (the health check judges the service); the log says so once.

// startAgent runs e's agent check unless one already asks the same.
func (m *Master) startAgent(c *checker, e pool.Entry, a conf.AgentCheck, log *slog.Logger) {
	key := check{agent: a, addr: e.Server.Address}
	if ch := c.agents[e.Slot]; ch.same(key) {
		return
	} else if ch != nil {
		ch.stop()
	}
	ap, err := conf.ParseHostPort(e.Server.Address)
	if err != nil {
		return
	}
	ch := newCheck(key)
	c.agents[e.Slot] = ch
	c.wg.Add(1)
	p := &health.AgentProbe{Check: &ch.agent, Addr: net.JoinHostPort(ap.Addr().Unmap().String(), strconv.Itoa(a.Port))}
	go runAgent(c, ch, p, e.Rule, e.Server.Address, m.pool, log)
}

// forgetAgents drops what agents said for servers whose rule no longer
// has an agent check.
func (m *Master) forgetAgents(cfg *conf.Config, entries [][]pool.Entry) {
	for i, r := range cfg.Rules {
		if r.AgentCheck != nil {
			continue
		}
		for _, e := range entries[i] {
			if e.Agent != "" {
				m.pool.SetAgent(r.ID, e.Server.Address, nil)
			}
		}
	}
}

// runAgent asks one server's agent every interval until stopped.
func runAgent(c *checker, ch *check, p *health.AgentProbe, rule, addr string, tbl *pool.Table, log *slog.Logger) {
	defer c.wg.Done()
	tick := time.NewTicker(ch.agent.Interval.D())
	defer tick.Stop()
	last := pool.Agent{Weight: -1, MaxConns: -1}
	lastErr := ""
	for {
		a, err := p.Run(ch.ctx)
		if ch.ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && err.Error() != lastErr:
			log.Warn("agent check: no answer; the server keeps what its agent said last", "agent", p.Addr, "err", err)
			lastErr = err.Error()
		case err == nil:
			if lastErr != "" {
				log.Info("agent check answers again", "agent", p.Addr)
				lastErr = ""
			}
			a = a.Over(last)
			if a != last {
				if err := tbl.SetAgent(rule, addr, &a); err != nil {
					log.Error("agent check: cannot apply", "err", err)
				} else {
					log.Info("agent says", "state", a.State, "weight_percent", a.Weight, "max_connections", a.MaxConns)
					last = a
				}
			}
		}
		select {
		case <-ch.ctx.Done():
			return
		case <-tick.C:
		}
	}
}
