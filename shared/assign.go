package shared

import (
	"errors"
	"fmt"
)

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
	var s Slots
	var err error
	if s.Rules, err = assign(r.NumRules(), r.ruleKey, k.Rules, r.resetRule, nil); err != nil {
		return Slots{}, fmt.Errorf("shared: rules: %w", err)
	}
	if s.Servers, err = assign(r.NumServers(), r.serverKey, k.Servers, r.resetServer, r.serverBusy); err != nil {
		return Slots{}, fmt.Errorf("shared: servers: %w", err)
	}
	r.lock()
	s.Clients, err = assign(r.NumClients(), r.clientKey, k.Clients, r.resetClient, nil)
	r.unlock()
	if err != nil {
		return Slots{}, fmt.Errorf("shared: client patterns: %w", err)
	}
	return s, nil
}

// AssignServers returns a slot for each server key: the key's own if it
// has one, else a free one, reset and keyed. Other keys' slots are taken
// only when they are in no rule and carry no session.
func (r *Region) AssignServers(keys []string) ([]int, error) {
	slots, err := assign(r.NumServers(), r.serverKey, keys, r.resetServer, r.serverBusy)
	if err != nil {
		return nil, fmt.Errorf("shared: servers: %w", err)
	}
	return slots, nil
}

// ErrFull says a region has no free slot of a kind.
var ErrFull = errors.New("no free slot")

func (r *Region) ruleKey(i int) *[keySize]byte   { return &r.Rule(i).Key }
func (r *Region) serverKey(i int) *[keySize]byte { return &r.Server(i).Key }
func (r *Region) clientKey(i int) *[keySize]byte { return &r.Client(i).Key }

// serverBusy: a slot still in a rule, or with sessions open, is never
// given to another key.
func (r *Region) serverBusy(i int) bool {
	s := r.Server(i)
	return s.Member.Load() != 0 || s.Active.Load() != 0
}

func assign(capacity int, key func(int) *[keySize]byte, keys []string, reset func(int), busy func(int) bool) ([]int, error) {
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
	for i := 0; i < capacity && len(empty) < len(fresh); i++ {
		switch {
		case taken[i]:
		case keyString(key(i)) == "":
			empty = append(empty, i)
		case busy == nil || !busy(i):
			retired = append(retired, i)
		}
	}
	free := append(empty, retired...)
	if len(free) < len(fresh) {
		return nil, fmt.Errorf("%w: %d more needed, %d of %d in use", ErrFull, len(fresh)-len(free), capacity-len(free), capacity)
	}
	for n, j := range fresh {
		i := free[n]
		reset(i)
		setKey(key(i), keys[j])
		out[j] = i
	}
	return out, nil
}

// resetRule clears a rule slot for a new key; Members is left to keep
// moving, so no worker's cached value can ever match by chance.
func (r *Region) resetRule(i int) {
	rs := r.Rule(i)
	rs.Key = [keySize]byte{}
	rs.Cursor.Store(0)
	rs.LocalFailures.Store(0)
	rs.PanicSince.Store(0)
	rs.PanicConnections.Store(0)
	for _, r := range TLSResults() {
		r.Counter(rs).Store(0)
	}
	rs.TLSHandshake.Reset()
	rs.Connections.Store(0)
	rs.Failures.Store(0)
	rs.FromServer.Store(0)
	rs.FromClient.Store(0)
	for _, c := range rs.Refusals() {
		c.N.Store(0)
	}
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
	s.Member.Store(0)
	s.Order.Store(0)
	s.Weight.Store(0)
	s.MaxConns.Store(0)
	s.Period.Store(0)
	s.SlowStart.Store(0)
	s.UpSince.Store(0)
	s.DrainUntil.Store(0)
	s.Settings.Store(0)
	s.IsolateAfter.Store(0)
	s.FailStreak.Store(0)
	s.IsolatedAt.Store(0)
	s.Addr = [18]byte{}
	for w := range s.PerWorker {
		s.PerWorker[w].Store(0)
	}
}
