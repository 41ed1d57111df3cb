package master

import (
	"fmt"
	"time"

	"g6/admin"
	"g6/ipc"
	"g6/pool"
	"g6/shared"
)

// Change implements admin.Backend: the commands on servers. Pool changes
// are in the region (so in every worker) when it returns; closing
// sessions is asked of every worker.
func (m *Master) Change(cmd admin.Command) ([]string, error) {
	now := shared.Now()
	var done string
	var held []pool.Entry
	var err error
	switch cmd.Name {
	case admin.CmdDisable:
		held, err = m.pool.Disable(cmd.Server, deadline(now, cmd.Seconds))
		done = "disabled"
	case admin.CmdEnable:
		held, err = m.pool.Enable(cmd.Server)
		done = "enabled"
	case admin.CmdDrain:
		held, err = m.pool.Drain(cmd.Server, deadline(now, cmd.Seconds))
		done = "draining"
	case admin.CmdHeartbeat:
		return m.heartbeat(cmd, now)
	case admin.CmdAdd:
		var e pool.Entry
		if e, err = m.pool.Add(cmd.Rule, cmd.Server, cmd.Weight, cmd.MaxConns, cmd.Backup); err == nil {
			held, done = []pool.Entry{e}, "added"
		}
	case admin.CmdDel:
		var e pool.Entry
		if e, err = m.pool.Del(cmd.Rule, cmd.Server); err == nil {
			held, done = []pool.Entry{e}, "removed"
			if cmd.Now {
				m.shutdownSlots([]int{e.Slot})
			}
		}
	case admin.CmdWeight:
		held, err = m.pool.SetWeight(cmd.Rule, cmd.Server, *cmd.Weight)
		done = fmt.Sprintf("weight %d", *cmd.Weight)
	case admin.CmdMaxConns:
		held, err = m.pool.SetMaxConns(cmd.Server, *cmd.MaxConns)
		done = fmt.Sprintf("max_connections %d", *cmd.MaxConns)
	case admin.CmdShutdown:
		return m.shutdownSessions(cmd)
	default:
		return nil, fmt.Errorf("not a server command")
	}
	if err != nil {
		return nil, err
	}
	if cmd.Name == admin.CmdAdd || cmd.Name == admin.CmdDel {
		m.syncChecks()
	}
	lines := make([]string, 0, len(held))
	for _, e := range held {
		lines = append(lines, admin.Line(e.Rule, cmd.Server, done))
	}
	return lines, nil
}

// deadline is now + seconds on the region's clock; 0 seconds: Forever.
func deadline(now, seconds int64) int64 {
	if seconds == 0 {
		return shared.Forever
	}
	return now + seconds*int64(time.Second)
}

// heartbeat records a report for every rule holding the server with a
// heartbeat period.
func (m *Master) heartbeat(cmd admin.Command, now int64) ([]string, error) {
	held, err := m.pool.Holding("", cmd.Server)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, e := range held {
		if e.Server.Heartbeat == 0 {
			continue
		}
		m.region.Server(e.Slot).Heartbeat(now, int64(e.Server.Heartbeat))
		lines = append(lines, admin.Line(e.Rule, cmd.Server, "heartbeat"))
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("server %s has no heartbeat period in any rule", cmd.Server)
	}
	return lines, nil
}

// shutdownSessions closes every live session to the server, in every
// worker, and reports how many per rule.
func (m *Master) shutdownSessions(cmd admin.Command) ([]string, error) {
	held, err := m.pool.Holding("", cmd.Server)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, e := range held {
		n, missing := m.shutdownSlots([]int{e.Slot})
		lines = append(lines, admin.Line(e.Rule, cmd.Server, fmt.Sprintf("closed %d sessions", n)))
		for _, w := range missing {
			lines = append(lines, "missing: "+w)
		}
	}
	return lines, nil
}

// shutdownSlots asks every live worker (of every generation) to close the
// sessions of the given server slots; it returns the total closed and the
// workers that did not answer in time (they close theirs when they read
// the request).
func (m *Master) shutdownSlots(slots []int) (int, []string) {
	closed, missing := askAll[ipc.Closed](m, ipc.TypeShutdown, ipc.Shutdown{Slots: slots}, admin.WorkerTimeout)
	total := 0
	for _, c := range closed {
		total += c.Sessions
	}
	return total, missing
}
