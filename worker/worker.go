package worker

import (
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

	"g6/conf"
	"g6/ipc"
	"g6/logging"
	"g6/shared"

	"golang.org/x/sys/unix"
)

var errConnectTimeout = errors.New("connect timeout")

// fdEntry says what an fd in the epoll set is.
type fdEntry struct {
	ln *listener
	ep *endpoint
}

// Worker is one worker process's state; only its loop goroutine touches it.
type Worker struct {
	slot           int
	counter        int
	log            *slog.Logger
	logFile        *logging.File
	access         *accessLog
	poll           *poller
	region         *shared.Region
	rules          []*rule
	listeners      []*listener
	fds            []fdEntry
	ctrl           control
	now            int64
	connectTimeout int64
	moratorium     int64
	moratoriumText string
	drainTimeout   int64
	spliceAfter    int64 // bytes a direction carries before it splices

	live    []*session
	free    []*session
	ended   []*session
	closing []int
	timers  timerHeap
	bufs    [][]byte
	pipes   []*pipe
	scratch []byte

	rsa      unix.RawSockaddrAny
	hdr      [128]byte // PROXY protocol header
	ipText   [64]byte
	portText [8]byte

	draining   bool
	drainUntil int64
	stopping   bool

	acceptResume int64 // when paused listeners return to the epoll set; 0 = not paused
	acceptFailed limitedLog
	socketFailed limitedLog
	localFailed  limitedLog
	debugGC      bool // G6_DEBUG_GC: a collection after every loop turn (tests)
}

// Main is `g6 worker`: it runs until told to stop, then returns the exit code.
func Main() int {
	// Workers take orders from the master only (ipc). A signal sent to the
	// whole process group or cgroup (Ctrl-C, systemd's KillMode=control-group)
	// must not kill them before the master has them drain.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	runtime.GOMAXPROCS(1)
	runtime.LockOSThread()
	debug.SetGCPercent(400) // few, small heaps: trade memory for fewer GC cycles
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("worker", os.Getpid())
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
	// For tests: collect (and run finalizers) after every loop turn, so
	// anything that lets the GC close a descriptor the loop still uses
	// shows at once.
	w.debugGC = os.Getenv("G6_DEBUG_GC") != ""
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
	cfg := setup.Config
	lf, err := logging.Open(cfg.Global.LogFile)
	if err != nil {
		return nil, err
	}
	level, _ := logging.Level(cfg.Global.LogLevel)
	w := &Worker{
		slot:           setup.Slot,
		counter:        setup.Counter,
		logFile:        lf,
		log:            logging.New(lf, level).With("worker", setup.Slot, "pid", os.Getpid()),
		connectTimeout: int64(cfg.Global.ConnectTimeout),
		moratorium:     int64(cfg.Global.Moratorium),
		moratoriumText: cfg.Global.Moratorium.String(),
		drainTimeout:   int64(cfg.Global.DrainTimeout),
		spliceAfter:    spliceThreshold(cfg.Global.Splice),
		scratch:        make([]byte, bufSize),
		ctrl:           control{fd: ctrlFd, buf: make([]byte, 64<<10)},
	}
	w.now = shared.Now()
	if cfg.Global.CPUAffinity {
		if err := pinToSlot(setup.Slot); err != nil {
			w.log.Warn("cpu affinity not set", "err", err)
		}
	}
	if w.access, err = openAccessLog(cfg.Global.AccessLog, cfg.Global.AccessFormat); err != nil {
		return nil, err
	}
	if w.region, err = shared.Open(sharedFd); err != nil {
		return nil, err
	}
	if w.poll, err = newPoller(256); err != nil {
		return nil, err
	}
	byAddr := map[string]listener{}
	for i, cr := range cfg.Rules {
		r, err := buildRule(&cfg.Rules[i], w.region, setup.RuleSlots[i], setup.Servers[i], setup.Clients[i])
		if err != nil {
			return nil, err
		}
		w.rules = append(w.rules, r)
		for _, l := range cr.Listen {
			byAddr[conf.AddrKey(l.Address)] = listener{addr: l.Address, rule: r, timeout: int64(l.Timeout)}
		}
	}
	for i, addr := range setup.Listeners {
		tmpl, ok := byAddr[conf.AddrKey(addr)]
		if !ok {
			return nil, fmt.Errorf("worker: inherited listener %s is in no rule", addr)
		}
		ln := &tmpl
		ln.fd = firstListener + i
		// Sockets from the master have TCP_NODELAY set (inherited by accepted
		// ones); sockets handed down by G6 may not.
		if v, err := unix.GetsockoptInt(ln.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY); err == nil && v != 0 {
			ln.nodelay = true
		}
		if err := unix.SetNonblock(ln.fd, true); err != nil {
			return nil, fmt.Errorf("worker: listener %s: %w", addr, err)
		}
		w.listeners = append(w.listeners, ln)
		if err := w.poll.add(ln.fd, unix.EPOLLIN); err != nil {
			return nil, fmt.Errorf("worker: epoll add listener %s: %w", addr, err)
		}
		w.bindListener(ln)
	}
	if err := unix.SetNonblock(ctrlFd, true); err != nil {
		return nil, fmt.Errorf("worker: control: %w", err)
	}
	if err := w.poll.add(ctrlFd, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLET); err != nil {
		return nil, fmt.Errorf("worker: epoll add control: %w", err)
	}
	return w, nil
}

func (w *Worker) bind(fd int, ep *endpoint) {
	for fd >= len(w.fds) {
		w.fds = append(w.fds, make([]fdEntry, len(w.fds)+64)...)
	}
	w.fds[fd] = fdEntry{ep: ep}
}

func (w *Worker) bindListener(ln *listener) {
	w.bind(ln.fd, nil)
	w.fds[ln.fd] = fdEntry{ln: ln}
}

// deferClose closes fd after the current batch (see the package doc).
func (w *Worker) deferClose(fd int) {
	if fd < 0 {
		return
	}
	w.fds[fd] = fdEntry{}
	w.closing = append(w.closing, fd)
}

// Run serves until the worker is stopped or has drained.
func (w *Worker) Run() error {
	w.sendControl(ipc.Message{V: ipc.ProtocolVersion, Type: ipc.TypeReady})
	w.log.Info("worker serving", "listeners", len(w.listeners))
	for !w.stopping {
		if w.draining && (len(w.live) == 0 || w.now >= w.drainUntil) {
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
		switch e := w.fds[fd]; {
		case e.ln != nil:
			w.onAccept(e.ln)
		case e.ep != nil:
			w.onEndpointEvent(e.ep, ev.Events)
		}
	}
	w.expire()
	w.reap()
	w.resumeAccept()
	if w.debugGC {
		runtime.GC()
		runtime.Gosched() // the finalizer goroutine runs now, not at some later preemption
	}
	return nil
}

// waitTime is how long epoll may sleep: until the next timer or the end of
// an accept pause, at most 1 s.
func (w *Worker) waitTime() int {
	at, ok := w.timers.peek()
	if w.acceptResume != 0 && (!ok || w.acceptResume < at) {
		at, ok = w.acceptResume, true
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
		s := e.s
		if s.gen != e.gen || (s.state != stateConnecting && s.state != stateEstablished && s.state != stateFlushing) {
			continue
		}
		d := w.deadline(s)
		switch {
		case d == 0:
		case d > w.now:
			w.timers.push(timerEntry{at: d, s: s, gen: s.gen})
		case s.state == stateConnecting:
			w.onConnectTimeout(s)
		case s.state == stateFlushing:
			w.flushCheck(s)
		default:
			w.log.Debug("idle timeout", "rule", s.rule.id, "client", s.peer)
			w.endWith(s, endTimeout)
		}
	}
}

// reap closes the fds and recycles the sessions that ended in this batch.
func (w *Worker) reap() {
	for _, fd := range w.closing {
		sysClose(fd) // closing removes it from the epoll set
	}
	w.closing = w.closing[:0]
	for _, s := range w.ended {
		w.recycle(s)
	}
	clear(w.ended)
	w.ended = w.ended[:0]
}

// startDrain stops accepting; live sessions get until timeout (ns) to end.
func (w *Worker) startDrain(timeout int64) {
	if w.draining {
		return
	}
	w.draining = true
	w.drainUntil = w.now + timeout
	for _, ln := range w.listeners {
		w.fds[ln.fd] = fdEntry{}
		sysClose(ln.fd)
	}
	w.listeners = nil
	w.log.Info("draining", "sessions", len(w.live), "deadline", time.Duration(timeout))
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
