package resolve

import (
	"net/netip"
	"slices"

	"g6/conf"
)

// Server is one server an answer yields, as the pool takes it.
type Server struct {
	Addr netip.AddrPort `json:"address"`
	// Weight is an SRV record's, scaled into g6's 1-256; 0 for A/AAAA
	// (the entry's weight applies).
	Weight int  `json:"weight,omitempty"`
	Backup bool `json:"backup,omitempty"` // SRV: a priority above the lowest
}

// Servers maps an answer to servers: one per address (the first record
// of an address wins). For SRV, the records of the lowest priority are
// the primaries and every other one a backup; weights keep their
// proportions, scaled down when the largest is over 256, and weight 0
// (RFC 2782: "very small chance") becomes 1.
func Servers(addrs []Address, srv bool) []Server {
	sorted := slices.Clone(addrs)
	slices.SortStableFunc(sorted, func(a, b Address) int { return int(a.Priority) - int(b.Priority) })
	top := 0
	for _, a := range sorted {
		top = max(top, int(a.Weight))
	}
	var out []Server
	seen := map[netip.AddrPort]bool{}
	for _, a := range sorted {
		if seen[a.Addr] {
			continue
		}
		seen[a.Addr] = true
		s := Server{Addr: a.Addr}
		if srv {
			s.Weight = int(a.Weight)
			if top > conf.MaxWeight {
				s.Weight = int(a.Weight) * conf.MaxWeight / top
			}
			s.Weight = max(s.Weight, 1)
			s.Backup = a.Priority != sorted[0].Priority
		}
		out = append(out, s)
	}
	return out
}
