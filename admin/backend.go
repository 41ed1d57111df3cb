package admin

import (
	"time"

	"g6/conf"
	"g6/fleet"
	"g6/ipc"
	"g6/pool"
	"g6/resolve"
	"g6/shared"
)

// Backend is what the admin server needs from the master.
type Backend interface {
	// Snapshot returns the current generation's state; it must not block on
	// workers.
	Snapshot() Snapshot
	// Sessions asks every worker for its live sessions, waiting at most
	// timeout; missing names the workers that did not answer.
	Sessions(timeout time.Duration) (sessions []ipc.Session, missing []string)
	// Reload starts a reload (as HUP) and says whether it was accepted.
	Reload() error
	// Change runs a command on servers (the Cmd* names) in every worker
	// and returns its reply lines; an error changed nothing.
	Change(cmd Command) ([]string, error)
	// Nodes lists the fleet's nodes (show nodes).
	Nodes() ([]fleet.NodeInfo, error)
	// Resolvers reports every name entry's lookups (show resolvers).
	Resolvers() []resolve.Status
}

// Snapshot is the master's state at one moment.
type Snapshot struct {
	Config    *conf.Config
	Region    *shared.Region
	Rules     []int          // shared slot of each rule
	Servers   [][]pool.Entry // each rule's servers
	Gone      []pool.Entry   // servers removed at runtime with sessions still open
	Clients   [][]int        // shared slot of each rule's client patterns
	Workers   []Worker
	Started   time.Time
	Rate      float64 // connections/s over the last seconds
	RateKnown bool    // Rate is measured (two samples a second apart exist)
	// CheckErrors is why each server a health check holds down failed
	// its last check, by server slot.
	CheckErrors map[int]string
	// Ejected is why each server ejected as an outlier is out, by slot;
	// Ejections counts every ejection so far.
	Ejected   map[int]string
	Ejections []Ejections
}

// Ejections counts a server's ejections for one reason (outlier).
type Ejections struct {
	Rule, Server, Reason string
	Count                int64
}

// Worker is one live worker process.
type Worker struct {
	Slot     int
	Counter  int // its per-worker counter index in the region (shared.ServerSlot.PerWorker)
	Pid      int
	Started  time.Time
	Restarts int
	Steering string // conf.SteerHash, conf.SteerLeast, or "away": steered, not answering
}
