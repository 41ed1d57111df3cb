package master

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"

	"g6/conf"
	"g6/fleet"
	"g6/shared"
)

// nodeInfo is this node's entry in the fleet registry.
func (m *Master) nodeInfo() fleet.NodeInfo {
	snap := m.Snapshot()
	info := fleet.NodeInfo{Version: Version, Started: m.started.Unix(), Workers: len(snap.Workers), Rate: snap.Rate}
	now := shared.Now()
	for _, es := range snap.Servers {
		for _, e := range es {
			sl := snap.Region.Server(e.Slot)
			info.Sessions += sl.Active.Load()
			if !sl.Usable(now) {
				info.Down = append(info.Down, e.Rule+" "+e.Server.Address)
			}
		}
	}
	// The same rules and settings hash the same on every node: the file
	// name and the node's own [cluster] are left out.
	c := *snap.Config
	c.File, c.Cluster = "", nil
	b, _ := json.Marshal(c)
	info.ConfigHash = fmt.Sprintf("%x", sha256.Sum256(b))[:12]
	m.mu.Lock()
	info.Error = m.fleetErr
	m.mu.Unlock()
	return info
}

// Nodes implements admin.Backend: the fleet's registry.
func (m *Master) Nodes() ([]fleet.NodeInfo, error) {
	if m.fleet == nil {
		return nil, errors.New("this node is in no fleet (no [cluster] in its config)")
	}
	return m.fleet.Nodes()
}

// joinFleet links the pool to the fleet's etcd ([cluster]); a reload
// keeps the link of the start (changing [cluster] takes a restart).
func (m *Master) joinFleet(cfg *conf.Config) {
	if cfg.Cluster == nil {
		return
	}
	f, err := fleet.Open(cfg.Cluster, m.pool, m.nodeInfo, m.log)
	if err != nil {
		m.log.Error("not joined to the fleet; runtime server changes stay on this node", "err", err)
		return
	}
	m.fleet = f
	if len(m.opts.Etcd) > 0 {
		// The fleet's config changed: reload as on HUP (the signal goes
		// through the loop like any other).
		f.WatchConfig(func() { syscall.Kill(os.Getpid(), syscall.SIGHUP) })
	}
}
