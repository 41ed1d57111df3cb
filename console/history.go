package console

import (
	"sync"
	"time"

	"g6/admin"
)

// The console's charts: every second (sampleHistory) the console samples
// each rule's connections/s, open sessions and bytes/s from the shared
// region into a ring of the last 15 minutes (nothing on the data path). Workers
// add a live session's bytes to its server every 250 ms, so a long
// stream's bytes/s shows while it runs.

// historyLen is 15 minutes of one-second points.
const historyLen = 15 * 60

// HistoryPoint is one second of one rule.
type HistoryPoint struct {
	T        int64   `json:"t"` // unix seconds
	Conns    float64 `json:"connections_per_second"`
	Sessions int64   `json:"sessions"`
	Bytes    float64 `json:"bytes_per_second"`
}

// history holds each rule's ring, by rule id.
type history struct {
	mu    sync.Mutex
	rules map[string][]HistoryPoint // oldest first, at most historyLen
	last  map[string][2]int64       // the rule's connection and byte totals at the last sample
	at    time.Time
}

// sample adds one point per rule from the current snapshot.
func (h *history) sample(snap admin.Snapshot, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rules == nil {
		h.rules, h.last = map[string][]HistoryPoint{}, map[string][2]int64{}
	}
	dt := now.Sub(h.at).Seconds()
	keep := map[string][]HistoryPoint{}
	for i, r := range snap.Config.Rules {
		var active int64
		for _, e := range snap.Servers[i] {
			active += snap.Region.Server(e.Slot).Active.Load()
		}
		rs := snap.Region.Rule(snap.Rules[i]) // the rule's own totals: a removed server takes none along
		total, bytes := rs.Connections.Load(), rs.FromServer.Load()+rs.FromClient.Load()
		p := HistoryPoint{T: now.Unix(), Sessions: active}
		if last, ok := h.last[r.ID]; ok && dt > 0 {
			p.Conns = float64(max(total-last[0], 0)) / dt
			p.Bytes = float64(max(bytes-last[1], 0)) / dt
		}
		h.last[r.ID] = [2]int64{total, bytes}
		ring := append(h.rules[r.ID], p)
		if len(ring) > historyLen {
			ring = ring[len(ring)-historyLen:]
		}
		keep[r.ID] = ring
	}
	h.rules, h.at = keep, now // rules a reload dropped go
}

// snapshot copies every rule's points.
func (h *history) snapshot() map[string][]HistoryPoint {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string][]HistoryPoint, len(h.rules))
	for id, ring := range h.rules {
		out[id] = append([]HistoryPoint(nil), ring...)
	}
	return out
}
