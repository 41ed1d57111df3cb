package shared

import "fmt"

// CheckCounts verifies the connection counts: for every server and client
// slot, Active is not negative and equals the sum of its per-worker counts,
// and every per-IP entry's total equals the sum of its per-worker counts.
// It returns one line per violation. The server counts are two atomics, so
// the check is exact only while no connection is being opened or closed
// (tests call it once traffic has stopped).
func (r *Region) CheckCounts() []string {
	var bad []string
	for i := 0; i < r.NumServers(); i++ {
		s := r.Server(i)
		var sum int64
		for w := range s.PerWorker {
			n := int64(s.PerWorker[w].Load())
			if n < 0 {
				bad = append(bad, fmt.Sprintf("server %q: worker %d count %d", s.KeyString(), w, n))
			}
			sum += n
		}
		if a := s.Active.Load(); a < 0 || a != sum {
			bad = append(bad, fmt.Sprintf("server %q: active %d, workers' counts add up to %d", s.KeyString(), a, sum))
		}
	}
	r.lock()
	defer r.unlock()
	for c := 0; c < r.NumClients(); c++ {
		cs := r.Client(c)
		var sum int32
		for _, n := range cs.PerWorker {
			sum += n
		}
		if cs.Active < 0 || cs.Active != sum || cs.IPs < 0 {
			bad = append(bad, fmt.Sprintf("client %q: active %d, workers' counts add up to %d, %d IPs",
				keyString(&cs.Key), cs.Active, sum, cs.IPs))
		}
	}
	for i := 0; i < int(r.hdr.NIPs); i++ {
		e := r.ip(i)
		if e.Client == 0 {
			continue
		}
		var sum int32
		for _, n := range e.PerWorker {
			sum += int32(n)
		}
		if e.Total <= 0 || e.Total != sum {
			bad = append(bad, fmt.Sprintf("client slot %d, IP entry %d: total %d, workers' counts add up to %d",
				e.Client-1, i, e.Total, sum))
		}
	}
	return bad
}
