package master

import (
	"errors"
	"fmt"
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
	err := m.reloadConfig()
	// In a fleet every node shows why this one refused the fleet's config,
	// whichever step refused it: the config itself, its slots or sockets
	// (an address another process holds), or its workers.
	m.mu.Lock()
	m.fleetErr = ""
	if err != nil && len(m.opts.Etcd) > 0 {
		m.fleetErr = strings.SplitN(err.Error(), "\n", 2)[0]
	}
	m.mu.Unlock()
	if err != nil {
		m.logConfigError("reload refused; the running config keeps serving", err)
	}
}

// reloadConfig reads the config again and, if it is good, starts a
// generation for it and drains the current one into it.
func (m *Master) reloadConfig() error {
	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	g, bound, err := m.newGeneration(cfg)
	if err != nil {
		return err
	}
	g.setup.HoldUDP = cfg.Global.Handoff && m.cur.cfg.Global.Handoff // m.cur hands its sessions to g
	if err := m.startGeneration(g); err != nil {
		m.dropSockets(bound)
		m.republish()
		m.mu.Lock()
		m.old = append(m.old, g)
		m.mu.Unlock()
		return fmt.Errorf("master: its workers did not start: %w", err)
	}
	m.mu.Lock()
	prev := m.cur
	m.cur = g
	m.old = append(m.old, prev)
	m.mu.Unlock()
	m.steerGeneration(g)
	m.drainGeneration(prev, m.handoffPairs(prev, g), false)
	m.closeUnlistened()
	m.syncChecks()
	m.watchNames(cfg)
	m.log.Info("reloaded", "gen", g.id, "workers", g.nWork, "listen", g.addrs, "draining", prev.id)
	return nil
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
