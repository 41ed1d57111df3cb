package master

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"syscall"
	"time"

	"g6/admin"
	"g6/conf"
	"g6/ipc"
	"g6/pool"

	"golang.org/x/sys/unix"
)

// startAdmin listens on the admin rule's addresses; the master serves them
// itself, from the shared region and the workers' answers. The raw socket
// of each address is kept (or was inherited) so an upgrade can hand it on.
func (m *Master) startAdmin(cfg *conf.Config) error {
	a := cfg.Admin
	if a == nil {
		return nil
	}
	srv := &admin.Server{Backend: m, Clients: a.Clients, Log: m.log.With("admin", a.ID)}
	for _, l := range a.Listen {
		key := conf.AddrKey(l.Address)
		fd, ok := m.adminFds[key]
		if !ok {
			fds, err := listenSockets(l.Address, 1, 128)
			if err != nil {
				return fmt.Errorf("master: admin: %w", err)
			}
			fd = fds[0]
			m.adminFds[key] = fd
		}
		ln, err := fileListener(fd, l.Address)
		if err != nil {
			return fmt.Errorf("master: admin %s: %w", l.Address, err)
		}
		m.adminLns = append(m.adminLns, ln)
		go srv.Serve(ln)
	}
	return nil
}

func (m *Master) closeAdmin() {
	for _, ln := range m.adminLns {
		ln.Close()
	}
	m.adminLns = nil
	for k, fd := range m.adminFds {
		unix.Close(fd)
		delete(m.adminFds, k)
	}
}

// Snapshot implements admin.Backend.
func (m *Master) Snapshot() admin.Snapshot {
	entries, gone := m.pool.Entries() // not under m.mu: the loop needs it to supervise
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.cur
	s := admin.Snapshot{Config: g.cfg, Region: m.region, Rules: g.setup.RuleSlots, Servers: byRule(g.cfg, entries), Gone: gone, CheckErrors: m.checkErrors(),
		Clients: g.setup.Clients, Started: m.started}
	s.Rate, s.RateKnown = m.rate.perSecond()
	s.Ejected, s.Ejections = m.ejectedView()
	for _, w := range g.workers {
		if w != nil && !w.exited {
			s.Workers = append(s.Workers, admin.Worker{Slot: w.slot, Counter: w.counter, Pid: w.pid, Started: w.started,
				Restarts: g.restarts[w.slot], Steering: m.steering(w)})
		}
	}
	return s
}

// byRule lines the pool's entries up with cfg's rules. They differ while a
// reload starts (the pool holds the new config's servers before its
// generation serves): a rule the pool does not have yet shows none.
func byRule(cfg *conf.Config, entries [][]pool.Entry) [][]pool.Entry {
	have := map[string][]pool.Entry{}
	for _, es := range entries {
		if len(es) > 0 {
			have[es[0].Rule] = es
		}
	}
	out := make([][]pool.Entry, len(cfg.Rules))
	for i, r := range cfg.Rules {
		out[i] = have[r.ID]
	}
	return out
}

// liveWorkers lists the workers that have not exited.
func (m *Master) liveWorkers() []*workerProc {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*workerProc
	for _, g := range m.generations() {
		for _, w := range g.workers {
			if w != nil && !w.exited {
				out = append(out, w)
			}
		}
	}
	return out
}

// Sessions implements admin.Backend: every worker is asked at once.
func (m *Master) Sessions(timeout time.Duration) ([]ipc.Session, []string) {
	lists, missing := askAll[ipc.Sessions](m, ipc.TypeSessions, nil, timeout)
	var all []ipc.Session
	for _, l := range lists {
		all = append(all, l...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Worker < all[j].Worker })
	return all, missing
}

// Reload implements admin.Backend: it is the same as HUP.
func (m *Master) Reload() error {
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		return errors.New("cannot signal the master")
	}
	return nil
}

// fileListener makes a net.Listener on a duplicate of fd, so fd stays the
// master's (for upgrades): an *os.File wrapping fd itself would own it, and
// its finalizer would close it at some later GC.
func fileListener(fd int, addr string) (net.Listener, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	// f owns dup only until FileListener has made its own duplicate;
	// closing it here (not at some GC) is on purpose.
	f := os.NewFile(uintptr(dup), "admin "+addr)
	defer f.Close()
	return net.FileListener(f)
}
