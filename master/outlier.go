package master

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"g6/admin"
	"g6/conf"
	"g6/pool"
	"g6/shared"
)

// Passive outlier ejection (a rule's outlier table): the workers count
// per server, in the shared region, the failures it caused in a row
// (EjectStreak), its first-byte latencies and, with retrans_factor, the
// retransmits of its sockets (Retrans, SegsOut); a watcher per rule in the
// master reads them and ejects a server: at once when the streak reaches
// consecutive_failures, and every interval by its first-byte p99 or its
// retransmitted share against the rule's median (servers with too few
// samples are not judged, and do not make the median). An ejection lasts
// base_ejection × the times the server was ejected before (at most 10×),
// then the server returns with its slow start; never more than
// max_ejection_percent of the rule's servers are out at once, never the
// last one. The watcher holds no lock across anything slow: it reads the
// pool's current servers, then atomics.

// Reasons of an ejection, as g6_server_ejections_total labels them.
const (
	ejectFailures = "failures"
	ejectLatency  = "latency"
	ejectRetrans  = "retransmits"
)

// Below these a server is not judged in a window.
const (
	minLatencySamples = 20
	minSegments       = 200
	minRetransmits    = 10
	retransFloor      = 0.001 // a clean rule's median: one segment in a thousand
)

// outliers runs the watchers and keeps what they decided.
type outliers struct {
	running map[string]*outlierWatch // by rule id
	wg      sync.WaitGroup
	mu      sync.Mutex
	times   map[string]int      // ejections so far, by conf.ServerKey
	why     map[int]string      // why each ejected server is out, by slot
	counts  map[[3]string]int64 // rule, server, reason → ejections
}

type outlierWatch struct {
	o    conf.Outlier
	stop context.CancelFunc
}

// syncOutliers runs a watcher for every rule with an outlier table (a
// changed table restarts it; a rule that lost its table has its servers
// back at once). syncChecks calls it, with checkMu held.
func (m *Master) syncOutliers() {
	if m.outliers == nil {
		m.outliers = &outliers{running: map[string]*outlierWatch{}, times: map[string]int{}, why: map[int]string{}, counts: map[[3]string]int64{}}
	}
	ol := m.outliers
	cfg, entries := m.pool.Current()
	want := map[string]bool{}
	for i, r := range cfg.Rules {
		if r.Outlier == nil {
			for _, e := range entries[i] {
				ol.readmit(m.region.Server(e.Slot), e.Slot)
			}
			continue
		}
		want[r.ID] = true
		if w := ol.running[r.ID]; w != nil && w.o == *r.Outlier {
			continue
		} else if w != nil {
			w.stop()
		}
		ctx, stop := context.WithCancel(context.Background())
		w := &outlierWatch{o: *r.Outlier, stop: stop}
		ol.running[r.ID] = w
		ol.wg.Add(1)
		go runOutlier(ctx, ol, w.o, r.ID, m.pool, m.region, m.log.With("rule", r.ID))
	}
	for id, w := range ol.running {
		if !want[id] {
			w.stop()
			delete(ol.running, id)
		}
	}
}

// stopOutliers stops the watchers (stopChecks calls it, with checkMu held).
func (m *Master) stopOutliers() {
	if m.outliers != nil {
		for _, w := range m.outliers.running {
			w.stop()
		}
		m.outliers.wg.Wait()
		m.outliers.running = map[string]*outlierWatch{}
	}
}

// ejectedView is what show servers and the metrics say of ejections.
func (m *Master) ejectedView() (map[int]string, []admin.Ejections) {
	m.checkMu.Lock()
	ol := m.outliers
	m.checkMu.Unlock()
	if ol == nil {
		return nil, nil
	}
	ol.mu.Lock()
	defer ol.mu.Unlock()
	why := make(map[int]string, len(ol.why))
	for k, v := range ol.why {
		why[k] = v
	}
	var counts []admin.Ejections
	for k, n := range ol.counts {
		counts = append(counts, admin.Ejections{Rule: k[0], Server: k[1], Reason: k[2], Count: n})
	}
	slices.SortFunc(counts, func(a, b admin.Ejections) int {
		return cmp.Or(strings.Compare(a.Rule, b.Rule), strings.Compare(a.Server, b.Server), strings.Compare(a.Reason, b.Reason))
	})
	return why, counts
}

// readmit ends slot's ejection now.
func (ol *outliers) readmit(sl *shared.ServerSlot, slot int) {
	if sl.Flags.Load()&shared.FlagEjected != 0 {
		sl.Flags.And(^int64(shared.FlagEjected))
	}
	ol.mu.Lock()
	delete(ol.why, slot)
	ol.mu.Unlock()
}

// window is one server's counters at the start of a window.
type window struct {
	firstByte        [shared.NBuckets]uint64
	retrans, segsOut int64
}

// runOutlier watches one rule's servers until stopped.
func runOutlier(ctx context.Context, ol *outliers, o conf.Outlier, rule string, tbl *pool.Table, region *shared.Region, log *slog.Logger) {
	defer ol.wg.Done()
	tick := time.NewTicker(100 * time.Millisecond) // a failing server goes within a tick of its streak
	defer tick.Stop()
	prev := map[int]window{}
	windowEnd := shared.Now() + int64(o.Interval)
	full := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		es := ruleEntries(tbl, rule)
		now := shared.Now()
		for _, e := range es {
			sl := region.Server(e.Slot)
			if sl.Flags.Load()&shared.FlagEjected != 0 && sl.EjectedUntil.Load() <= now {
				ol.readmit(sl, e.Slot)
				log.Info("ejected server returns", "server", e.Server.Address)
			}
		}
		if o.ConsecutiveFailures > 0 {
			for _, e := range es {
				sl := region.Server(e.Slot)
				if n := sl.EjectStreak.Load(); n >= int64(o.ConsecutiveFailures) && !ejected(sl, now) {
					full = !ol.eject(o, rule, e, es, region, now, ejectFailures, fmt.Sprintf("%d failures in a row", n), full, log)
				}
			}
		}
		if now < windowEnd {
			continue
		}
		windowEnd = now + int64(o.Interval)
		cur := map[int]window{}
		for _, e := range es {
			sl := region.Server(e.Slot)
			fb, _ := sl.FirstByte.Counts()
			cur[e.Slot] = window{firstByte: fb, retrans: sl.Retrans.Load(), segsOut: sl.SegsOut.Load()}
		}
		for _, v := range judge(o, es, prev, cur) {
			if !ejected(region.Server(v.e.Slot), now) {
				full = !ol.eject(o, rule, v.e, es, region, now, v.kind, v.why, full, log)
			}
		}
		prev = cur
	}
}

// ruleEntries is the rule's current servers.
func ruleEntries(tbl *pool.Table, rule string) []pool.Entry {
	cfg, entries := tbl.Current()
	for i, r := range cfg.Rules {
		if r.ID == rule {
			return entries[i]
		}
	}
	return nil
}

func ejected(sl *shared.ServerSlot, now int64) bool {
	return sl.Flags.Load()&shared.FlagEjected != 0 && sl.EjectedUntil.Load() > now
}

// verdict is a server judged an outlier over a window.
type verdict struct {
	e         pool.Entry
	kind, why string
}

// judge compares each server's window (cur - prev) with the rule's
// median: first-byte p99 and retransmitted share of segments.
func judge(o conf.Outlier, es []pool.Entry, prev, cur map[int]window) []verdict {
	var out []verdict
	if o.LatencyFactor > 0 {
		p99 := map[int]time.Duration{}
		var all []time.Duration
		for _, e := range es {
			p, ok := prev[e.Slot]
			if !ok {
				continue
			}
			var d [shared.NBuckets]uint64
			n := uint64(0)
			for b := range d {
				d[b] = cur[e.Slot].firstByte[b] - p.firstByte[b]
				n += d[b]
			}
			if n >= minLatencySamples {
				p99[e.Slot] = shared.Quantile(d, 0.99)
				all = append(all, p99[e.Slot])
			}
		}
		if len(all) >= 2 {
			median := median(all)
			for _, e := range es {
				if q, ok := p99[e.Slot]; ok && median > 0 && float64(q) > o.LatencyFactor*float64(median) {
					out = append(out, verdict{e, ejectLatency, fmt.Sprintf("first byte p99 %v, %.1f× median", q.Round(time.Millisecond/10), float64(q)/float64(median))})
				}
			}
		}
	}
	if o.RetransFactor > 0 {
		rate := map[int]float64{}
		retr := map[int]int64{}
		var all []float64
		for _, e := range es {
			p, ok := prev[e.Slot]
			if !ok {
				continue
			}
			segs, r := cur[e.Slot].segsOut-p.segsOut, cur[e.Slot].retrans-p.retrans
			if segs >= minSegments {
				rate[e.Slot], retr[e.Slot] = float64(r)/float64(segs), r
				all = append(all, rate[e.Slot])
			}
		}
		if len(all) >= 2 {
			base := max(median(all), retransFloor)
			for _, e := range es {
				if r, ok := rate[e.Slot]; ok && retr[e.Slot] >= minRetransmits && r > o.RetransFactor*base {
					out = append(out, verdict{e, ejectRetrans, fmt.Sprintf("retransmits %.1f%% of segments, %.1f× median", 100*r, r/base)})
				}
			}
		}
	}
	return out
}

// median of the values judged (sorts them).
func median[T time.Duration | float64](all []T) T {
	slices.Sort(all)
	if len(all)%2 == 0 {
		return (all[len(all)/2-1] + all[len(all)/2]) / 2
	}
	return all[len(all)/2]
}

// eject takes e out for its next ejection's time, unless the rule has
// max_ejection_percent of its servers out already (or e is the last one
// in). It reports whether it could; wasFull keeps the refusal to one log
// line until an ejection succeeds again.
func (ol *outliers) eject(o conf.Outlier, rule string, e pool.Entry, es []pool.Entry, region *shared.Region, now int64, kind, why string, wasFull bool, log *slog.Logger) bool {
	out := 0
	for _, x := range es {
		if ejected(region.Server(x.Slot), now) {
			out++
		}
	}
	limit := min(len(es)*o.MaxEjectionPercent/100, len(es)-1)
	if out >= limit {
		if !wasFull {
			log.Warn("outlier not ejected: max_ejection_percent of the rule's servers are out", "server", e.Server.Address,
				"reason", why, "ejected", out, "servers", len(es), "max_ejection_percent", o.MaxEjectionPercent)
		}
		return false
	}
	key := conf.ServerKey(rule, e.Server.Address)
	ol.mu.Lock()
	ol.times[key]++
	times := ol.times[key]
	ol.why[e.Slot] = why
	ol.counts[[3]string{rule, e.Server.Address, kind}]++
	ol.mu.Unlock()
	d := int64(o.BaseEjection) * int64(min(times, 10))
	sl := region.Server(e.Slot)
	sl.EjectedUntil.Store(now + d)
	sl.UpSince.Store(now + d) // its slow start, if any, begins as it returns
	sl.EjectStreak.Store(0)
	sl.Flags.Or(shared.FlagEjected)
	log.Warn("server ejected as an outlier", "server", e.Server.Address, "reason", why, "for", time.Duration(d), "ejections", times)
	return true
}
