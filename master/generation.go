package master

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"g6/conf"
	"g6/ipc"
	"g6/shared"

	"golang.org/x/sys/unix"
)

// generation is one config and the workers that serve it. A reload or an
// upgrade starts a new generation; the old one drains.
type generation struct {
	id       int
	cfg      *conf.Config
	setup    ipc.Setup
	addrs    []string // rule listen addresses, in config order, each once
	nWork    int
	workers  []*workerProc // by slot
	backoff  []time.Duration
	deaths   [][]time.Time
	restarts []int
	draining bool
	steer    bool // worker_steering = "least" and the steering table exists
}

// newGeneration assigns shared slots and sockets for cfg; nothing runs yet.
func (m *Master) newGeneration(cfg *conf.Config) (*generation, []string, error) {
	keys := slotKeys(cfg)
	slots, err := m.region.Assign(keys)
	if err != nil {
		return nil, nil, err
	}
	m.nextGen++
	g := &generation{id: m.nextGen, cfg: cfg, nWork: workerCount(m.opts.Workers, cfg.Global.Workers)}
	g.setup = ipc.Setup{Generation: g.id, Config: cfg, RuleSlots: slots.Rules, Files: cfg.Files}
	g.steer = m.wantSteering(cfg)
	g.setup.Accel = m.wantAccel(cfg)
	kc := 0
	for _, r := range cfg.Rules {
		n := len(r.Clients)
		if r.MaxConnections > 0 {
			n++ // the rule's own count (conf.RuleTotalKey)
		}
		g.setup.Clients = append(g.setup.Clients, slots.Clients[kc:kc+n])
		kc += n
		for _, l := range r.Listen {
			// Rules told apart by sni share an address and its sockets.
			if k := conf.ListenKey(r.Protocol, l.Address); !slices.Contains(g.addrs, k) {
				g.addrs = append(g.addrs, k)
			}
		}
	}
	bound, err := m.ensureSockets(g.addrs, g.nWork, cfg.Global.Backlog)
	if err != nil {
		return nil, nil, err
	}
	// The servers go into the region before the workers start, so they
	// find them; a start that fails publishes the current config's again
	// (republish).
	if err := m.pool.Publish(cfg, slots.Rules); err != nil {
		m.dropSockets(bound)
		m.republish()
		return nil, nil, fmt.Errorf("master: %w", err)
	}
	m.setStateFile(cfg)
	g.workers = make([]*workerProc, g.nWork)
	g.backoff = make([]time.Duration, g.nWork)
	g.deaths = make([][]time.Time, g.nWork)
	g.restarts = make([]int, g.nWork)
	return g, bound, nil
}

// republish makes the current generation's servers the region's again
// after a new config's did not start.
func (m *Master) republish() {
	if m.cur == nil {
		return
	}
	if err := m.pool.Publish(m.cur.cfg, m.cur.setup.RuleSlots); err != nil {
		m.log.Error("servers of the running config not published again", "err", err)
	}
	m.setStateFile(m.cur.cfg)
}

// setStateFile points the pool at cfg's state_file.
func (m *Master) setStateFile(cfg *conf.Config) {
	if err := m.pool.SetStateFile(cfg.Global.StateFile); err != nil {
		m.log.Error("runtime server changes not saved", "err", err)
	}
}

// slotKeys names the shared rule and client slots of a config: state is
// kept across reloads for keys that stay the same. Server slots are the
// pool's (pool.Table.Publish).
func slotKeys(cfg *conf.Config) shared.Keys {
	var k shared.Keys
	for _, r := range cfg.Rules {
		k.Rules = append(k.Rules, r.ID)
		for _, c := range r.Clients {
			k.Clients = append(k.Clients, conf.ClientKey(r.ID, c.Pattern.Text))
		}
		if r.MaxConnections > 0 {
			k.Clients = append(k.Clients, conf.RuleTotalKey(r.ID))
		}
	}
	return k
}

// startSlot starts the worker of one slot of g.
func (m *Master) startSlot(g *generation, slot int) error {
	counter, err := m.takeCounter()
	if err != nil {
		return err
	}
	setup := g.setup
	setup.Slot, setup.Counter = slot, counter
	// A worker restarted in a serving generation has no predecessor to
	// wait for.
	setup.HoldUDP = setup.HoldUDP && m.cur != g
	setup.TicketKeys = m.tickets // the current ones: a worker respawned after a rotation
	var fds []int
	for _, addr := range g.addrs {
		for _, fd := range pickSockets(m.sockets[conf.AddrKey(addr)], slot, g.nWork) {
			fds = append(fds, fd)
			setup.Listeners = append(setup.Listeners, addr)
		}
	}
	w, err := m.spawn(g, slot, counter, fds, &setup)
	if err != nil {
		m.freeCounter(counter)
		return err
	}
	m.mu.Lock()
	g.workers[slot] = w
	m.mu.Unlock()
	return nil
}

// startGeneration starts every worker of g and waits until all report
// ready; other events that arrive meanwhile are handled as usual.
func (m *Master) startGeneration(g *generation) error {
	for slot := range g.workers {
		if err := m.startSlot(g, slot); err != nil {
			m.killGeneration(g)
			return err
		}
	}
	deadline := time.After(readyTimeout)
	for !g.allReady() {
		select {
		case wm := <-m.msgs:
			m.onMessage(wm)
		case ev := <-m.exits:
			m.onExit(ev)
			if ev.w.gen == g {
				m.killGeneration(g)
				return fmt.Errorf("master: worker %d failed to start (%s)", ev.w.slot, describeExit(ev.status))
			}
		case <-deadline:
			m.killGeneration(g)
			return errors.New("master: workers did not report ready in time")
		}
	}
	return nil
}

func (g *generation) allReady() bool {
	for _, w := range g.workers {
		if w == nil || !w.ready {
			return false
		}
	}
	return true
}

func (g *generation) live() int {
	n := 0
	for _, w := range g.workers {
		if w != nil && !w.exited {
			n++
		}
	}
	return n
}

// killGeneration stops a generation that must not serve (failed start).
func (m *Master) killGeneration(g *generation) {
	g.draining = true
	for _, w := range g.workers {
		if w != nil && !w.exited {
			killProcess(w.pid)
		}
	}
}

// drainGeneration tells g's workers to stop accepting and finish their
// sessions within the drain deadline; stragglers are killed after it. A
// worker with a handoff channel in chans (handoff.go) passes its
// established sessions over it first; the channel's fd is closed here.
// stop: g6 is stopping and no generation follows (ipc.Drain.Stop).
func (m *Master) drainGeneration(g *generation, chans map[*workerProc]int, stop bool) {
	g.draining = true
	drain := g.cfg.Global.DrainTimeout.D()
	for _, w := range g.workers {
		if w == nil || w.exited {
			continue
		}
		fd, ok := chans[w]
		if !ok {
			m.send(w, ipc.TypeDrain, ipc.Drain{Timeout: int64(drain), Stop: stop})
			continue
		}
		delete(chans, w)
		if err := w.writeFd(ipc.TypeDrain, ipc.Drain{Timeout: int64(drain), Handoff: true}, fd); err != nil {
			m.log.Error("handoff channel not passed; that worker's sessions drain", "slot", w.slot, "err", err)
			m.send(w, ipc.TypeDrain, ipc.Drain{Timeout: int64(drain), Stop: stop})
		}
		unix.Close(fd)
	}
	for _, fd := range chans {
		unix.Close(fd)
	}
	time.AfterFunc(drain+5*time.Second, genTimer{m: m, g: g}.fire)
}

// genTimer reports that a draining generation's deadline has passed.
type genTimer struct {
	m *Master
	g *generation
}

func (t genTimer) fire() { t.m.overdue <- t.g }

// takeCounter claims a per-worker counter slot in the shared region.
func (m *Master) takeCounter() (int, error) {
	if i, ok := m.region.ClaimWorker(os.Getpid()); ok {
		return i, nil
	}
	return -1, fmt.Errorf("master: all %d per-worker counter slots are in use", shared.MaxWorkers)
}

// freeCounter gives a dead worker's counter slot back.
func (m *Master) freeCounter(i int) { m.region.FreeWorker(i) }
