package master

import (
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
	"g6/console"
	"g6/fleet"
	"g6/ipc"
	"g6/logging"
	"g6/pool"
	"g6/resolve"
	"g6/shared"
	"g6/steer"
)

// Options are the command-line settings of `g6 master`.
type Options struct {
	ConfigPath string
	Args       []string // the master's own arguments, for a USR2 re-exec
	Workers    int      // 0 = config, then one per CPU
	LogLevel   string   // overrides the config when set
	LogFile    string   // overrides the config when set
	PidFile    string
	// Etcd, Prefix and Node (g6 master --etcd URL --prefix P --node N): the
	// config comes from the fleet's store instead of a file.
	Etcd   []string
	Prefix string
	Node   string
}

// readyTimeout bounds how long new workers may take to report ready.
const readyTimeout = 10 * time.Second

// clientTableSize is the number of (client pattern, source IP) pairs the
// shared region can count at once for patterns with max_ip or
// max_connections_per_ip (160 bytes each).
const clientTableSize = 16384

// Master is the running master process. Only the loop goroutine changes it;
// mu guards what the admin goroutines read (cur and the worker lists).
type Master struct {
	opts    Options
	exe     string
	log     *slog.Logger
	logFile *logging.File
	region  *shared.Region
	sockets map[string][]int // canonical listen address → sockets, kept across generations
	cur     *generation
	old     []*generation
	nextGen int

	exits   chan exitEvent
	msgs    chan workerMsg
	respawn chan respawnReq
	overdue chan *generation
	stuck   chan stuckEvent
	late    chan lateEvent
	steer   *steer.Steerer // worker_steering = "least"; nil until a config wants it, or without BPF

	accelProbed bool  // accel.Available was asked (once)
	accelErr    error // its answer
	upgrade     *upgrade
	// reloadDeferred: a HUP came during the upgrade in flight.
	reloadDeferred bool

	stopping bool
	upgraded bool
	// successorPid is the master that took over by USR2 (0 = none): a
	// HUP that still reaches this one is passed on to it.
	successorPid      int
	successorChannels []int // handoff channels from the USR2 successor, for the current generation's workers
	stopKill          <-chan time.Time

	parent     int      // pid of the master this one replaced by USR2
	holders    []holder // earlier masters whose workers may still use counter slots (holders.go)
	holderGone chan int // a holder's pid, once it has exited

	mu           sync.Mutex
	adminLns     []net.Listener
	adminFds     map[string]int  // canonical admin address → raw socket (for upgrades)
	http         *console.Server // /metrics and the console; nil when both are off or did not start
	checks       *checker
	outliers     *outliers // guarded by checkMu, as checks
	checkMu      sync.Mutex
	pool         *pool.Table      // every rule's servers, config and runtime changes
	fleet        *fleet.Store     // the link to the other nodes ([cluster]); nil without one
	fleetErr     string           // the last config this node refused, for the registry
	resolver     *resolve.Watcher // looks up the config's name entries; nil until the first start
	rate         rate
	stopSamplers chan struct{}
	started      time.Time
	// tickets are the TLS session ticket keys, newest first (tickets.go).
	tickets      [][32]byte
	ticketRotate <-chan time.Time
}

// Run starts the master and serves until stopped; it returns the exit code.
func Run(opts Options) int {
	// Signals are caught before anything else: once the pid file exists (or
	// an upgrading parent hears "ready"), a USR2 or HUP must not be lost.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP,
		syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	ready := upgradeReadyFd()
	m, err := start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "g6:", err)
		reportUpgradeFailure(ready, err)
		return 1
	}
	return m.loop(sigs)
}

func start(opts Options) (*Master, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("master: %w", err)
	}
	m := &Master{
		opts: opts, exe: exe,
		exits:      make(chan exitEvent, 16),
		msgs:       make(chan workerMsg, 64),
		respawn:    make(chan respawnReq, 16),
		overdue:    make(chan *generation, 4),
		stuck:      make(chan stuckEvent, 4),
		late:       make(chan lateEvent, 16),
		holderGone: make(chan int, 4),
		sockets:    map[string][]int{},
		adminFds:   map[string]int{},
		started:    time.Now(),
	}
	cfg, err := m.loadConfig()
	if err != nil {
		return nil, err
	}
	level, _ := logging.Level(cfg.Global.LogLevel)
	if m.logFile, err = logging.Open(cfg.Global.LogFile); err != nil {
		return nil, err
	}
	m.log = logging.New(m.logFile, level).With("master", os.Getpid())
	inh, g, err := m.serveFirst(cfg)
	if err != nil {
		return nil, err
	}
	m.joinFleet(cfg)
	m.syncChecks()
	m.watchNames(cfg)
	m.stopSamplers = make(chan struct{})
	go sampleRate(m, m.stopSamplers)
	go watchHeartbeats(m, m.stopSamplers)
	if cfg.Global.Metrics != "" || cfg.Global.Console != "" {
		var herr error
		if m.http, herr = console.Start(m, Version, cfg.Global, m.log); herr != nil {
			m.log.Error("metrics or console endpoint not served", "err", herr)
		}
	}
	m.announce(inh)
	m.log.Info("g6 started", "workers", g.nWork, "listen", g.addrs, "config", cfg.File)
	return m, nil
}

// serveFirst takes the inherited sockets and region (or makes new ones),
// starts the first generation's workers, then the admin port. On an error
// no socket stays open and no worker runs.
func (m *Master) serveFirst(cfg *conf.Config) (inh *inheritance, g *generation, err error) {
	defer func() {
		if err != nil {
			if g != nil {
				m.killGeneration(g)
			}
			m.closeSockets()
			m.closeAdmin()
		}
	}()
	if inh, err = m.inherit(cfg); err != nil {
		return nil, nil, err
	}
	if m.tickets == nil {
		if m.tickets, err = newTicketKeys(); err != nil {
			return nil, nil, err
		}
	}
	m.ticketRotate = time.NewTicker(ticketRotation).C
	fresh := m.region == nil
	if fresh {
		if m.region, err = newRegion(cfg); err != nil {
			return nil, nil, err
		}
	}
	m.pool = pool.New(m.region, m.startState(cfg, inh), fresh)
	ng, _, err := m.newGeneration(cfg)
	if err != nil {
		return nil, nil, err
	}
	// The old master's workers will hand their sessions to these (USR2).
	ng.setup.HoldUDP = cfg.Global.Handoff && inh != nil && ipc.HandoffReads(inh.handoff) && inh.oldWorkers > 0
	if err = m.startGeneration(ng); err != nil {
		return nil, nil, err
	}
	g = ng
	m.mu.Lock()
	m.cur = g
	m.mu.Unlock()
	m.steerGeneration(g)
	// The admin port answers from the current generation, so it opens only
	// now.
	if err = m.startAdmin(cfg); err != nil {
		return nil, g, err
	}
	return inh, g, nil
}

func newRegion(cfg *conf.Config) (*shared.Region, error) {
	k := slotKeys(cfg)
	return shared.Create(shared.Sizes{Rules: 2*len(k.Rules) + 64, Servers: cfg.ServerSlots(),
		Clients: 4*len(k.Clients) + 256, IPs: clientTableSize})
}

// workerCount is -w, else the config's workers, else one per CPU, at most
// conf.MaxWorkers (the flag and the key are checked against it).
func workerCount(flag, config int) int {
	switch {
	case flag > 0:
		return min(flag, conf.MaxWorkers)
	case config > 0:
		return min(config, conf.MaxWorkers)
	}
	return min(runtime.NumCPU(), conf.MaxWorkers)
}

func (m *Master) closeSockets() {
	for addr, fds := range m.sockets {
		if m.steer != nil {
			m.steer.Forget(addr)
		}
		closeAll(fds)
		delete(m.sockets, addr)
	}
}

// loop handles signals and worker events until the master stops.
func (m *Master) loop(sigs <-chan os.Signal) int {
	for {
		select {
		case sig := <-sigs:
			m.onSignal(sig.(syscall.Signal))
		case ev := <-m.exits:
			m.onExit(ev)
		case wm := <-m.msgs:
			m.onMessage(wm)
		case r := <-m.respawn:
			m.onRespawn(r)
		case g := <-m.overdue:
			m.onOverdue(g)
		case ev := <-m.stuck:
			m.onStuck(ev)
		case ev := <-m.late:
			m.onLate(ev)
		case pid := <-m.holderGone:
			m.onHolderGone(pid)
		case <-m.ticketRotate:
			m.onTicketRotation()
		case res := <-m.upgradeResult():
			m.onUpgradeResult(res)
		case <-m.stopKill:
			m.log.Warn("workers did not stop in time; killing them")
			m.killAll()
			m.stopKill = nil
		}
		if m.stopping && m.allExited() && m.upgrade == nil {
			m.passPendingReloads(sigs)
			m.log.Info("g6 stopped")
			if m.opts.PidFile != "" && !m.upgraded {
				os.Remove(m.opts.PidFile)
			}
			return 0
		}
	}
}

// passPendingReloads passes the HUPs that arrived while this master was
// leaving on to its USR2 successor.
func (m *Master) passPendingReloads(sigs <-chan os.Signal) {
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP && m.successorPid != 0 {
				m.onSignal(syscall.SIGHUP)
			}
		default:
			return
		}
	}
}

func (m *Master) onMessage(wm workerMsg) {
	if wm.msg.Type == ipc.TypeReady && !wm.w.ready {
		wm.w.ready = true
		go watchWorker(wm.w, m.stuck, m.late)
		m.steerWorker(wm.w, true)
	}
}

func (m *Master) generations() []*generation {
	if m.cur == nil {
		return m.old
	}
	return append([]*generation{m.cur}, m.old...)
}

func (m *Master) allExited() bool {
	for _, g := range m.generations() {
		if g.live() > 0 {
			return false
		}
	}
	return true
}

func (m *Master) killAll() {
	for _, g := range m.generations() {
		m.killGeneration(g)
	}
	if m.upgrade != nil {
		killProcess(m.upgrade.pid)
	}
}

func (m *Master) onSignal(sig syscall.Signal) {
	m.log.Info("signal", "sig", sig.String())
	switch sig {
	case syscall.SIGTERM:
		m.stopUpgrade(sig)
		m.stop(true)
	case syscall.SIGINT, syscall.SIGQUIT:
		m.stopUpgrade(sig)
		m.stop(false)
	case syscall.SIGUSR1:
		if err := m.logFile.Reopen(); err != nil {
			m.log.Error("reopen log", "err", err)
		}
		m.broadcast(ipc.TypeReopen, nil)
	case syscall.SIGHUP:
		if m.successorPid != 0 {
			// Sent to the pid the sender knew; the config is served there now.
			m.log.Info("reload passed to the new master, which serves now", "new_master", m.successorPid)
			syscall.Kill(m.successorPid, syscall.SIGHUP)
			return
		}
		if m.upgrade != nil {
			// The current generation is about to hand its sessions to the
			// new master's; a reload now would drain it into a third
			// generation at the same time (issue #31).
			m.reloadDeferred = true
			m.log.Warn("reload deferred: an upgrade is in flight; the new master gets it once ready, or this one runs it if the upgrade fails",
				"new_master", m.upgrade.pid)
			return
		}
		m.reload()
	case syscall.SIGUSR2:
		m.startUpgrade()
	}
}

// stop closes the listening sockets at once (new connections are refused),
// then drains (graceful) or stops the workers.
func (m *Master) stop(graceful bool) {
	if m.stopping && graceful {
		return
	}
	m.stopping = true
	if !m.upgraded {
		notifyStopping()
	}
	m.closeSockets()
	m.closeAdmin()
	if m.http != nil {
		m.http.Close()
	}
	if m.fleet != nil {
		go m.fleet.Close() // its watch may take a moment to end; the master does not wait on it
	}
	m.stopNames()
	m.stopChecks()
	if m.stopSamplers != nil {
		close(m.stopSamplers)
		m.stopSamplers = nil
	}
	if graceful {
		for _, g := range m.generations() {
			if !g.draining {
				m.drainGeneration(g, m.successorChans(g), !m.upgraded)
			}
		}
		m.stopKill = time.After(m.cur.cfg.Global.DrainTimeout.D() + 6*time.Second)
		return
	}
	m.broadcast(ipc.TypeStop, nil)
	m.stopKill = time.After(2 * time.Second)
}

func (m *Master) broadcast(typ string, body any) {
	for _, g := range m.generations() {
		for _, w := range g.workers {
			if w != nil && !w.exited {
				m.send(w, typ, body)
			}
		}
	}
}
