package master

import (
	"g6/conf"
	"g6/resolve"
)

// dnsTarget is where the resolver's answers go: the pool, then the health
// checks, which follow the pool's servers.
type dnsTarget struct{ m *Master }

func (d dnsTarget) SetAnswer(entry string, servers []resolve.Server) (bool, error) {
	changed, err := d.m.pool.SetAnswer(entry, servers)
	if changed {
		d.m.syncChecks()
	}
	return changed, err
}

func (d dnsTarget) Answer(entry string) []resolve.Server { return d.m.pool.Answer(entry) }

// watchNames makes the resolver look up cfg's name entries, and the pool
// forget the answers of the others, once cfg serves (after a start or a
// reload).
func (m *Master) watchNames(cfg *conf.Config) {
	m.mu.Lock()
	if m.resolver == nil {
		m.resolver = resolve.NewWatcher(dnsTarget{m}, m.log)
	}
	r := m.resolver
	m.mu.Unlock()
	if err := m.pool.PruneAnswers(); err != nil {
		m.log.Error("runtime server changes not saved", "err", err)
	}
	r.Sync(cfg)
}

// Resolvers implements admin.Backend (show resolvers).
func (m *Master) Resolvers() []resolve.Status {
	m.mu.Lock()
	r := m.resolver
	m.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.Status()
}

// stopNames ends every lookup, so no answer changes the pool after the
// health checks have stopped.
func (m *Master) stopNames() {
	m.mu.Lock()
	r := m.resolver
	m.mu.Unlock()
	if r != nil {
		r.Stop()
	}
}
