package shared

import (
	_ "unsafe" // for go:linkname
)

// Now is CLOCK_MONOTONIC in nanoseconds, the clock of every deadline in the
// region (the same in every process on the host). It is the runtime's
// nanotime, read through the vDSO: x/sys/unix.ClockGettime is a real system
// call, and the loop reads the clock after every epoll_wait.
func Now() int64 { return nanotime() }

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// setKey writes a slot key, truncated to the key size.
func setKey(dst *[keySize]byte, key string) {
	*dst = [keySize]byte{}
	copy(dst[:], key)
}

func keyString(k *[keySize]byte) string {
	n := 0
	for n < len(k) && k[n] != 0 {
		n++
	}
	return string(k[:n])
}

// KeyString returns the slot's key.
func (s *ServerSlot) KeyString() string { return keyString(&s.Key) }

// KeyString returns the slot's key.
func (s *RuleSlot) KeyString() string { return keyString(&s.Key) }

// Usable reports whether a server may be chosen at time now: not under
// moratorium, not disabled, and (if heartbeat is true) reported recently.
func (s *ServerSlot) Usable(now int64, heartbeat bool) bool {
	if s.MoratoriumUntil.Load() > now {
		return false
	}
	f := s.Flags.Load()
	if f&FlagCheckDown != 0 {
		return false
	}
	if f&FlagDisabled != 0 && s.DisabledUntil.Load() > now {
		return false
	}
	if heartbeat && s.HeartbeatUntil.Load() <= now {
		return false
	}
	return true
}

// TryAcquire counts one more active connection owned by worker slot w,
// unless the server already has max (0 = no limit). The compare-and-swap
// makes the limit exact across workers.
func (s *ServerSlot) TryAcquire(w int, max int64) bool {
	for {
		a := s.Active.Load()
		if max > 0 && a >= max {
			return false
		}
		if s.Active.CompareAndSwap(a, a+1) {
			break
		}
	}
	s.PerWorker[w].Add(1)
	return true
}

// Release undoes Acquire.
func (s *ServerSlot) Release(w int) {
	s.Active.Add(-1)
	s.PerWorker[w].Add(-1)
}

// Fail records a failed connect and isolates the server until now+moratorium.
func (s *ServerSlot) Fail(now, moratorium int64) {
	s.Failures.Add(1)
	s.MoratoriumUntil.Store(now + moratorium)
}

// ObserveRT folds one response-time sample into the moving average (1/8 weight).
func (s *ServerSlot) ObserveRT(ns int64) {
	for {
		old := s.RTAvg.Load()
		next := ns
		if old != 0 {
			next = old + (ns-old)/8
		}
		if s.RTAvg.CompareAndSwap(old, next) {
			return
		}
	}
}

// Disable takes the server out until `until` (Forever for no end).
func (s *ServerSlot) Disable(until int64) {
	s.DisabledUntil.Store(until)
	s.Flags.Or(FlagDisabled)
}

// Enable ends an admin disable and any moratorium.
func (s *ServerSlot) Enable() {
	s.Flags.And(^int64(FlagDisabled))
	s.DisabledUntil.Store(0)
	s.MoratoriumUntil.Store(0)
}

// Heartbeat records a report: the server is up until now+period.
func (s *ServerSlot) Heartbeat(now, period int64) {
	s.HeartbeatUntil.Store(now + period)
}

// ReleaseWorker forgets every connection counted for worker slot w (which
// must be dead): the master calls it before respawning the slot.
func (r *Region) ReleaseWorker(w int) {
	r.releaseWorkerClients(w)
	for i := 0; i < r.NumServers(); i++ {
		s := r.Server(i)
		if n := s.PerWorker[w].Swap(0); n != 0 {
			s.Active.Add(-int64(n))
		}
	}
}
