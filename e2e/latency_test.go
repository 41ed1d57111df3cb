package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"g6/internal/testenv"

	dto "github.com/prometheus/client_model/go"
)

// histogramOf returns the one histogram of family name in a scrape.
func histogramOf(t *testing.T, fams map[string]*dto.MetricFamily, name string) *dto.Histogram {
	t.Helper()
	f := fams[name]
	if f == nil || len(f.Metric) != 1 || f.Metric[0].Histogram == nil {
		t.Fatalf("%s: %v", name, f)
	}
	return f.Metric[0].Histogram
}

// cumulative is the count of a histogram's bucket with upper bound le.
func cumulative(h *dto.Histogram, le float64) uint64 {
	for _, b := range h.Bucket {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	return 1<<64 - 1
}

// TestLatencyHistograms: 30 sessions to a server that answers after 30 ms
// show in all three histograms, with no first byte under the server's 30
// ms, and show servers/stats print quantiles from them.
func TestLatencyHistograms(t *testing.T) {
	back, front, adminAddr, metrics := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.BackendArgs(t, []string{"-mode", "greet", "-delay", "30ms"}, back)
	cfg := fmt.Sprintf(`
[global]
metrics = %q

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "lat"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]
`, metrics, adminAddr, front, back)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	const n = 30
	for i := 0; i < n; i++ {
		c, g, err := testenv.Hold(front, "")
		if err != nil || !strings.HasPrefix(g, "hello from") {
			t.Fatalf("session %d: %q %v", i, g, err)
		}
		c.Close()
	}
	within(t, 5*time.Second, "every session counted", func() error {
		if c := histogramOf(t, scrape(t, metrics), "g6_session_duration_seconds").GetSampleCount(); c != n {
			return fmt.Errorf("session durations: %d samples", c)
		}
		return nil
	})
	fams := scrape(t, metrics)
	conn := histogramOf(t, fams, "g6_server_connect_seconds")
	fb := histogramOf(t, fams, "g6_server_first_byte_seconds")
	dur := histogramOf(t, fams, "g6_session_duration_seconds")
	// Lower bounds are the server's 30 ms (nothing can be faster); the
	// upper ones only say a sample landed in the right kind of bucket, and
	// are generous for a loaded machine.
	if conn.GetSampleCount() != n || cumulative(conn, 1) != n {
		t.Errorf("connect: %d samples, %d within 1 s (loopback), want %d", conn.GetSampleCount(), cumulative(conn, 1), n)
	}
	if fb.GetSampleCount() != n || cumulative(fb, 0.025) != 0 || cumulative(fb, 1) != n {
		t.Errorf("first byte: %d samples, %d by 25 ms, %d by 1 s; want %d, 0, %d", fb.GetSampleCount(), cumulative(fb, 0.025), cumulative(fb, 1), n, n)
	}
	if s := fb.GetSampleSum(); s < n*0.03 || s > n*1 {
		t.Errorf("first byte sum %.3fs for %d samples of 30 ms or more", s, n)
	}
	if dur.GetSampleCount() != n || cumulative(dur, 0.025) != 0 {
		t.Errorf("duration: %d samples, %d under 25 ms", dur.GetSampleCount(), cumulative(dur, 0.025))
	}

	var servers struct {
		Servers []struct {
			FirstByte struct{ P50, P90, P99 float64 } `json:"first_byte_ms"`
		}
	}
	if err := json.Unmarshal([]byte(adminSend(t, adminAddr, "show servers json\n")), &servers); err != nil || len(servers.Servers) != 1 {
		t.Fatalf("show servers json: %v %+v", err, servers)
	}
	if q := servers.Servers[0].FirstByte; q.P50 < 25 || q.P99 < q.P90 || q.P90 < q.P50 || q.P99 > 1000 {
		t.Errorf("first byte quantiles %+v, want ordered, from 25 ms", q)
	}
	if txt := adminSend(t, adminAddr, "show servers\n"); !strings.Contains(txt, "FIRST_BYTE_MS_P50/90/99") {
		t.Errorf("show servers:\n%s", txt)
	}
	if txt := adminSend(t, adminAddr, "show stats\n"); !strings.Contains(txt, "rule lat ms p50/p90/p99: connect ") {
		t.Errorf("show stats:\n%s", txt)
	}
}
