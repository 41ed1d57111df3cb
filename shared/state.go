package shared

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
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

// Usable reports whether a server may take a new connection at time now:
// a member of a rule, weight above 0, not under moratorium, not disabled or
// draining, not held down by its health check, and reported recently if it
// has a heartbeat period.
func (s *ServerSlot) Usable(now int64) bool {
	return s.MoratoriumUntil.Load() <= now && s.Eligible(now)
}

// Isolated reports whether the moratorium alone keeps the server out at
// time now: the servers a rule in panic tries anyway.
func (s *ServerSlot) Isolated(now int64) bool {
	return s.MoratoriumUntil.Load() > now && s.Eligible(now)
}

// Eligible is Usable without the moratorium: a member with weight, not
// disabled, draining, held down by its check or its agent, ejected as an
// outlier, or waiting for a heartbeat.
func (s *ServerSlot) Eligible(now int64) bool {
	if s.Member.Load() == 0 || s.Weight.Load() == 0 {
		return false
	}
	f := s.Flags.Load()
	if f&(FlagCheckDown|FlagDraining|FlagAgentDown) != 0 {
		return false
	}
	if f&FlagDisabled != 0 && s.DisabledUntil.Load() > now {
		return false
	}
	if f&FlagEjected != 0 && s.EjectedUntil.Load() > now {
		return false
	}
	if s.Period.Load() > 0 && s.HeartbeatUntil.Load() <= now {
		return false
	}
	return true
}

// FullShare is Share's value for a server not ramping up.
const FullShare = 1000

// Share is the part of its weight, in thousandths, a server gets at time
// now: FullShare, or while it is within SlowStart of coming back (an
// admin or a check brought it back, its moratorium or timed disable
// ended) a share growing from 5% to full.
func (s *ServerSlot) Share(now int64) int64 {
	ramp := s.SlowStart.Load()
	if ramp == 0 {
		return FullShare
	}
	since := max(s.UpSince.Load(), s.MoratoriumUntil.Load())
	if s.Flags.Load()&FlagDisabled != 0 {
		if u := s.DisabledUntil.Load(); u != Forever {
			since = max(since, u)
		}
	}
	el := now - since
	if el >= ramp {
		return FullShare
	}
	return max(FullShare/20, max(el, 0)*FullShare/ramp)
}

// SetAddr writes the server's address (before the slot is published).
func (s *ServerSlot) SetAddr(ap netip.AddrPort) {
	a := ap.Addr().As16()
	copy(s.Addr[:16], a[:])
	binary.BigEndian.PutUint16(s.Addr[16:], ap.Port())
}

// SetSources writes the server's source addresses (at most MaxSources;
// conf checks the bound).
func (s *ServerSlot) SetSources(ips []netip.Addr) {
	n := min(len(ips), MaxSources)
	for i := range n {
		s.Sources[i] = ips[i].As16()
	}
	s.NSources.Store(int64(n))
}

// Source reads source address i of NSources; IPv4 comes back unmapped.
func (s *ServerSlot) Source(i int) netip.Addr {
	return netip.AddrFrom16(s.Sources[i]).Unmap()
}

// AddrPort reads the server's address; IPv4 comes back unmapped.
func (s *ServerSlot) AddrPort() netip.AddrPort {
	ip := netip.AddrFrom16([16]byte(s.Addr[:16])).Unmap()
	return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(s.Addr[16:]))
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

// Fail records a failed connect; the IsolateAfter-th in a row (and every
// one after it) isolates the server until now+moratorium. It reports
// whether it did.
func (s *ServerSlot) Fail(now, moratorium int64) bool {
	s.Failures.Add(1)
	if s.FailStreak.Add(1) < s.IsolateAfter.Load() {
		return false
	}
	s.IsolatedAt.Store(now)
	s.MoratoriumUntil.Store(now + moratorium)
	return true
}

// Connected records an established connect: the failure streak ends.
func (s *ServerSlot) Connected() {
	if s.FailStreak.Load() != 0 {
		s.FailStreak.Store(0)
	}
}

// Readmit ends the moratorium of a server that took a connection while
// its rule was in panic: it answered, so it is back (slow start counts
// from now).
func (s *ServerSlot) Readmit(now int64) {
	if s.MoratoriumUntil.Load() > now {
		s.MoratoriumUntil.Store(now)
	}
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

// Enable ends an admin disable, a drain and any moratorium; slow start
// counts from now.
func (s *ServerSlot) Enable(now int64) {
	s.UpSince.Store(now)
	s.Flags.And(^int64(FlagDisabled | FlagDraining))
	s.DisabledUntil.Store(0)
	s.DrainUntil.Store(0)
	s.MoratoriumUntil.Store(0)
}

// EndDisable and EndDrain end a disable or a drain if there is one (slow
// start counts from now); a moratorium stays.
func (s *ServerSlot) EndDisable(now int64) { s.endFlag(FlagDisabled, &s.DisabledUntil, now) }
func (s *ServerSlot) EndDrain(now int64)   { s.endFlag(FlagDraining, &s.DrainUntil, now) }

func (s *ServerSlot) endFlag(flag int64, until *atomic.Int64, now int64) {
	if s.Flags.Load()&flag == 0 {
		return
	}
	s.UpSince.Store(now)
	s.Flags.And(^flag)
	until.Store(0)
}

// Drain stops new connections; sessions still open at until are closed by
// their workers (Forever: never).
func (s *ServerSlot) Drain(until int64) {
	s.DrainUntil.Store(until)
	s.Flags.Or(FlagDraining)
}

// DrainOver reports whether the server is draining and its deadline passed.
func (s *ServerSlot) DrainOver(now int64) bool {
	return s.Flags.Load()&FlagDraining != 0 && s.DrainUntil.Load() <= now
}

// Heartbeat records a report: the server is up until now+period. A report
// after a missed period brings the server back (slow start from now).
func (s *ServerSlot) Heartbeat(now, period int64) {
	if s.HeartbeatUntil.Load() <= now {
		s.UpSince.Store(now)
	}
	s.HeartbeatUntil.Store(now + period)
}

// ClaimWorker takes a free per-worker counter slot for a worker of the
// master owner (a pid), or reports that all MaxWorkers are taken.
func (r *Region) ClaimWorker(owner int) (int, bool) {
	for i := range r.hdr.Owners {
		if r.hdr.Owners[i].CompareAndSwap(0, int64(owner)) {
			return i, true
		}
	}
	return -1, false
}

// FreeWorker releases what counter slot w's dead worker still counted and
// gives the slot back.
func (r *Region) FreeWorker(w int) {
	r.ReleaseWorker(w)
	r.hdr.Owners[w].Store(0)
}

// FreeOwner frees every counter slot the master owner still holds: it
// has exited (cleanly, it freed them itself as its workers exited).
func (r *Region) FreeOwner(owner int) int {
	n := 0
	for i := range r.hdr.Owners {
		if r.hdr.Owners[i].Load() == int64(owner) {
			r.FreeWorker(i)
			n++
		}
	}
	return n
}

// AccessLogDropped is the counter of access-log lines not written.
func (r *Region) AccessLogDropped() *atomic.Int64 { return &r.hdr.AccessLogDropped }

// WorkersClaimed is how many counter slots are taken.
func (r *Region) WorkersClaimed() int {
	n := 0
	for i := range r.hdr.Owners {
		if r.hdr.Owners[i].Load() != 0 {
			n++
		}
	}
	return n
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
