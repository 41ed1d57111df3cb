package master

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"g6/conf"
	"g6/ipc"
	"g6/logging"
	"g6/shared"
)

// Options are the command-line settings of `g6 master`.
type Options struct {
	ConfigPath string
	Workers    int    // 0 = config, then one per CPU
	LogLevel   string // overrides the config when set
	LogFile    string // overrides the config when set
	PidFile    string
}

// readyTimeout bounds how long a new worker may take to report ready.
const readyTimeout = 10 * time.Second

// Master is the running master process.
type Master struct {
	opts    Options
	exe     string
	cfg     *conf.Config
	log     *slog.Logger
	logFile *logging.File
	region  *shared.Region
	nWork   int
	addrs   []string
	sockets map[string][]int // listen address → one socket per worker slot
	setup   ipc.Setup
	workers []*workerProc
	backoff []time.Duration
	exits   chan exitEvent
	msgs    chan workerMsg
	respawn chan int

	stopping bool
	stopKill <-chan time.Time

	mu       sync.Mutex // guards workers and setup against the admin goroutines
	adminLns []net.Listener
	started  time.Time
	restarts []int
}

// Run starts the master and serves until stopped; it returns the exit code.
func Run(opts Options) int {
	m, err := start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "g6:", err)
		return 1
	}
	return m.loop()
}

func start(opts Options) (*Master, error) {
	cfg, err := conf.Load(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	if opts.LogLevel != "" {
		cfg.Global.LogLevel = opts.LogLevel
	}
	if opts.LogFile != "" {
		cfg.Global.LogFile = opts.LogFile
	}
	level, err := logging.Level(cfg.Global.LogLevel)
	if err != nil {
		return nil, err
	}
	lf, err := logging.Open(cfg.Global.LogFile)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("master: %w", err)
	}
	m := &Master{
		opts: opts, exe: exe, cfg: cfg, logFile: lf,
		log:     logging.New(lf, level).With("master", os.Getpid()),
		exits:   make(chan exitEvent, 16),
		msgs:    make(chan workerMsg, 64),
		respawn: make(chan int, 16),
		sockets: map[string][]int{},
		started: time.Now(),
	}
	m.nWork = workerCount(opts.Workers, cfg.Global.Workers)
	if err := m.prepare(); err != nil {
		m.closeSockets()
		return nil, err
	}
	if err := m.startAdmin(); err != nil {
		m.closeSockets()
		return nil, err
	}
	if err := m.startWorkers(); err != nil {
		m.closeSockets()
		m.closeAdmin()
		return nil, err
	}
	if opts.PidFile != "" {
		if err := os.WriteFile(opts.PidFile, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
			return nil, fmt.Errorf("master: pid file: %w", err)
		}
	}
	return m, nil
}

func workerCount(flag, config int) int {
	switch {
	case flag > 0:
		return min(flag, shared.MaxWorkers)
	case config > 0:
		return config
	}
	return min(runtime.NumCPU(), shared.MaxWorkers)
}

// prepare builds the shared region and binds every listen address.
func (m *Master) prepare() error {
	keys := slotKeys(m.cfg)
	region, err := shared.Create(shared.Sizes{Rules: 2*len(keys.Rules) + 16,
		Servers: 2*len(keys.Servers) + 64, Clients: 2*len(keys.Clients) + 64, IPs: clientTableSize})
	if err != nil {
		return err
	}
	m.region = region
	slots, err := region.Assign(keys)
	if err != nil {
		return err
	}
	m.setup = ipc.Setup{Config: m.cfg, RuleSlots: slots.Rules}
	ks, kc := 0, 0
	for _, r := range m.cfg.Rules {
		m.setup.Servers = append(m.setup.Servers, slots.Servers[ks:ks+len(r.Servers)])
		m.setup.Clients = append(m.setup.Clients, slots.Clients[kc:kc+len(r.Clients)])
		ks += len(r.Servers)
		kc += len(r.Clients)
		for _, l := range r.Listen {
			m.addrs = append(m.addrs, l.Address)
		}
	}
	m.setup.Listeners = m.addrs
	for _, addr := range m.addrs {
		fds, err := listenSockets(addr, m.nWork, m.cfg.Global.Backlog)
		if err != nil {
			return err
		}
		m.sockets[addr] = fds
	}
	return nil
}

// clientTableSize is the number of (client pattern, source IP) pairs the
// shared region can count at once for patterns with max_ip or
// max_connections_per_ip (160 bytes each).
const clientTableSize = 16384

// slotKeys names the shared slots of a config: state is kept across reloads
// for keys that stay the same.
func slotKeys(cfg *conf.Config) shared.Keys {
	var k shared.Keys
	for _, r := range cfg.Rules {
		k.Rules = append(k.Rules, r.ID)
		for _, s := range r.Servers {
			k.Servers = append(k.Servers, r.ID+" "+s.Address)
		}
		for _, c := range r.Clients {
			k.Clients = append(k.Clients, r.ID+" "+c.Pattern.Text)
		}
	}
	return k
}

// startWorkers starts every slot and waits until all report ready.
func (m *Master) startWorkers() error {
	m.workers = make([]*workerProc, m.nWork)
	m.backoff = make([]time.Duration, m.nWork)
	m.restarts = make([]int, m.nWork)
	for slot := range m.workers {
		if err := m.startSlot(slot); err != nil {
			return err
		}
	}
	deadline := time.After(readyTimeout)
	for n := 0; n < m.nWork; {
		select {
		case wm := <-m.msgs:
			if wm.msg.Type == ipc.TypeReady && !wm.w.ready {
				wm.w.ready = true
				n++
			}
		case ev := <-m.exits:
			m.stopAll()
			return fmt.Errorf("master: worker %d failed to start (%s)", ev.w.slot, describeExit(ev.status))
		case <-deadline:
			m.stopAll()
			return errors.New("master: workers did not report ready in time")
		}
	}
	m.log.Info("g6 started", "workers", m.nWork, "listen", m.addrs, "config", m.cfg.File)
	return nil
}

func (m *Master) startSlot(slot int) error {
	var listeners []int
	for _, addr := range m.addrs {
		listeners = append(listeners, m.sockets[addr][slot])
	}
	setup := m.setup
	setup.Slot = slot
	w, err := m.spawn(slot, listeners, &setup)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.workers[slot] = w
	m.mu.Unlock()
	return nil
}

func (m *Master) closeSockets() {
	for addr, fds := range m.sockets {
		closeAll(fds)
		delete(m.sockets, addr)
	}
}

// stopAll kills every worker at once (failed start).
func (m *Master) stopAll() {
	for _, w := range m.workers {
		if w != nil && !w.exited {
			syscall.Kill(w.pid, syscall.SIGKILL)
		}
	}
}

// loop handles signals and worker events until the master stops.
func (m *Master) loop() int {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP,
		syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	for {
		select {
		case sig := <-sigs:
			m.onSignal(sig.(syscall.Signal))
		case ev := <-m.exits:
			m.onExit(ev)
		case wm := <-m.msgs:
			if wm.msg.Type == ipc.TypeReady {
				wm.w.ready = true
			}
		case slot := <-m.respawn:
			if !m.stopping {
				if err := m.startSlot(slot); err != nil {
					m.log.Error("respawn failed", "slot", slot, "err", err)
					m.scheduleRespawn(slot, time.Second)
				}
			}
		case <-m.stopKill:
			m.log.Warn("workers did not stop in time; killing them")
			m.stopAll()
			m.stopKill = nil
		}
		if m.stopping && m.allExited() {
			m.log.Info("g6 stopped")
			if m.opts.PidFile != "" {
				os.Remove(m.opts.PidFile)
			}
			return 0
		}
	}
}

func (m *Master) allExited() bool {
	for _, w := range m.workers {
		if w != nil && !w.exited {
			return false
		}
	}
	return true
}

func (m *Master) onSignal(sig syscall.Signal) {
	m.log.Info("signal", "sig", sig.String())
	switch sig {
	case syscall.SIGTERM:
		m.stop(true)
	case syscall.SIGINT, syscall.SIGQUIT:
		m.stop(false)
	case syscall.SIGUSR1:
		if err := m.logFile.Reopen(); err != nil {
			m.log.Error("reopen log", "err", err)
		}
		m.broadcast(ipc.TypeReopen, nil)
	case syscall.SIGHUP, syscall.SIGUSR2:
		m.log.Warn("reload and upgrade are not available yet", "sig", sig.String())
	}
}

// stop closes the listening sockets at once (new connections are refused),
// then drains (graceful) or stops the workers.
func (m *Master) stop(graceful bool) {
	if m.stopping && graceful {
		return
	}
	m.stopping = true
	m.closeSockets()
	m.closeAdmin()
	drain := m.cfg.Global.DrainTimeout.D()
	if graceful {
		m.broadcast(ipc.TypeDrain, struct{ Timeout int64 }{int64(drain)})
		m.stopKill = time.After(drain + 5*time.Second)
	} else {
		m.broadcast(ipc.TypeStop, nil)
		m.stopKill = time.After(2 * time.Second)
	}
}

func (m *Master) broadcast(typ string, body any) {
	for _, w := range m.workers {
		if w != nil && !w.exited {
			m.send(w, typ, body)
		}
	}
}

// onExit records a worker's end and, unless stopping, respawns its slot on
// the same sockets after releasing its counts.
func (m *Master) onExit(ev exitEvent) {
	w := ev.w
	m.mu.Lock()
	w.exited = true
	m.mu.Unlock()
	w.conn.Close()
	m.region.ReleaseWorker(w.slot)
	if m.stopping || m.workers[w.slot] != w {
		m.log.Info("worker exited", "slot", w.slot, "pid", w.pid, "status", describeExit(ev.status))
		return
	}
	lived := time.Since(w.started)
	delay := time.Duration(0)
	if lived < time.Second {
		delay = min(max(2*m.backoff[w.slot], 100*time.Millisecond), 5*time.Second)
	}
	m.backoff[w.slot] = delay
	m.mu.Lock()
	m.restarts[w.slot]++
	m.mu.Unlock()
	m.log.Error("worker died; respawning", "slot", w.slot, "pid", w.pid,
		"status", describeExit(ev.status), "lived", lived.Round(time.Millisecond), "delay", delay)
	m.scheduleRespawn(w.slot, delay)
}

func (m *Master) scheduleRespawn(slot int, delay time.Duration) {
	if delay == 0 {
		m.respawn <- slot
		return
	}
	time.AfterFunc(delay, respawnTimer{m: m, slot: slot}.fire)
}

// respawnTimer delivers a delayed respawn to the master's loop.
type respawnTimer struct {
	m    *Master
	slot int
}

func (r respawnTimer) fire() { r.m.respawn <- r.slot }
