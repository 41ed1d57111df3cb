package shared

import "fmt"

// Keys names the slots a config needs: rules by id, servers and client
// patterns by "rule-id address" and "rule-id pattern".
type Keys struct {
	Rules, Servers, Clients []string
}

// Slots are the slot indexes assigned to Keys, in the same order.
type Slots struct {
	Rules, Servers, Clients []int
}

// Assign claims slots for keys, reusing the slot of a key that already
// exists, so state survives a reload or an upgrade.
func (r *Region) Assign(k Keys) (Slots, error) {
	if len(k.Rules) > r.NumRules() || len(k.Servers) > r.NumServers() || len(k.Clients) > r.NumClients() {
		return Slots{}, fmt.Errorf("shared: %d rules, %d servers, %d clients do not fit %d/%d/%d slots",
			len(k.Rules), len(k.Servers), len(k.Clients), r.NumRules(), r.NumServers(), r.NumClients())
	}
	var s Slots
	s.Rules = assign(r.NumRules(), func(i int) *[keySize]byte { return &r.Rule(i).Key }, k.Rules, r.resetRule)
	s.Servers = assign(r.NumServers(), func(i int) *[keySize]byte { return &r.Server(i).Key }, k.Servers, r.resetServer)
	r.lock()
	s.Clients = assign(r.NumClients(), func(i int) *[keySize]byte { return &r.Client(i).Key }, k.Clients, r.resetClient)
	r.unlock()
	return s, nil
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
		fresh = append(fresh, j)
	}
	// New keys take empty slots first. Slots of keys that are gone are left
	// alone as long as possible: workers of a draining generation may still
	// release counts on them, and a key that comes back finds its state.
	var empty, retired []int
	for i := 0; i < capacity; i++ {
		switch {
		case taken[i]:
		case keyString(key(i)) == "":
			empty = append(empty, i)
		default:
			retired = append(retired, i)
		}
	}
	free := append(empty, retired...)
	for n, j := range fresh {
		i := free[n]
		reset(i)
		setKey(key(i), keys[j])
		out[j] = i
	}
	return out
}

func (r *Region) resetRule(i int) {
	r.Rule(i).Key = [keySize]byte{}
	r.Rule(i).Cursor.Store(0)
	r.Rule(i).NoServer.Store(0)
	r.Rule(i).NoMatch.Store(0)
	r.Rule(i).LocalFailures.Store(0)
}

// resetClient must be called with the lock held; it drops the pattern's IPs.
func (r *Region) resetClient(i int) {
	*r.Client(i) = ClientSlot{}
	for j := 0; j < int(r.hdr.NIPs); {
		if e := r.ip(j); e.Client == int32(i+1) {
			r.deleteIP(e)
			continue
		}
		j++
	}
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
	s.FromServer.Store(0)
	s.FromClient.Store(0)
	s.RTAvg.Store(0)
	for w := range s.PerWorker {
		s.PerWorker[w].Store(0)
	}
}
