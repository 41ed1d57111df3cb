package shared

import (
	"encoding/binary"
	"unsafe"
)

// Refusal reasons returned by Admit.
const (
	RefuseNone      = ""
	RefuseMaxConns  = "max_connections"
	RefuseMaxIP     = "max_ip"
	RefusePerIP     = "max_connections_per_ip"
	RefuseTableFull = "client table full"
)

// Limits are a client pattern's limits; 0 = unlimited.
type Limits struct {
	MaxConnections, MaxIP, MaxConnectionsPerIP int64
}

// needsIP reports whether per-IP accounting is needed.
func (l *Limits) needsIP() bool { return l.MaxIP > 0 || l.MaxConnectionsPerIP > 0 }

// Admit counts one connection from ip under client slot c for worker w, or
// refuses it with the limit it would break. Check and count happen under the
// lock, so two workers can never both take the last place.
func (r *Region) Admit(c int, ip [16]byte, w int, l *Limits) string {
	return r.admit(c, ip, w, l, true)
}

// Adopt counts a session handed over from another worker (ipc.HandoffBatch)
// without checking the limits: it was admitted once, and the sender gives
// its place back right after. A full per-IP table leaves it uncounted per
// IP (Release then finds nothing to give back).
func (r *Region) Adopt(c int, ip [16]byte, w int, l *Limits) {
	r.admit(c, ip, w, l, false)
}

func (r *Region) admit(c int, ip [16]byte, w int, l *Limits, check bool) string {
	r.lock()
	defer r.unlock()
	cs := r.Client(c)
	if check && l.MaxConnections > 0 && int64(cs.Active) >= l.MaxConnections {
		cs.Refused.Add(1)
		return RefuseMaxConns
	}
	if l.needsIP() {
		e, found := r.findIP(c, ip)
		switch {
		case e == nil && !check:
		case e == nil:
			cs.Refused.Add(1)
			return RefuseTableFull
		case check && found && l.MaxConnectionsPerIP > 0 && int64(e.Total) >= l.MaxConnectionsPerIP:
			cs.Refused.Add(1)
			return RefusePerIP
		case check && !found && l.MaxIP > 0 && int64(cs.IPs) >= l.MaxIP:
			cs.Refused.Add(1)
			return RefuseMaxIP
		}
		if e != nil {
			if !found {
				e.Client, e.IP = int32(c+1), ip
				cs.IPs++
			}
			e.Total++
			e.PerWorker[w]++
		}
	}
	cs.Active++
	cs.PerWorker[w]++
	return RefuseNone
}

// Release undoes Admit.
func (r *Region) Release(c int, ip [16]byte, w int, l *Limits) {
	r.lock()
	defer r.unlock()
	cs := r.Client(c)
	if cs.PerWorker[w] > 0 {
		cs.Active--
		cs.PerWorker[w]--
	}
	if !l.needsIP() {
		return
	}
	if e, found := r.findIP(c, ip); found && e.PerWorker[w] > 0 {
		e.PerWorker[w]--
		e.Total--
		if e.Total <= 0 {
			r.deleteIP(e)
			cs.IPs--
		}
	}
}

func (r *Region) ipHome(c int, ip [16]byte) int {
	var b [20]byte
	copy(b[:16], ip[:])
	binary.LittleEndian.PutUint32(b[16:], uint32(c))
	// FNV-1a: every process must find the same slot, so no per-process seed.
	h := uint64(14695981039346656037)
	for _, x := range b {
		h ^= uint64(x)
		h *= 1099511628211
	}
	return int(h % uint64(r.hdr.NIPs))
}

// findIP returns the entry of (c, ip) and true, or the empty entry where it
// would go and false, or nil when the table is full.
func (r *Region) findIP(c int, ip [16]byte) (*ipEntry, bool) {
	n := int(r.hdr.NIPs)
	if n == 0 {
		return nil, false
	}
	i := r.ipHome(c, ip)
	for probes := 0; probes < n; probes++ {
		e := r.ip(i)
		if e.Client == 0 {
			return e, false
		}
		if e.Client == int32(c+1) && e.IP == ip {
			return e, true
		}
		i = (i + 1) % n
	}
	return nil, false
}

// deleteIP empties e and shifts later entries of its probe run back, so
// lookups never stop early at a hole.
func (r *Region) deleteIP(e *ipEntry) {
	n := int(r.hdr.NIPs)
	i := r.indexOf(e)
	*e = ipEntry{}
	j := i
	for {
		j = (j + 1) % n
		ej := r.ip(j)
		if ej.Client == 0 {
			return
		}
		home := r.ipHome(int(ej.Client-1), ej.IP)
		// Move ej into the hole at i unless its home lies cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			*r.ip(i) = *ej
			*ej = ipEntry{}
			i = j
		}
	}
}

func (r *Region) indexOf(e *ipEntry) int {
	first := uintptr(unsafe.Pointer(r.ip(0)))
	return int((uintptr(unsafe.Pointer(e)) - first) / uintptr(ipSize))
}

// releaseWorkerClients forgets every client count of worker slot w.
func (r *Region) releaseWorkerClients(w int) {
	r.lock()
	defer r.unlock()
	for c := 0; c < r.NumClients(); c++ {
		cs := r.Client(c)
		cs.Active -= cs.PerWorker[w]
		cs.PerWorker[w] = 0
	}
	for i := 0; i < int(r.hdr.NIPs); {
		e := r.ip(i)
		if e.Client == 0 || e.PerWorker[w] == 0 {
			i++
			continue
		}
		e.Total -= int32(e.PerWorker[w])
		e.PerWorker[w] = 0
		if e.Total <= 0 {
			r.Client(int(e.Client-1)).IPs--
			r.deleteIP(e) // an entry shifted into i is examined next
			continue
		}
		i++
	}
}
