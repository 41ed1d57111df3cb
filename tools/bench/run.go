package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// results[target][metric] holds one value per round (NaN-free: a failed
// measurement aborts the run).
type results struct {
	values  map[string]map[string][]float64
	started time.Time
	elapsed time.Duration
	notes   []string
	steal   []float64 // % of CPU time stolen by the hypervisor, per measurement
}

func (r *results) add(target, metric string, v float64) {
	if r.values[target] == nil {
		r.values[target] = map[string][]float64{}
	}
	r.values[target][metric] = append(r.values[target][metric], v)
}

var workloads = append(append(append([]string{"short", "keepalive", "bulk1", "bulk4", "idle"}, tlsWorkloads...), udpWorkloads...), "latency")

// variants are g6 with another data path, run only where the comparison
// says something: tiny messages spliced from the first byte (splice =
// "always") or with TCP_QUICKACK on both sides (quickack = true), and bulk
// streams copied through the worker (splice = "off"); and g6 with its web
// console polled as an open page polls it (g6-console).
var variants = map[string][]string{
	"short":     {"g6-console"},
	"keepalive": {"g6-splice", "g6-quickack", "g6-console"},
	"bulk1":     {"g6-copy"},
	"bulk4":     {"g6-copy"},
}

func run(o *options) (*results, error) {
	dir, err := os.MkdirTemp("", "g6-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b, err := startBackends(dir, o.runs(udpWorkloads...))
	if err != nil {
		return nil, err
	}
	defer b.stop()
	res := &results{values: map[string]map[string][]float64{}, started: time.Now()}
	for round := 0; round < o.rounds; round++ {
		for _, w := range workloads {
			if !o.runs(w) {
				continue
			}
			if w == "latency" {
				fmt.Fprintf(os.Stderr, "round %d/%d: %-9s all targets at once\n", round+1, o.rounds, w)
				if err := measureLatency(o, dir, b, res); err != nil {
					return nil, err
				}
				continue
			}
			kinds := append([]string(nil), targetKinds...)
			if isTLS(w) {
				kinds = append([]string(nil), tlsKinds...)
			}
			if isUDP(w) {
				kinds = append([]string(nil), udpKinds...)
			}
			if o.variants {
				kinds = append(kinds, variants[w]...)
			}
			order := append(kinds[round%len(kinds):], kinds[:round%len(kinds)]...)
			for _, kind := range order {
				if (w == "idle" || w == "udp-idle") && kind == "direct" {
					continue
				}
				fmt.Fprintf(os.Stderr, "round %d/%d: %-9s %-8s ", round+1, o.rounds, w, kind)
				if err := measure(o, dir, b, kind, w, res); err != nil {
					return nil, err
				}
			}
		}
	}
	res.elapsed = time.Since(res.started)
	return res, nil
}

// startChecked starts a fresh target (with its TLS or UDP frontends for
// such a workload) and runs the preflight on it.
func startChecked(kind string, o *options, dir string, b *backends, withTLS, withUDP bool) (*target, error) {
	t, err := startTarget(kind, o, dir, b, withTLS, withUDP)
	if err != nil {
		return nil, err
	}
	err = preflight(t)
	if err == nil && withTLS {
		err = tlsPreflight(t)
	}
	if err == nil && withUDP {
		err = udpPreflight(t)
	}
	if err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

// measure starts a fresh target, checks it, runs one workload, stops it.
func measure(o *options, dir string, b *backends, kind, w string, res *results) error {
	t, err := startChecked(kind, o, dir, b, isTLS(w), isUDP(w))
	if err != nil {
		return err
	}
	defer t.stop()
	var ticks0 int64
	if t.proc != nil {
		ticks0 = t.proc.cpuTicks()
	}
	cores0 := sampleCores()
	start := time.Now()
	var rps float64 // wrk's, for the handshakes per CPU-second
	switch w {
	case "short", "keepalive", "tls-short", "tls-keepalive":
		conns, closeConn := 100, false
		if w == "short" || w == "tls-short" {
			conns, closeConn = 50, true
		}
		url := "http://" + t.web + "/"
		if isTLS(w) {
			url = "https://" + t.tlsWeb + "/"
		}
		r, err := runWrk(url, conns, o.duration, closeConn)
		if err != nil {
			return err
		}
		rps = r.rps
		res.add(kind, w+"_rps", r.rps)
		res.add(kind, w+"_p50_ms", ms(r.p50))
		res.add(kind, w+"_p99_ms", ms(r.p99))
		if r.errors > 0 {
			res.notes = append(res.notes, fmt.Sprintf("%s %s: wrk reported %d socket errors", kind, w, r.errors))
		}
		fmt.Fprintf(os.Stderr, "%9.0f req/s p50 %v p99 %v", r.rps, r.p50, r.p99)
	case "bulk1", "bulk4":
		n := 1
		if w == "bulk4" {
			n = 4
		}
		g, err := runIperf(t.bulk, n, o.duration)
		if err != nil {
			return err
		}
		res.add(kind, w+"_gbps", g)
		fmt.Fprintf(os.Stderr, "%6.1f Gbit/s", g)
	case "tls-bulk1":
		g, err := runTLSBulk(t.tlsBulk, o.duration)
		if err != nil {
			return err
		}
		res.add(kind, w+"_gbps", g)
		fmt.Fprintf(os.Stderr, "%6.1f Gbit/s", g)
	case "udp-rr", "udp-bulk", "udp-idle":
		if err := measureUDP(o, b, t, kind, w, res); err != nil {
			return err
		}
	case "idle", "tls-idle":
		run := runIdle
		if w == "tls-idle" {
			run = runIdleTLS
		}
		r, err := run(t, o.idle)
		if err != nil {
			return err
		}
		per := float64(r.rssAfter-r.rssBefore) / float64(r.n)
		res.add(kind, w+"_kib_per_conn", per)
		res.add(kind, w+"_rss_mib", float64(r.rssAfter)/1024)
		if r.answered != r.n {
			res.notes = append(res.notes, fmt.Sprintf("%s idle: %d of %d held connections answered", kind, r.answered, r.n))
		}
		fmt.Fprintf(os.Stderr, "%5.1f KiB/conn (RSS %.0f MiB), %d/%d answered", per, float64(r.rssAfter)/1024, r.answered, r.n)
	}
	if w != "idle" && w != "tls-idle" && w != "udp-idle" && w != "latency" {
		cores := sampleCores()
		res.add(kind, w+"_cpu0", busyPct(cores0, cores, 0))
		res.add(kind, w+"_cpu1", busyPct(cores0, cores, 1))
		res.steal = append(res.steal, stealPct(cores0, cores))
		fmt.Fprintf(os.Stderr, "  cpu0 %.0f%% cpu1 %.0f%%", busyPct(cores0, cores, 0), busyPct(cores0, cores, 1))
		if t.proc != nil {
			pct := float64(t.proc.cpuTicks()-ticks0) / 100 / time.Since(start).Seconds() * 100
			res.add(kind, w+"_cpu_pct", pct)
			if w == "tls-short" && pct > 0 {
				res.add(kind, w+"_per_cpu", rps/(pct/100))
			}
			fmt.Fprintf(os.Stderr, " (proxy %.0f%%)", pct)
		}
	}
	fmt.Fprintln(os.Stderr)
	return nil
}

// measureLatency starts every target (fresh), checks each, and probes them
// all together at the fixed rate.
func measureLatency(o *options, dir string, b *backends, res *results) error {
	var addrs []string
	for _, kind := range targetKinds {
		t, err := startChecked(kind, o, dir, b, false, false)
		if err != nil {
			return err
		}
		defer t.stop()
		addrs = append(addrs, t.web)
	}
	p50, p99, err := runLatency(addrs, o.rate, o.duration)
	if err != nil {
		return err
	}
	for i, kind := range targetKinds {
		res.add(kind, "latency_p50_ms", ms(p50[i]))
		res.add(kind, "latency_p99_ms", ms(p99[i]))
		fmt.Fprintf(os.Stderr, "  %-8s p50 %v p99 %v at %d req/s\n", kind, p50[i], p99[i], o.rate)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// runs reports whether any of the workloads runs (-only).
func (o *options) runs(ws ...string) bool {
	for _, w := range ws {
		if o.only == "" || strings.Contains(","+o.only+",", ","+w+",") {
			return true
		}
	}
	return false
}
