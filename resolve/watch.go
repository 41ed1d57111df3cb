package resolve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"g6/conf"

	"github.com/miekg/dns"
)

// Target takes what the watcher finds: SetAnswer makes servers what entry
// yields (nil: nothing) and says whether that changed anything; Answer is
// what entry yields now (a state restored at start counts).
type Target interface {
	SetAnswer(entry string, servers []Server) (bool, error)
	Answer(entry string) []Server
}

// Options are the config's [global] resolver keys.
type Options struct {
	Resolvers []string // IP:PORT; none: /etc/resolv.conf's
	Interval  time.Duration
	Hold      time.Duration
}

// Status is one name entry as show resolvers reports it.
type Status struct {
	Entry      string    `json:"entry"`
	Type       string    `json:"type"` // "A/AAAA" or "SRV"
	Rules      []string  `json:"rules"`
	Answer     []Record  `json:"answer"`               // what the target has now: the last answer, held, or none
	ResolvedAt time.Time `json:"resolved_at,omitzero"` // zero (left out): never, by this master
	Next       time.Time `json:"next_refresh,omitzero"`
	Error      string    `json:"last_error,omitempty"`
	// Partial: the last lookup's queries that failed while the others
	// answered (a server that refuses AAAA, say); the name resolved.
	Partial string `json:"failing_queries,omitempty"`
	// FailingSince is when the lookups started failing (zero, left out:
	// they succeed); HeldUntil when the last addresses are dropped if they
	// go on failing (zero, left out: nothing held).
	FailingSince time.Time `json:"failing_since,omitzero"`
	HeldUntil    time.Time `json:"held_until,omitzero"`
}

// Record is one address of an answer, as show resolvers reports it.
type Record struct {
	Address  string  `json:"address"`
	Priority uint16  `json:"priority,omitempty"` // SRV only
	Weight   uint16  `json:"weight,omitempty"`   // SRV only
	TTL      float64 `json:"ttl_seconds"`
}

func records(addrs []Address) []Record {
	out := make([]Record, len(addrs))
	for i, a := range addrs {
		out[i] = Record{Address: a.Addr.String(), Priority: a.Priority, Weight: a.Weight, TTL: a.TTL.Seconds()}
	}
	return out
}

// inherited shows the servers the target already has for an entry (from
// the previous master or the state file) until this watcher's first
// answer: no TTL is known (0), and ResolvedAt stays zero.
func inherited(servers []Server) []Record {
	out := make([]Record, len(servers))
	for i, s := range servers {
		out[i] = Record{Address: s.Addr.String(), Weight: uint16(s.Weight)}
	}
	return out
}

// Watcher keeps every name entry of the config resolved: one goroutine
// per entry, looking it up again at the shorter of the interval and the
// answer's smallest TTL (never below conf.MinResolveInterval).
type Watcher struct {
	target Target
	log    *slog.Logger

	// mu is held while an answer is handed to target, so once Sync or
	// Stop has cancelled a lookup, its answer can no longer arrive.
	mu    sync.Mutex
	opts  Options
	names map[string]*watched // by entry
}

type watched struct {
	name   conf.Name
	cancel context.CancelFunc

	mu     sync.Mutex // guards status
	status Status
}

// NewWatcher makes a watcher that hands its answers to target.
func NewWatcher(target Target, log *slog.Logger) *Watcher {
	return &Watcher{target: target, log: log, names: map[string]*watched{}}
}

// defaultResolvers are the nameservers of /etc/resolv.conf, as IP:PORT.
func defaultResolvers() ([]string, error) {
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("resolve: no resolvers configured and /etc/resolv.conf: %w", err)
	}
	var out []string
	for _, s := range cc.Servers {
		ap, err := conf.ParseResolver(s + ":" + cc.Port)
		if err != nil {
			continue
		}
		out = append(out, ap.String())
	}
	if len(out) == 0 {
		return nil, errors.New("resolve: no resolvers configured and none in /etc/resolv.conf")
	}
	return out, nil
}

// Resolver is a resolver over o's servers, or /etc/resolv.conf's when o
// names none.
func (o Options) Resolver() (*Resolver, error) {
	servers := o.Resolvers
	if len(servers) == 0 {
		var err error
		if servers, err = defaultResolvers(); err != nil {
			return nil, err
		}
	}
	return &Resolver{Servers: servers}, nil
}

// OptionsOf reads the resolver keys of cfg.
func OptionsOf(cfg *conf.Config) Options {
	var rs []string
	for _, r := range cfg.Global.Resolvers {
		if ap, err := conf.ParseResolver(r); err == nil {
			rs = append(rs, ap.String())
		}
	}
	return Options{Resolvers: rs, Interval: cfg.Global.ResolveInterval.D(), Hold: cfg.Global.ResolveHold.D()}
}

// Sync makes the watched entries those of cfg: new ones start (their
// first lookup at once), dropped ones stop. A change of the resolver keys
// restarts every entry.
func (w *Watcher) Sync(cfg *conf.Config) {
	opts := OptionsOf(cfg)
	rules := map[string][]string{}
	for _, r := range cfg.Rules {
		for _, n := range r.Names {
			rules[n.Entry] = append(rules[n.Entry], r.ID)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	restart := !slices.Equal(opts.Resolvers, w.opts.Resolvers) || opts.Interval != w.opts.Interval || opts.Hold != w.opts.Hold
	w.opts = opts
	want := map[string]conf.Name{}
	for _, n := range cfg.NameEntries() {
		want[n.Entry] = n
	}
	for e, x := range w.names {
		if n, ok := want[e]; !ok || restart || n.Host != x.name.Host || n.Port != x.name.Port || n.SRV != x.name.SRV {
			x.cancel()
			delete(w.names, e)
		}
	}
	for e, n := range want {
		if x := w.names[e]; x != nil {
			x.mu.Lock()
			x.status.Rules = rules[e]
			x.mu.Unlock()
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		x := &watched{name: n, cancel: cancel, status: Status{Entry: e, Type: entryType(n), Rules: rules[e], Answer: inherited(w.target.Answer(e))}}
		w.names[e] = x
		go watchName(ctx, w, x, opts)
	}
}

func entryType(n conf.Name) string {
	if n.SRV {
		return "SRV"
	}
	return "A/AAAA"
}

// Status reports every watched entry, in entry order.
func (w *Watcher) Status() []Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Status, 0, len(w.names))
	for _, x := range w.names {
		x.mu.Lock()
		s := x.status
		s.Answer, s.Rules = slices.Clone(s.Answer), slices.Clone(s.Rules)
		x.mu.Unlock()
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Status) int { return cmp.Compare(a.Entry, b.Entry) })
	return out
}

// Stop ends every lookup; no answer reaches the target after it returns.
// A query under way ends by its own timeout.
func (w *Watcher) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for e, x := range w.names {
		x.cancel()
		delete(w.names, e)
	}
}

// Lookup resolves n once.
func (r *Resolver) Lookup(ctx context.Context, n conf.Name) ([]Address, error) {
	if n.SRV {
		return r.Service(ctx, n.Host)
	}
	return r.Host(ctx, n.Host, n.Port)
}

// errEmpty is an answer with no address: like NXDOMAIN, it starts the hold.
var errEmpty = errors.New("no address in the answer")

// watchName looks one entry up until ctx ends.
func watchName(ctx context.Context, w *Watcher, x *watched, opts Options) {
	log := w.log.With("entry", x.name.Entry)
	r, rerr := opts.Resolver()
	var failingSince time.Time
	partialText := ""
	for {
		var addrs []Address
		err := rerr
		if err == nil {
			lctx, cancel := context.WithTimeout(ctx, opts.Interval)
			addrs, err = r.Lookup(lctx, x.name)
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		var pe *PartialError
		if errors.As(err, &pe) {
			err = nil // its addresses stand
		}
		if p := partialOf(pe); p != partialText {
			if p != "" {
				log.Warn("some of the name's queries fail; the others' addresses are used", "failing", p)
			} else {
				log.Info("all of the name's queries answer again")
			}
			partialText = p
		}
		if err == nil && len(addrs) == 0 {
			err = fmt.Errorf("resolve: %s: %w", x.name.Host, errEmpty)
		}
		now := time.Now()
		wait := opts.Interval
		var held time.Time
		if err != nil {
			first := failingSince.IsZero()
			if first {
				failingSince = now
			}
			if held = w.failed(ctx, log, x.name.Entry, err, first, failingSince, failingSince.Add(opts.Hold), now); !held.IsZero() {
				wait = min(wait, held.Sub(now))
			}
		} else {
			if !failingSince.IsZero() {
				log.Info("name resolves again", "failed_for", now.Sub(failingSince).Round(time.Millisecond))
			}
			failingSince = time.Time{}
			for _, a := range addrs {
				wait = min(wait, a.TTL)
			}
			w.set(ctx, log, x.name.Entry, Servers(addrs, x.name.SRV))
		}
		wait = max(wait, conf.MinResolveInterval.D())
		x.update(now, wait, err, addrs, failingSince, held, partialText)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// failed handles a failed lookup of entry: the addresses it still has stay
// until until, then are dropped. It returns until while they are held,
// zero when nothing is (dropped now, or none to hold).
func (w *Watcher) failed(ctx context.Context, log *slog.Logger, entry string, err error, first bool, since, until, now time.Time) time.Time {
	switch had := len(w.target.Answer(entry)) > 0; {
	case had && !now.Before(until):
		w.set(ctx, log, entry, nil)
		log.Error("name lookups failing for longer than resolve_hold; its servers are dropped", "err", err, "failing_since", since)
		return time.Time{}
	case had:
		if first {
			log.Warn("name lookup failed; its last addresses are kept", "err", err, "held_until", until)
		}
		return until
	}
	if first {
		log.Error("name does not resolve; its rules run without its servers until it does", "err", err)
	}
	return time.Time{}
}

// partialOf is e's text, "" for none.
func partialOf(e *PartialError) string {
	if e == nil {
		return ""
	}
	return e.Error()
}

// update records one lookup in the entry's status.
func (x *watched) update(now time.Time, wait time.Duration, err error, addrs []Address, failingSince, held time.Time, partial string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	s := &x.status
	s.Next, s.FailingSince, s.HeldUntil, s.Partial = now.Add(wait), failingSince, held, partial
	if err != nil {
		s.Error = err.Error()
		if held.IsZero() {
			s.Answer = nil // none held: the target has none
		}
		return
	}
	s.Error, s.Answer, s.ResolvedAt = "", records(addrs), now
}

// set hands an answer to the target, unless the lookup was cancelled,
// and logs what changed.
func (w *Watcher) set(ctx context.Context, log *slog.Logger, entry string, servers []Server) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	changed, err := w.target.SetAnswer(entry, servers)
	switch {
	case err != nil:
		log.Error("name's servers not published", "err", err)
	case changed:
		addrs := make([]string, len(servers))
		for i, s := range servers {
			addrs[i] = s.Addr.String()
		}
		log.Info("name's servers changed", "servers", addrs)
	}
}
