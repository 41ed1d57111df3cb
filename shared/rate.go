package shared

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Connection rate limits (max_rate per source IP, max_rate_total per
// client pattern) are GCRA token buckets: one int64, the time the next
// token is due (TAT), moved by compare-and-swap, so every worker shares
// each bucket without a lock. A connection is admitted when TAT is at most
// Tolerance ahead of now, and pushes TAT one Interval on; a refused one
// takes nothing.
//
// Per-IP buckets live in a table of NIPs entries keyed by a hash of the
// client slot and the IP. A key looks at rateWindow neighbouring entries:
// its own, else a free or expired one (TAT in the past is a full bucket,
// so dropping it loses nothing), else the one closest to expiry is taken
// over, which only happens with more limited IPs active than the table
// holds.

// Rate is a bucket's parameters, from conf.Rate: Interval ns per
// connection, Tolerance = (burst-1) × Interval. Interval 0 = no limit.
type Rate struct {
	Interval, Tolerance int64
}

// Refusal reasons of AdmitRate.
const (
	RefuseRate      = "max_rate"
	RefuseRateTotal = "max_rate_total"
)

const rateWindow = 16

// takeToken admits one connection against the bucket at tat, or not.
func takeToken(tat *atomic.Int64, now int64, r *Rate) bool {
	for {
		old := tat.Load()
		t := max(old, now)
		if t-now > r.Tolerance {
			return false
		}
		if tat.CompareAndSwap(old, t+r.Interval) {
			return true
		}
	}
}

// rateKeyOf is the table key of (client slot c, ip), never 0: FNV-1a,
// the same in every process of a region (maphash's seed is per process).
func rateKeyOf(c int, ip [16]byte) uint64 {
	var b [24]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(c))
	copy(b[8:], ip[:])
	h := uint64(14695981039346656037)
	for _, x := range b {
		h ^= uint64(x)
		h *= 1099511628211
	}
	if h == 0 {
		h = 1
	}
	return h
}

func (r *Region) rate(i int) *rateEntry {
	off := headerSize + int(r.hdr.NRules)*ruleSize + int(r.hdr.NServers)*serverSize +
		int(r.hdr.NClients)*clientSize + int(r.hdr.NIPs)*ipSize + i*rateSize
	return (*rateEntry)(unsafe.Pointer(&r.mem[off]))
}

// rateBucket finds or claims the bucket of key.
func (r *Region) rateBucket(key uint64, now int64) *atomic.Int64 {
	n := int(r.hdr.NIPs)
	for {
		h := int(key % uint64(n))
		var victim *rateEntry
		var victimKey uint64
		oldest := int64(1<<63 - 1)
		for i := 0; i < rateWindow; i++ {
			e := r.rate((h + i) % n)
			k := e.Key.Load()
			if k == key {
				return &e.TAT
			}
			if tat := e.TAT.Load(); k == 0 || tat < oldest {
				if k == 0 {
					tat = -1 << 63 // a free entry first
				}
				victim, victimKey, oldest = e, k, tat
			}
		}
		if victim.Key.CompareAndSwap(victimKey, key) {
			if oldest > now {
				// Taken over with tokens still owed: start it full.
				victim.TAT.Store(now)
			}
			return &victim.TAT
		}
		// Another worker claimed it meanwhile: look again.
	}
}

// AdmitRate takes a token from client slot c's per-IP bucket for ip
// (perIP) and from its pattern-wide bucket (total), or refuses with the
// limit that has none, counting it in RateLimited. A nil or zero Rate is
// no limit. GiveBack returns the tokens of a connection refused later.
func (r *Region) AdmitRate(c int, ip [16]byte, now int64, perIP, total *Rate) string {
	cs := r.Client(c)
	var ipTAT *atomic.Int64
	if perIP.Interval > 0 {
		ipTAT = r.rateBucket(rateKeyOf(c, ip), now)
		if !takeToken(ipTAT, now, perIP) {
			cs.RateLimited.Add(1)
			return RefuseRate
		}
	}
	if total.Interval > 0 && !takeToken(&cs.RateTAT, now, total) {
		if ipTAT != nil {
			ipTAT.Add(-perIP.Interval) // not admitted: its token back
		}
		cs.RateLimited.Add(1)
		return RefuseRateTotal
	}
	return RefuseNone
}

// GiveBack returns the tokens AdmitRate took for a connection that was
// refused afterwards (by a connection limit).
func (r *Region) GiveBack(c int, ip [16]byte, now int64, perIP, total *Rate) {
	if perIP.Interval > 0 {
		r.rateBucket(rateKeyOf(c, ip), now).Add(-perIP.Interval)
	}
	if total.Interval > 0 {
		r.Client(c).RateTAT.Add(-total.Interval)
	}
}
