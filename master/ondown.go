package master

import (
	"time"

	"g6/conf"
	"g6/pool"
	"g6/shared"
)

// onDownFunc returns what a health check does when it marks e down with
// on_down = "shutdown-sessions".
func (m *Master) onDownFunc(e pool.Entry) func() {
	return func() {
		n, _ := m.shutdownSlots([]int{e.Slot})
		m.log.Warn("server down; its sessions closed (on_down)", "rule", e.Rule, "server", e.Server.Address, "sessions", n)
	}
}

// watchHeartbeats closes the sessions of servers with on_down =
// "shutdown-sessions" whose heartbeat is missed, once per miss.
func watchHeartbeats(m *Master, stop <-chan struct{}) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	down := map[int]bool{}
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		_, entries := m.pool.Current()
		now := shared.Now()
		for _, es := range entries {
			for _, e := range es {
				if e.Server.Heartbeat == 0 || e.Server.OnDown != conf.OnDownShutdown {
					continue
				}
				sl := m.region.Server(e.Slot)
				missed := sl.HeartbeatUntil.Load() != 0 && sl.HeartbeatUntil.Load() <= now
				if missed && !down[e.Slot] {
					m.onDownFunc(e)()
				}
				down[e.Slot] = missed
			}
		}
	}
}
