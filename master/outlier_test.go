package master

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"g6/conf"
	"g6/pool"
	"g6/shared"
)

// windowOf is a window with n first bytes of d each and the counters.
func windowOf(n uint64, d time.Duration, retrans, segs int64) window {
	var h shared.Histogram
	for range n {
		h.Observe(int64(d))
	}
	fb, _ := h.Counts()
	return window{firstByte: fb, retrans: retrans, segsOut: segs}
}

func TestJudge(t *testing.T) {
	es := []pool.Entry{{Slot: 0, Server: conf.Server{Address: "a"}}, {Slot: 1, Server: conf.Server{Address: "b"}}, {Slot: 2, Server: conf.Server{Address: "c"}}}
	zero := map[int]window{0: {}, 1: {}, 2: {}}
	lat := conf.Outlier{LatencyFactor: 3}
	ret := conf.Outlier{RetransFactor: 3}
	for _, tt := range []struct {
		name string
		o    conf.Outlier
		prev map[int]window
		cur  map[int]window
		want string // the servers judged, and the start of why
	}{
		{"slow one", lat, zero, map[int]window{0: windowOf(50, time.Millisecond, 0, 0), 1: windowOf(50, time.Millisecond, 0, 0), 2: windowOf(50, 200*time.Millisecond, 0, 0)},
			"c latency first byte p99"},
		{"all alike", lat, zero, map[int]window{0: windowOf(50, 5*time.Millisecond, 0, 0), 1: windowOf(50, 5*time.Millisecond, 0, 0), 2: windowOf(50, 6*time.Millisecond, 0, 0)}, ""},
		{"too few samples", lat, zero, map[int]window{0: windowOf(50, time.Millisecond, 0, 0), 1: windowOf(50, time.Millisecond, 0, 0), 2: windowOf(5, time.Second, 0, 0)}, ""},
		{"no previous window", lat, map[int]window{}, map[int]window{0: windowOf(50, time.Millisecond, 0, 0), 2: windowOf(50, time.Second, 0, 0)}, ""},
		{"lossy one", ret, zero, map[int]window{0: {retrans: 0, segsOut: 5000}, 1: {retrans: 1, segsOut: 5000}, 2: {retrans: 400, segsOut: 4000}},
			"c retransmits retransmits 10.0% of segments"},
		{"lossy but few segments", ret, zero, map[int]window{0: {segsOut: 5000}, 1: {segsOut: 5000}, 2: {retrans: 40, segsOut: 100}}, ""},
		{"a few retransmits only", ret, zero, map[int]window{0: {segsOut: 5000}, 1: {segsOut: 5000}, 2: {retrans: 5, segsOut: 1000}}, ""},
		{"all lossy alike", ret, zero, map[int]window{0: {retrans: 100, segsOut: 1000}, 1: {retrans: 110, segsOut: 1000}, 2: {retrans: 120, segsOut: 1000}}, ""},
	} {
		var got []string
		for _, v := range judge(tt.o, es, tt.prev, tt.cur) {
			got = append(got, v.e.Server.Address+" "+v.kind+" "+v.why)
		}
		if g := strings.Join(got, "; "); tt.want == "" && g != "" || tt.want != "" && !strings.HasPrefix(g, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, g, tt.want)
		}
	}
}

func TestEjectLimit(t *testing.T) {
	region, err := shared.Create(shared.Sizes{Rules: 1, Servers: 4, Clients: 1, IPs: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer region.Close()
	ol := &outliers{times: map[string]int{}, why: map[int]string{}, counts: map[[3]string]int64{}}
	es := []pool.Entry{{Slot: 0, Server: conf.Server{Address: "a"}}, {Slot: 1, Server: conf.Server{Address: "b"}}, {Slot: 2, Server: conf.Server{Address: "c"}}}
	o := conf.Outlier{MaxEjectionPercent: 100, BaseEjection: conf.Duration(time.Second)}
	now := shared.Now()
	log := slog.New(slog.DiscardHandler)
	if !ol.eject(o, "r", es[0], es, region, now, ejectFailures, "x", false, log) || !ol.eject(o, "r", es[1], es, region, now, ejectFailures, "x", false, log) {
		t.Fatal("the first two of three at 100% were not ejected")
	}
	if ol.eject(o, "r", es[2], es, region, now, ejectFailures, "x", false, log) {
		t.Error("the last server in was ejected")
	}
	ol.readmit(region.Server(0), 0)
	if !ol.eject(o, "r", es[0], es, region, now, ejectFailures, "x", false, log) {
		t.Fatal("a readmitted server could not be ejected again")
	}
	if got := region.Server(0).EjectedUntil.Load() - now; got != int64(2*time.Second) {
		t.Errorf("second ejection for %v, want 2 × base_ejection", time.Duration(got))
	}
}
