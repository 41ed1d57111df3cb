package worker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"g6/accel"
	"g6/conf"
	"g6/ipc"
	"g6/logging"
	"g6/shared"
	"g6/steer"

	"golang.org/x/sys/unix"
)

var errConnectTimeout = errors.New("connect timeout")

// polled is what an fd in the epoll set stands for: a listener, a
// session's socket, a handoff channel. A kind of session plugs into the
// loop by being one (its sockets) and timed (its deadlines).
type polled interface {
	onEvent(w *Worker, ev uint32)
}

// Worker is one worker process's state; only its loop goroutine touches it.
type Worker struct {
	slot        int // worker slot (0..n-1): which sockets it holds, its CPU
	counter     int // per-worker counter slot in the shared region; unique among live workers, so a dead one's counts can be released
	log         *slog.Logger
	logFile     *logging.File
	access      *accessLog // nil when access_log is off
	poll        *poller
	region      *shared.Region
	rules       []*rule // in config order, built on the master's slot numbers
	listeners   []*listener
	fds         []polled       // what each fd in the epoll set is, indexed by fd
	ctrl        stream         // the socketpair to the master
	handoff     *handChan      // draining with a handoff channel (handoff.go)
	adopts      []*handChan    // channels sessions come in on (adopt.go)
	steer       *steer.Table   // worker_steering = "least": where this slot's session count goes; nil otherwise
	steerN      int            // the count last published
	sockmap     *accel.Pairs   // accel = "sockmap": this worker's sockmap (accel.go); nil otherwise
	freedPairs  []freedPair    // pairs of sessions ended in this batch: their slots are free once closed
	pairingPool []*pairing     // kept for reuse
	handedMaps  []*accel.Pairs // maps other workers handed with their paired sessions
	pairingOff  bool           // the kernel duplicated bytes: pair nothing more (kernelDuplicated)

	now            int64 // shared.Now() at the top of the loop turn
	connectTimeout int64 // ns
	moratorium     int64 // ns a failed server sits out
	moratoriumText string
	drainTimeout   int64    // ns; how long to drain when the master goes away
	spliceAfter    int64    // bytes a direction carries before it splices
	maxInspecting  int      // sessions read before routing at once (inspect.go)
	inspecting     int      // sessions in stateInspecting
	earlies        [][]byte // small early buffers kept for reuse (inspect.go)
	peak           int      // most live sessions since memory was last given back (trimMemory)
	trimAt         int64    // next look at whether to give memory back

	udp         udpState      // UDP listeners and sessions (udp.go)
	live        []*session    // sessions in flight; each knows its index
	free        []*session    // ended sessions kept for reuse
	ended       []*session    // ended in this turn; freed by reap once every event of the batch is seen
	closing     []int         // fds closed at the end of the batch (deferClose)
	timers      timerHeap     // connect and idle deadlines, lazily invalidated by session generation
	bufs        [][]byte      // pending-tail buffers kept for reuse (keepPooled at most)
	pipes       []*pipe       // empty splice pipes kept for reuse (keepPooled at most)
	inspections []*inspection // kept for reuse (keepPooled at most)
	scratch     []byte        // the one read buffer of the copy path
	plain       []byte        // what crypto/tls decrypts into (tls.go)
	tlsOut      []byte        // what crypto/tls writes, for the session being served (tlsIO)
	speaksTLS   bool          // a listener terminates TLS or a server takes it (gcPercent)
	// tcpSeen is what addTCPInfo last added per long session (outlier.go);
	// tcpInfoAt is when sweepTCPInfo looks next.
	tcpSeen    map[*session][2]uint32
	tcpInfoAt  int64
	tlsConfigs []*tls.Config // every TLS listener's: a ticket key rotation sets them

	// Scratch space for accept and the PROXY header, so no event allocates.
	rsa      unix.RawSockaddrAny
	hdr      [proxyHeaderMax]byte // PROXY protocol header
	ipText   [64]byte
	portText [8]byte
	src      source // a transparent session's source, built per connect

	draining   bool  // no more accepts; exit when the last session ends or at drainUntil
	drainUntil int64 // when a drain gives up on the sessions left
	stopping   bool  // leave the loop now and close every session

	sweepAt      int64 // next look for drains past their deadline
	acceptResume int64 // when paused listeners return to the epoll set; 0 = not paused
	acceptFailed limitedLog
	inspectFull  limitedLog
	socketFailed limitedLog
	localFailed  limitedLog
	pairFailed   limitedLog
	debugGC      bool // G6_DEBUG_GC: a collection after every loop turn (tests)
	// dieOnAdopt (G6_TEST_DIE_ON_ADOPT, tests): exit when a handoff batch
	// arrives, before answering it, as a new worker that crashes would.
	dieOnAdopt bool
}

// Main is `g6 worker`: it runs until told to stop, then returns the exit code.
func Main() int {
	// Workers take orders from the master only (ipc). A signal sent to the
	// whole process group or cgroup (Ctrl-C, systemd's KillMode=control-group)
	// must not kill them before the master has them drain.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	runtime.GOMAXPROCS(1)
	runtime.LockOSThread()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("worker", os.Getpid())
	// For tests: a worker started while this file exists fails to start,
	// as one of a broken new binary would.
	if p := os.Getenv("G6_TEST_WORKER_FAIL_FILE"); p != "" {
		if _, err := os.Stat(p); err == nil {
			log.Error("G6_TEST_WORKER_FAIL_FILE exists: exiting before setup")
			return 3
		}
	}
	setup, err := readSetup(ipc.FdControl)
	if err != nil {
		log.Error("worker setup", "err", err)
		return 1
	}
	w, err := New(setup, ipc.FdControl, ipc.FdShared, ipc.FdListeners)
	if err != nil {
		log.Error("worker start", "err", err)
		return 1
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(w.gcPercent())
	}
	// For tests: collect (and run finalizers) after every loop turn, so
	// anything that lets the GC close a descriptor the loop still uses
	// shows at once.
	w.debugGC = os.Getenv("G6_DEBUG_GC") != ""
	w.dieOnAdopt = os.Getenv("G6_TEST_DIE_ON_ADOPT") != ""
	if path := os.Getenv("G6_CPUPROFILE"); path != "" {
		// For profiling the data path: one profile per worker process.
		if f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid())); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if err := w.Run(); err != nil {
		w.log.Error("worker loop", "err", err)
		return 1
	}
	return 0
}

// gcPercent is the worker's GOGC. Its heap is small and mostly sessions
// that make no garbage once established, so it trades memory for fewer
// collections (400) unless it speaks TLS: a handshake leaves ~40 KiB of
// garbage, and at 400 the heap would grow to five times what its idle TLS
// sessions hold (measured with make bench: 35 KiB of RSS per idle TLS
// session at 400, 18 KiB at 100, for ~8 KiB live). GOGC in the
// environment overrides both.
func (w *Worker) gcPercent() int {
	if w.speaksTLS {
		return 100
	}
	return 400
}

// readSetup reads the first message on the control fd, blocking (the fd is
// switched to non-blocking once the setup is read).
func readSetup(fd int) (*ipc.Setup, error) {
	m, err := ipc.Read(fdReader(fd))
	if err != nil {
		return nil, fmt.Errorf("worker: read setup: %w", err)
	}
	if m.Type != ipc.TypeConfig {
		return nil, fmt.Errorf("worker: first message is %q, want %q", m.Type, ipc.TypeConfig)
	}
	s, err := ipc.DecodeBody[ipc.Setup](m)
	if err != nil {
		return nil, fmt.Errorf("worker: setup: %w", err)
	}
	return &s, nil
}

// fdReader reads a raw fd. It is not an *os.File on purpose: a File owns its
// fd, and its finalizer would close the control socket at some later GC,
// after which the number is reused by an accepted client.
type fdReader int

func (r fdReader) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(int(r), b)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// New builds a worker on inherited fds: control, shared region, and the
// listening sockets from firstListener on, in setup.Listeners order.
func New(setup *ipc.Setup, ctrlFd, sharedFd, firstListener int) (*Worker, error) {
	w, err := newWorker(setup, ctrlFd)
	if err != nil {
		return nil, err
	}
	cfg := setup.Config
	if w.region, err = shared.Open(sharedFd); err != nil {
		return nil, err
	}
	onFail := func(err error) {
		w.log.Error("access log lines are being dropped; the master counts them", "file", cfg.Global.AccessLog, "err", err)
	}
	onOK := func() { w.log.Info("access log lines are written again", "file", cfg.Global.AccessLog) }
	if w.access, err = openAccessLog(cfg.Global.AccessLog, cfg.Global.AccessFormat, w.region.AccessLogDropped(), onFail, onOK); err != nil {
		return nil, err
	}
	if w.poll, err = newPoller(256); err != nil {
		return nil, err
	}
	byAddr, err := w.buildRules(setup)
	if err != nil {
		return nil, err
	}
	w.holdUDP(setup.HoldUDP)
	for i, addr := range setup.Listeners {
		if err := w.adoptListener(byAddr, addr, firstListener+i); err != nil {
			return nil, err
		}
	}
	w.newUDP(cfg.Global)
	w.udp.held = w.udp.held && len(w.udp.listeners) > 0
	if setup.Accel {
		if w.sockmap, err = accel.New(axCapacity); err != nil {
			w.log.Error("accel = sockmap: no sockmap in this worker; sessions are copied", "err", err)
		}
	}
	if setup.Steer > 0 {
		// The mapping outlives the fd, which the worker needs no more.
		w.steer, err = steer.Map(setup.Steer)
		sysClose(setup.Steer)
		if err != nil {
			return nil, err
		}
		w.steerN = -1
	}
	if err := unix.SetNonblock(ctrlFd, true); err != nil {
		return nil, fmt.Errorf("worker: control: %w", err)
	}
	if err := w.poll.add(ctrlFd, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLET); err != nil {
		return nil, fmt.Errorf("worker: epoll add control: %w", err)
	}
	return w, nil
}

// newWorker sets what the [global] table decides: logging, timeouts,
// splicing, CPU affinity.
func newWorker(setup *ipc.Setup, ctrlFd int) (*Worker, error) {
	g := setup.Config.Global
	lf, err := logging.Open(g.LogFile)
	if err != nil {
		return nil, err
	}
	level, _ := logging.Level(g.LogLevel)
	w := &Worker{
		slot:           setup.Slot,
		counter:        setup.Counter,
		logFile:        lf,
		log:            logging.New(lf, level).With("worker", setup.Slot, "pid", os.Getpid()),
		connectTimeout: int64(g.ConnectTimeout),
		moratorium:     int64(g.Moratorium),
		moratoriumText: g.Moratorium.String(),
		drainTimeout:   int64(g.DrainTimeout),
		spliceAfter:    spliceThreshold(g.Splice),
		maxInspecting:  int(g.MaxInspecting),
		scratch:        make([]byte, bufSize),
		plain:          make([]byte, bufSize),
		ctrl:           newStream(ctrlFd),
		now:            shared.Now(),
	}
	if g.CPUAffinity {
		if err := pinToSlot(setup.Slot); err != nil {
			w.log.Warn("cpu affinity not set", "err", err)
		}
	}
	return w, nil
}

// buildRules builds every rule on its shared slots and returns the listener
// template of each listen address, by conf.ListenKey: a *listener (TCP)
// or a *udpListener.
func (w *Worker) buildRules(setup *ipc.Setup) (map[string]polled, error) {
	cfg := setup.Config
	origin, err := originConfigs(cfg, setup.Files)
	if err != nil {
		return nil, err
	}
	w.speaksTLS = len(origin) > 0
	uses := map[string][]listenUse{}
	for i := range cfg.Rules {
		cr := &cfg.Rules[i]
		r, err := buildRule(cr, w.region, setup.RuleSlots[i], setup.Clients[i], origin)
		if err != nil {
			return nil, err
		}
		w.rules = append(w.rules, r)
		for _, l := range cr.Listen {
			k := conf.ListenKey(cr.Protocol, l.Address)
			uses[k] = append(uses[k], listenUse{rule: r, cr: cr, l: l})
		}
	}
	byAddr := map[string]polled{}
	for k, u := range uses {
		if u[0].cr.Protocol == conf.ProtocolUDP { // one rule per UDP address (conf)
			byAddr[k] = newUDPListener(u[0])
			continue
		}
		var tlsc *tls.Config
		if t := u[0].l.TLS; t != nil {
			var err error
			if tlsc, err = serverTLS(t, setup.Files, setup.TicketKeys); err != nil {
				return nil, fmt.Errorf("worker: listen %s: %w", u[0].l.Address, err)
			}
			w.tlsConfigs = append(w.tlsConfigs, tlsc)
			w.speaksTLS = true
		}
		ln, err := newListener(u, tlsc)
		if err != nil {
			return nil, err
		}
		byAddr[k] = &ln
	}
	return byAddr, nil
}

// adoptListener puts the inherited listening socket fd for addr in the epoll
// set, non-blocking.
func (w *Worker) adoptListener(byAddr map[string]polled, addr string, fd int) error {
	var ln *listener
	switch tmpl := byAddr[conf.AddrKey(addr)].(type) {
	case *udpListener:
		if err := w.adoptUDPListener(tmpl, fd); err != nil {
			return fmt.Errorf("worker: listener %s: %w", addr, err)
		}
		return nil
	case *listener:
		c := *tmpl
		ln = &c
	default:
		return fmt.Errorf("worker: inherited listener %s is in no rule", addr)
	}
	ln.fd = fd
	// Sockets from the master have TCP_NODELAY set (inherited by accepted
	// ones); sockets handed down by G6 may not.
	if v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY); err == nil && v != 0 {
		ln.nodelay = true
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return fmt.Errorf("worker: listener %s: %w", addr, err)
	}
	w.listeners = append(w.listeners, ln)
	if err := w.poll.add(fd, unix.EPOLLIN); err != nil {
		return fmt.Errorf("worker: epoll add listener %s: %w", addr, err)
	}
	w.bind(ln.fd, ln)
	return nil
}

// bind says what fd stands for (nil: nothing; its events are dropped).
func (w *Worker) bind(fd int, p polled) {
	for fd >= len(w.fds) {
		w.fds = append(w.fds, make([]polled, len(w.fds)+64)...)
	}
	w.fds[fd] = p
}

// deferClose closes fd after the current batch (see the package doc).
func (w *Worker) deferClose(fd int) {
	if fd < 0 {
		return
	}
	w.fds[fd] = nil
	w.closing = append(w.closing, fd)
}

// Run serves until the worker is stopped or has drained.
func (w *Worker) Run() error {
	w.sendControl(ipc.Message{V: ipc.ProtocolVersion, Type: ipc.TypeReady})
	w.log.Info("worker serving", "listeners", len(w.listeners), "udp_listeners", len(w.udp.listeners))
	for !w.stopping {
		// A batch in flight may hold no session (UDPDone alone): its
		// answer is still waited for, or the receiver's fails.
		idle := len(w.live) == 0 && len(w.udp.live) == 0 && !w.relaying() && !w.handing()
		if w.draining && (idle || w.now >= w.drainUntil && !w.handing()) {
			break
		}
		if err := w.step(w.waitTime()); err != nil {
			return err
		}
	}
	w.log.Info("worker exiting", "sessions", len(w.live))
	for len(w.live) > 0 {
		w.endWith(w.live[len(w.live)-1], endShutdown)
		w.reap()
	}
	for len(w.udp.live) > 0 {
		w.endUDP(w.udp.live[len(w.udp.live)-1], endShutdown)
		w.reap()
	}
	w.flushControl()
	return nil
}

// step waits once and handles the events and expired timers.
func (w *Worker) step(msec int) error {
	events, err := w.poll.wait(msec)
	if err != nil {
		return err
	}
	w.now = shared.Now()
	for i := range events {
		ev := &events[i]
		fd := int(ev.Fd)
		if fd == w.ctrl.fd {
			w.onControl(ev.Events)
			continue
		}
		if fd >= len(w.fds) {
			continue
		}
		if p := w.fds[fd]; p != nil {
			p.onEvent(w, ev.Events)
		}
	}
	w.expire()
	if w.udp.outN > 0 {
		w.flushUDP()
	}
	w.releaseUDP()
	w.sweepDrains()
	w.sweepTCPInfo()
	w.handOver()
	w.reap()
	w.resumeAccept()
	w.publishLoad()
	w.trimMemory()
	if w.debugGC {
		runtime.GC()
		runtime.Gosched() // the finalizer goroutine runs now, not at some later preemption
	}
	return nil
}

// waitTime is how long epoll may sleep: until the next timer, the end of
// an accept pause or (with sessions) the next drain sweep, at most 1 s.
func (w *Worker) waitTime() int {
	at, ok := w.timers.peek()
	if w.acceptResume != 0 && (!ok || w.acceptResume < at) {
		at, ok = w.acceptResume, true
	}
	if len(w.live)+len(w.udp.live) > 0 && (!ok || w.sweepAt < at) {
		at, ok = w.sweepAt, true
	}
	if w.udp.held && (!ok || w.udp.holdUntil < at) {
		at, ok = w.udp.holdUntil, true
	}
	if !ok {
		return 1000
	}
	ms := (at-shared.Now())/int64(time.Millisecond) + 1
	return int(min(max(ms, 0), 1000))
}

// expire fires due timers.
func (w *Worker) expire() {
	for {
		at, ok := w.timers.peek()
		if !ok || at > w.now {
			return
		}
		e := w.timers.pop()
		e.t.onTimer(w, e.gen)
	}
}

// trimEvery and trimPeak: every trimEvery a worker that has had trimPeak
// sessions or more at once and now has a quarter of its peak or fewer
// gives memory back (trimMemory).
const (
	trimEvery = int64(5 * time.Second)
	trimPeak  = 512
)

// trimMemory returns memory to the system after a burst. The Go runtime
// returns freed heap from a background goroutine, which a worker blocked
// in epoll_pwait without releasing its only P never lets run: after 16,000
// connections had come and gone a worker kept 339 MB. It keeps at most
// trimPeak of the sessions it recycles.
func (w *Worker) trimMemory() {
	w.peak = max(w.peak, len(w.live))
	if w.now < w.trimAt {
		return
	}
	w.trimAt = w.now + trimEvery
	if w.peak < trimPeak || len(w.live) > w.peak/4 {
		return
	}
	if len(w.free) > trimPeak {
		clear(w.free[trimPeak:])
		w.free = w.free[:trimPeak]
	}
	debug.FreeOSMemory()
	w.log.Debug("memory given back after a burst", "peak_sessions", w.peak, "sessions", len(w.live))
	w.peak = len(w.live)
}

// publishLoad tells the steering program how many sessions this worker
// has, when that changed: one store, no syscall. A draining worker's slot
// belongs to its successor, so it publishes nothing.
func (w *Worker) publishLoad() {
	if w.steer != nil && !w.draining && len(w.live) != w.steerN {
		w.steerN = len(w.live)
		w.steer.SetSessions(w.slot, w.steerN)
	}
}

// reap closes the fds and recycles the sessions that ended in this batch.
func (w *Worker) reap() {
	for _, fd := range w.closing {
		sysClose(fd) // closing removes it from the epoll set
	}
	w.closing = w.closing[:0]
	w.releasePairs()
	for _, s := range w.ended {
		w.recycle(s)
	}
	clear(w.ended)
	w.ended = w.ended[:0]
	w.reapUDP()
}

// startDrain stops accepting; live sessions get until timeout (ns) to end.
func (w *Worker) startDrain(timeout int64) {
	if w.draining {
		return
	}
	w.draining = true
	w.drainUntil = w.now + timeout
	for _, ln := range w.listeners {
		w.fds[ln.fd] = nil
		sysClose(ln.fd)
	}
	w.listeners = nil
	w.stopUDPListeners()
	w.log.Info("draining", "sessions", len(w.live), "udp_sessions", len(w.udp.live), "deadline", time.Duration(timeout))
}

func (w *Worker) reopenLog() {
	if err := w.logFile.Reopen(); err != nil {
		w.log.Error("reopen log", "err", err)
	}
	if w.access != nil {
		if err := w.access.file.Reopen(); err != nil {
			w.log.Error("reopen access log", "err", err)
		}
	}
}
