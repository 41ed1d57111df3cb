package master

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// Per-worker counter slots across upgrades. Each worker counts its
// connections in one of the region's shared.MaxWorkers counter slots; the
// region records which master claimed each (shared.Region.ClaimWorker),
// so the masters of every generation (an upgrading one, its successor, a
// reload or a respawn in either) take free ones only, and each frees its
// own as its workers exit. A master that dies leaves its slots claimed:
// its successor watches it, and every master it was still watching, by
// pidfd (a pid could be reused, a pidfd cannot) and frees what each left
// once it has exited.

// holder is an earlier master whose workers may still use counter slots.
type holder struct {
	pid   int
	pidfd int // -1: none could be opened; pid is polled instead
}

// passHolders adds this master and the holders it still watches to an
// upgrade's env and fds; the returned fds are this master's to close once
// the successor has started.
func (m *Master) passHolders(h *upgradeEnv, out *fdsOut) (opened []int) {
	self, err := unix.PidfdOpen(unix.Getpid(), 0)
	if err != nil {
		m.log.Warn("upgrade: no pidfd of this master; the successor polls its pid", "err", err)
		self = -1
	} else {
		opened = append(opened, self)
	}
	for _, hd := range append([]holder{{pid: unix.Getpid(), pidfd: self}}, m.holders...) {
		h.Holders = append(h.Holders, hd.pid)
		if hd.pidfd >= 0 {
			out.add(fdHolder, pidName(hd.pid), hd.pidfd)
		}
	}
	return opened
}

// inheritHolders watches the holders an upgrade passed down, by their
// pidfd if one came.
func (m *Master) inheritHolders(pids []int, fds *fdsIn) {
	for _, pid := range pids {
		hd := holder{pid: pid, pidfd: -1}
		if fd, ok := fds.take(fdHolder, pidName(pid)); ok {
			hd.pidfd = fd
		}
		m.holders = append(m.holders, hd)
		go watchHolder(hd, m.holderGone)
	}
}

// watchHolder reports on gone once the holder master has exited.
func watchHolder(h holder, gone chan<- int) {
	waitExit(h)
	gone <- h.pid
}

// sweepFailed frees the slots of a new master whose upgrade failed, once
// it has exited and grace has passed: a new master that gave up killed its
// workers itself (grace 0); one this master killed may have left workers
// draining (grace: their drain deadline).
func (m *Master) sweepFailed(h holder, grace time.Duration) {
	go sweepAfter(h, grace, m.holderGone)
}

func sweepAfter(h holder, grace time.Duration, gone chan<- int) {
	waitExit(h)
	if h.pidfd >= 0 {
		unix.Close(h.pidfd)
	}
	time.Sleep(grace)
	gone <- h.pid
}

// waitExit returns once the holder's process has exited.
func waitExit(h holder) {
	if h.pidfd >= 0 {
		fds := []unix.PollFd{{Fd: int32(h.pidfd), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
	} else {
		for unix.Kill(h.pid, 0) != unix.ESRCH {
			time.Sleep(time.Second)
		}
	}
}

// onHolderGone frees the counter slots an exited holder left claimed
// (none if it exited cleanly) and stops watching it.
func (m *Master) onHolderGone(pid int) {
	kept := m.holders[:0]
	for _, h := range m.holders {
		if h.pid != pid {
			kept = append(kept, h)
			continue
		}
		if h.pidfd >= 0 {
			unix.Close(h.pidfd)
		}
	}
	m.holders = kept
	if n := m.region.FreeOwner(pid); n > 0 {
		m.log.Warn("a master that has exited left counter slots claimed; freed", "pid", pid, "slots", n)
	}
}
