package shared

import "fmt"

// Assign claims slots for the given rule and server keys, reusing the slot of
// a key that already exists (so state survives a reload) and resetting slots
// whose key is gone. It returns the slot index of each key, in order.
func (r *Region) Assign(rules, servers []string) (ruleIdx, serverIdx []int, err error) {
	if len(rules) > r.NumRules() || len(servers) > r.NumServers() {
		return nil, nil, fmt.Errorf("shared: %d rules, %d servers do not fit %d/%d slots",
			len(rules), len(servers), r.NumRules(), r.NumServers())
	}
	ruleIdx = assign(r.NumRules(), func(i int) *[keySize]byte { return &r.Rule(i).Key }, rules, r.resetRule)
	serverIdx = assign(r.NumServers(), func(i int) *[keySize]byte { return &r.Server(i).Key }, servers, r.resetServer)
	for _, i := range serverIdx {
		r.Server(i).Flags.Or(FlagUsed)
	}
	return ruleIdx, serverIdx, nil
}

func assign(capacity int, key func(int) *[keySize]byte, keys []string, reset func(int)) []int {
	have := map[string]int{}
	for i := 0; i < capacity; i++ {
		if k := keyString(key(i)); k != "" {
			have[k] = i
		}
	}
	out := make([]int, len(keys))
	taken := map[int]bool{}
	var fresh []int
	for j, k := range keys {
		if i, ok := have[k]; ok && !taken[i] {
			out[j] = i
			taken[i] = true
			continue
		}
		out[j] = -1
		fresh = append(fresh, j)
	}
	free := 0
	for _, j := range fresh {
		for taken[free] {
			free++
		}
		reset(free)
		setKey(key(free), keys[j])
		out[j] = free
		taken[free] = true
	}
	for i := 0; i < capacity; i++ {
		if !taken[i] && keyString(key(i)) != "" {
			reset(i)
		}
	}
	return out
}

func (r *Region) resetRule(i int) {
	r.Rule(i).Key = [keySize]byte{}
	r.Rule(i).Cursor.Store(0)
}

func (r *Region) resetServer(i int) {
	s := r.Server(i)
	s.Key = [keySize]byte{}
	s.Flags.Store(0)
	s.DisabledUntil.Store(0)
	s.HeartbeatUntil.Store(0)
	s.MoratoriumUntil.Store(0)
	s.Active.Store(0)
	s.Total.Store(0)
	s.Failures.Store(0)
	s.BytesIn.Store(0)
	s.BytesOut.Store(0)
	s.RTAvg.Store(0)
	for w := range s.PerWorker {
		s.PerWorker[w].Store(0)
	}
}
