package shared

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The client table lock is a spinlock in the header holding the owner's
// pid. It is held only for a few hundred instructions with no syscall, so
// contention is short; if the owner dies while holding it (its pid no longer
// exists), a waiter takes it over after a while instead of waiting forever.

var pid = int64(os.Getpid())

const stealAfter = 50 * time.Millisecond

func (r *Region) lock() {
	l := &r.hdr.Lock
	if l.CompareAndSwap(0, pid) {
		return
	}
	start := time.Now()
	for spins := 0; ; spins++ {
		owner := l.Load()
		if owner == 0 && l.CompareAndSwap(0, pid) {
			return
		}
		if spins%64 == 63 {
			_ = unix.Nanosleep(&unix.Timespec{Nsec: 20000}, nil)
			if time.Since(start) > stealAfter && owner != 0 && unix.Kill(int(owner), 0) == unix.ESRCH {
				if l.CompareAndSwap(owner, pid) {
					return
				}
			}
		}
	}
}

func (r *Region) unlock() { r.hdr.Lock.Store(0) }
