package master

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"g6/conf"
	"g6/ipc"
	"g6/pool"
	"g6/shared"

	"golang.org/x/sys/unix"
)

// Environment variables of a hand-over.
const (
	envUpgrade = "G6_UPGRADE"        // g6 → g6: JSON handoff
	envG6      = "G6_LISTEN_SOCKFDS" // G6 → g6: "N|fd|fd|...|", as G6 1.0.x sets it
)

// upgradeEnv is what a USR2 successor is told (G6_UPGRADE): its
// inherited descriptors by name (fds.go), and the rest of the hand-over.
type upgradeEnv struct {
	Fds    []namedFd `json:"fds"`
	Parent int       `json:"parent"`
	// Holders are the masters whose workers may still use counter slots
	// (holders.go), each with a pidfd in Fds when one could be opened.
	Holders []int `json:"holders"`
	// Handoff is the session format (ipc.HandoffVersion) the parent's
	// workers send, 0 = they hand nothing over; Workers how many they are.
	Handoff int `json:"handoff,omitempty"`
	Workers int `json:"workers,omitempty"`
	legacyEnv
}

// legacyEnv is how a g6 from before the named set described its fds: a
// new binary still takes over from one (fds).
type legacyEnv struct {
	Listeners   []inheritedFd `json:"listeners,omitempty"`
	Admin       []inheritedFd `json:"admin,omitempty"`
	Shared      int           `json:"shared,omitempty"`
	Ready       int           `json:"ready,omitempty"`
	State       int           `json:"state,omitempty"`
	Steer       int           `json:"steer,omitempty"`
	SteerArrays []inheritedFd `json:"steer_arrays,omitempty"`
}

type inheritedFd struct {
	Addr string `json:"addr"`
	Fd   int    `json:"fd"`
}

// fds is the env's named set, built from the legacy fields for an older
// parent.
func (h *upgradeEnv) fds() []namedFd {
	if len(h.Fds) > 0 {
		return h.Fds
	}
	l := h.legacyEnv
	var out []namedFd
	add := func(kind, name string, fd int) {
		if fd > 0 {
			out = append(out, namedFd{Kind: kind, Name: name, Fd: fd})
		}
	}
	add(fdReady, "", l.Ready)
	add(fdShared, "", l.Shared)
	add(fdState, "", l.State)
	add(fdSteer, "", l.Steer)
	for _, f := range l.Listeners {
		add(fdListen, f.Addr, f.Fd)
	}
	for _, f := range l.Admin {
		add(fdAdmin, f.Addr, f.Fd)
	}
	for _, f := range l.SteerArrays {
		add(fdSteerArray, f.Addr, f.Fd)
	}
	return out
}

// upgrade is a USR2 in flight.
type upgrade struct {
	pid    int
	pidfd  int        // of the new master, opened before it can be reaped; -1 if none
	result chan error // nil error = the new master is ready
	chans  []int      // handoff channels it sent with its ready, one per worker (set before the nil result)
}

func (m *Master) upgradeResult() <-chan error {
	if m.upgrade == nil {
		return nil
	}
	return m.upgrade.result
}

// startUpgrade re-executes the binary at the master's own path with every
// listening socket, the admin sockets and the shared region; the new master
// reports ready on a socket (with handoff channels, handoff.go), and only
// then does this one drain and exit.
func (m *Master) startUpgrade() {
	switch {
	case m.stopping:
		return
	case m.upgrade != nil:
		m.log.Warn("upgrade already in progress; USR2 ignored", "new_master", m.upgrade.pid)
		return
	}
	mine, theirs, err := ipc.Socketpair()
	if err != nil {
		m.log.Error("upgrade: ready channel", "err", err)
		return
	}
	out := newFdsOut()
	out.add(fdReady, "", theirs)
	out.add(fdShared, "", m.region.Fd())
	h := upgradeEnv{Parent: os.Getpid()}
	if m.cur.cfg.Global.Handoff {
		h.Handoff, h.Workers = offeredFormat(), m.cur.live()
	}
	for addr, fds := range m.sockets {
		for _, fd := range fds {
			out.add(fdListen, addr, fd)
		}
	}
	for addr, fd := range m.adminFds {
		out.add(fdAdmin, addr, fd)
	}
	pidfds := m.passHolders(&h, out)
	defer closeAll(pidfds)
	if m.steer != nil {
		state, arrays := m.steer.Export()
		out.add(fdSteer, "", state)
		for addr, fd := range arrays {
			out.add(fdSteerArray, addr, fd)
		}
	}
	if fd, err := m.stateFd(); err != nil {
		m.log.Error("upgrade: runtime server changes not handed over", "err", err)
	} else {
		defer unix.Close(fd)
		out.add(fdState, "", fd)
	}
	if fd, err := m.ticketsFd(); err != nil {
		m.log.Error("upgrade: tls session ticket keys not handed over; clients resume no session", "err", err)
	} else {
		defer unix.Close(fd)
		out.add(fdTickets, "", fd)
	}
	h.Fds = out.named
	desc, _ := json.Marshal(h)
	env := append(cleanEnv(), envUpgrade+"="+string(desc))
	pid, err := syscall.ForkExec(m.exe, append([]string{m.exe, "master"}, m.opts.Args...),
		&syscall.ProcAttr{Env: env, Files: out.files})
	unix.Close(theirs)
	if err != nil {
		unix.Close(mine)
		m.log.Error("upgrade: cannot start the new binary; still serving", "exe", m.exe, "err", err)
		return
	}
	m.upgrade = &upgrade{pid: pid, pidfd: -1, result: make(chan error, 3)}
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		m.upgrade.pidfd = fd // before waitUpgradeExit can reap it
	}
	m.log.Info("upgrade started", "exe", m.exe, "new_master", pid)
	go waitUpgradeReady(mine, m.upgrade)
	go waitUpgradeExit(pid, m.upgrade.result)
	time.AfterFunc(3*readyTimeout, upgradeTimer{ch: m.upgrade.result}.fire)
}

func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envUpgrade+"=") && !strings.HasPrefix(kv, envG6+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// offeredFormat is the session format this master's workers send:
// ipc.HandoffVersion, or for tests G6_TEST_HANDOFF_FORMAT (a format the
// next binary cannot read).
func offeredFormat() int {
	if v, err := strconv.Atoi(os.Getenv("G6_TEST_HANDOFF_FORMAT")); err == nil {
		return v
	}
	return ipc.HandoffVersion
}

// waitUpgradeReady reports ready when the new master writes it, with the
// handoff channels that came along.
func waitUpgradeReady(fd int, u *upgrade) {
	defer unix.Close(fd)
	var line []byte
	var chans []int
	buf, oob := make([]byte, 512), make([]byte, unix.CmsgSpace(4*shared.MaxWorkers))
	for len(line) < 4096 && !bytes.HasSuffix(line, []byte("\n")) {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			break
		}
		line = append(line, buf[:n]...)
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for i := range msgs {
				if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
					chans = append(chans, fds...)
				}
			}
		}
	}
	if s := string(line); s == "ready\n" || s == readyHandoff {
		u.chans = chans // read by the loop only after this nil
		u.result <- nil
		return
	}
	closeAll(chans)
	if why, ok := strings.CutPrefix(string(line), readyFailed); ok {
		u.result <- fmt.Errorf("%w: %s", errNewMasterFailed, strings.TrimSpace(why))
		return
	}
	u.result <- errors.New("master: upgrade: the new master closed its ready channel without reporting ready")
}

// readyFailed starts the line a new master writes on its ready socket
// when it cannot start, followed by why: the old master logs it, since
// the new one may have no log of its own yet.
const readyFailed = "error: "

// upgradeReadyFd is the ready socket of a master started by USR2, -1 for
// any other; read before start, which takes the environment apart.
func upgradeReadyFd() int {
	var h upgradeEnv
	if v := os.Getenv(envUpgrade); v == "" || json.Unmarshal([]byte(v), &h) != nil {
		return -1
	}
	for _, f := range h.fds() {
		if f.Kind == fdReady {
			return f.Fd
		}
	}
	return -1
}

// reportUpgradeFailure tells the master that started this one by USR2
// (ready fd, -1 for none) why this one could not start.
func reportUpgradeFailure(ready int, err error) {
	if ready >= 0 {
		unix.Write(ready, []byte(readyFailed+strings.ReplaceAll(err.Error(), "\n", "; ")+"\n"))
	}
}

// waitUpgradeExit reaps the new master if it dies.
func waitUpgradeExit(pid int, out chan<- error) {
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	out <- fmt.Errorf("%w (%s)", errNewMasterExited, describeExit(ws))
}

var (
	errNewMasterExited = errors.New("master: upgrade: the new master exited")
	errNewMasterFailed = errors.New("master: upgrade: the new master could not start")
)

type upgradeTimer struct{ ch chan<- error }

func (t upgradeTimer) fire() {
	select {
	case t.ch <- errors.New("master: upgrade: the new master did not report ready in time"):
	default:
	}
}

func (m *Master) onUpgradeResult(err error) {
	u := m.upgrade
	if m.stopping {
		// Stopped while the new master was starting: it was told to stop
		// too (stopUpgrade), and this master waits for its exit, so that no
		// master is left serving untracked.
		switch {
		case errors.Is(err, errNewMasterExited):
			m.upgrade = nil
			if u.pidfd >= 0 {
				unix.Close(u.pidfd)
			}
			m.log.Info("the new master of the cancelled upgrade has exited", "new_master", u.pid)
		case err != nil: // it did not get ready in time either
			killProcess(u.pid)
		}
		return
	}
	m.upgrade = nil
	if err == nil && u.pidfd >= 0 {
		unix.Close(u.pidfd) // it serves now; its slots are its own to free
	}
	deferred := m.reloadDeferred
	m.reloadDeferred = false
	if err != nil {
		killProcess(u.pid)
		m.log.Error("upgrade failed; this master keeps serving", "new_master", u.pid, "err", err)
		grace := time.Duration(0)
		if !errors.Is(err, errNewMasterExited) && !errors.Is(err, errNewMasterFailed) {
			grace = m.cur.cfg.Global.DrainTimeout.D() + 5*time.Second
		}
		m.sweepFailed(holder{pid: u.pid, pidfd: u.pidfd}, grace)
		if deferred {
			m.log.Info("running the reload deferred during the upgrade")
			m.reload()
		}
		return
	}
	if deferred {
		// It may have read the config before the file changed.
		m.log.Info("passing the reload deferred during the upgrade to the new master", "new_master", u.pid)
		syscall.Kill(u.pid, syscall.SIGHUP)
	}
	m.log.Info("upgrade complete; this generation drains and exits", "new_master", u.pid, "handoff_channels", len(u.chans))
	m.upgraded = true
	m.successorPid = u.pid
	// The steering maps are the new master's now: this one writes no live
	// flag again, and leaves them attached (its fds close at exit).
	m.steer = nil
	m.successorChannels = u.chans
	m.stop(true)
}

// stopUpgrade passes a stop signal on to a new master that has not
// reported ready yet: a TERM during an upgrade stops the whole service.
func (m *Master) stopUpgrade(sig syscall.Signal) {
	if m.upgrade == nil {
		return
	}
	m.log.Warn("stopped during an upgrade; stopping the new master too", "new_master", m.upgrade.pid, "sig", sig.String())
	syscall.Kill(m.upgrade.pid, sig)
}

// inheritance is what a master started by an upgrade must do once ready.
type inheritance struct {
	readyFd    int
	state      *pool.State // the previous master's runtime server changes
	handoff    int         // the session format the old workers send; 0 = none
	oldWorkers int
}

// ready tells the old master that this one serves and, if both sides hand
// sessions over in the same format, sends a handoff channel for each old
// worker with it (handoff.go).
func (in *inheritance) ready(m *Master) {
	if in == nil || in.readyFd < 0 {
		return
	}
	defer unix.Close(in.readyFd)
	var chans []int
	if ipc.HandoffReads(in.handoff) && m.cur.cfg.Global.Handoff {
		for k := range in.oldWorkers {
			fd, err := m.adoptChannel(m.cur, k)
			if err != nil {
				m.log.Error("handoff: no channel for an old worker; its sessions drain", "err", err)
				break
			}
			chans = append(chans, fd)
		}
	} else if in.handoff != 0 || in.oldWorkers > 0 {
		m.log.Warn("upgrade: the old workers' sessions drain there", "their_format", in.handoff,
			"this_format", ipc.HandoffVersion, "handoff", m.cur.cfg.Global.Handoff)
	}
	defer closeAll(chans)
	msg, oob := []byte("ready\n"), []byte(nil)
	if len(chans) > 0 {
		msg, oob = []byte(readyHandoff), unix.UnixRights(chans...)
	}
	if err := unix.Sendmsg(in.readyFd, msg, oob, nil, 0); err != nil {
		m.log.Error("upgrade: cannot report ready", "err", err)
	}
}

// inherit adopts the sockets and region handed down by an old g6 master
// (G6_UPGRADE) or by G6 itself (G6_LISTEN_SOCKFDS). Inherited sockets of
// addresses the config no longer has are closed.
func (m *Master) inherit(cfg *conf.Config) (*inheritance, error) {
	in := &inheritance{readyFd: -1}
	if v := os.Getenv(envUpgrade); v != "" {
		os.Unsetenv(envUpgrade)
		var h upgradeEnv
		if err := json.Unmarshal([]byte(v), &h); err != nil {
			return nil, fmt.Errorf("master: %s: %w", envUpgrade, err)
		}
		fds := newFdsIn(h.fds())
		defer fds.closeUntaken()
		in.handoff, in.oldWorkers = h.Handoff, h.Workers
		in.readyFd, _ = fds.take(fdReady, "")
		listen := fds.takeAll(fdListen)
		m.adoptAll(listen, m.sockets)
		admin := map[string][]int{}
		m.adoptAll(fds.takeAll(fdAdmin), admin)
		for addr, fds := range admin {
			m.adminFds[addr] = fds[0]
		}
		if fd, ok := fds.take(fdShared, ""); ok {
			region, err := shared.Open(fd)
			if err != nil {
				m.log.Warn("upgrade: inherited shared region unusable; starting with fresh state", "err", err)
				unix.Close(fd)
			}
			m.region = region
		}
		m.inheritHolders(h.Holders, fds)
		m.parent = h.Parent
		m.adoptSteering(fds)
		if fd, ok := fds.take(fdState, ""); ok {
			var err error
			if in.state, err = readStateFd(fd); err != nil {
				m.log.Error("upgrade: runtime server changes lost", "err", err)
			}
		}
		if fd, ok := fds.take(fdTickets, ""); ok {
			var err error
			if m.tickets, err = readTicketsFd(fd); err != nil {
				m.log.Error("upgrade: tls session ticket keys lost; clients resume no session", "err", err)
			}
		}
		m.log.Info("inherited from the previous master", "parent", h.Parent, "sockets", len(listen), "admin", len(admin))
	} else if v := os.Getenv(envG6); v != "" {
		os.Unsetenv(envG6)
		fds, err := parseG6Fds(v)
		if err != nil {
			return nil, err
		}
		var list []namedFd
		for _, fd := range fds {
			list = append(list, namedFd{Kind: fdListen, Fd: fd})
		}
		m.adoptAll(list, m.sockets)
		m.log.Info("inherited listening sockets from G6", "fds", fds)
	}
	m.dropUnconfigured(cfg)
	return in, nil
}

// adoptAll verifies each inherited socket's address and files it under it.
func (m *Master) adoptAll(list []namedFd, into map[string][]int) {
	for _, f := range list {
		addr, err := socketAddr(f.Fd)
		if err == nil {
			err = adopt(f.Fd)
		}
		if err != nil {
			m.log.Warn("inherited fd unusable; closed", "fd", f.Fd, "err", err)
			unix.Close(f.Fd)
			continue
		}
		into[addr] = append(into[addr], f.Fd)
	}
}

// dropUnconfigured closes inherited sockets the config does not listen on.
func (m *Master) dropUnconfigured(cfg *conf.Config) {
	want := map[string]bool{}
	for _, r := range cfg.Rules {
		for _, l := range r.Listen {
			want[conf.ListenKey(r.Protocol, l.Address)] = true
		}
	}
	for addr := range m.sockets {
		if !want[addr] {
			m.dropSockets([]string{addr})
		}
	}
	wantAdmin := map[string]bool{}
	if cfg.Admin != nil {
		for _, l := range cfg.Admin.Listen {
			wantAdmin[conf.AddrKey(l.Address)] = true
		}
	}
	for addr, fd := range m.adminFds {
		if !wantAdmin[addr] {
			unix.Close(fd)
			delete(m.adminFds, addr)
		}
	}
}

// parseG6Fds reads G6's "N|fd|fd|...|".
func parseG6Fds(v string) ([]int, error) {
	parts := strings.Split(strings.TrimSuffix(v, "|"), "|")
	n, err := strconv.Atoi(parts[0])
	if err != nil || n != len(parts)-1 {
		return nil, fmt.Errorf("master: %s=%q: want \"N|fd|...|\" with N fds", envG6, v)
	}
	var fds []int
	for _, p := range parts[1:] {
		fd, err := strconv.Atoi(p)
		if err != nil || fd < 3 {
			return nil, fmt.Errorf("master: %s=%q: bad fd %q", envG6, v, p)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}
