package master

import (
	"errors"
	"strings"

	"g6/conf"
)

// reload (HUP, admin reload) starts a new generation with the config read
// again; once all its workers are ready, the current one drains. A bad
// config or a failed start leaves the current generation serving.
func (m *Master) reload() {
	if m.stopping {
		return
	}
	notifyReloading()
	defer notifyReady()
	cfg, err := m.loadConfig()
	m.mu.Lock()
	m.fleetErr = ""
	if err != nil && len(m.opts.Etcd) > 0 {
		m.fleetErr = strings.SplitN(err.Error(), "\n", 2)[0] // shown by show nodes on every node
	}
	m.mu.Unlock()
	if err != nil {
		m.logConfigError("reload refused; the running config keeps serving", err)
		return
	}
	g, bound, err := m.newGeneration(cfg)
	if err != nil {
		m.log.Error("reload refused; the running config keeps serving", "err", err)
		return
	}
	if err := m.startGeneration(g); err != nil {
		m.dropSockets(bound)
		m.republish()
		m.log.Error("reload failed; the running config keeps serving", "err", err)
		m.mu.Lock()
		m.old = append(m.old, g)
		m.mu.Unlock()
		return
	}
	m.mu.Lock()
	prev := m.cur
	m.cur = g
	m.old = append(m.old, prev)
	m.mu.Unlock()
	m.steerGeneration(g)
	m.drainGeneration(prev, m.handoffPairs(prev, g))
	m.closeUnlistened()
	m.syncChecks()
	m.watchNames(cfg)
	m.log.Info("reloaded", "gen", g.id, "workers", g.nWork, "listen", g.addrs, "draining", prev.id)
}

func (m *Master) logConfigError(msg string, err error) {
	var list conf.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			m.log.Error(msg, "err", e.Error())
		}
		return
	}
	m.log.Error(msg, "err", err)
}
