package main

import (
	"fmt"
	"sort"
	"strings"
)

// goal is one of the performance targets g6 is held to (issues #7, #20,
// #34, #36): the median same-round ratio of a metric, who (g6 or a
// variant) over base, against a bound; with no base, the metric's median
// itself (in unit).
type goal struct {
	text   string
	who    string
	metric string
	base   string
	bound  float64
	atMost bool // the ratio must be ≤ bound (memory, latency), not ≥
	unit   string
}

var goals = []goal{
	{"new connections/s ≥ 1.2 × HAProxy", "g6", "short_rps", "haproxy", 1.2, false, ""},
	{"new connections/s ≥ 1.2 × nginx stream", "g6", "short_rps", "nginx", 1.2, false, ""},
	{"keep-alive requests/s ≥ 1.1 × HAProxy", "g6", "keepalive_rps", "haproxy", 1.1, false, ""},
	{"bulk, 1 stream ≥ 0.9 × direct", "g6", "bulk1_gbps", "direct", 0.9, false, ""},
	{"bulk, 4 streams ≥ 0.9 × direct", "g6", "bulk4_gbps", "direct", 0.9, false, ""},
	{"RSS per idle connection ≤ HAProxy's", "g6", "idle_kib_per_conn", "haproxy", 1, true, ""},
	{"g6-sockmap keep-alive requests/s ≥ 1.5 × HAProxy", "g6-sockmap", "keepalive_rps", "haproxy", 1.5, false, ""},
	{"g6-sockmap new connections/s ≥ 1.2 × HAProxy", "g6-sockmap", "short_rps", "haproxy", 1.2, false, ""},
	{"g6-sockmap bulk, 1 stream ≥ 1.1 × HAProxy", "g6-sockmap", "bulk1_gbps", "haproxy", 1.1, false, ""},
	{"g6-sockmap RSS per idle connection ≤ HAProxy's", "g6-sockmap", "idle_kib_per_conn", "haproxy", 1, true, ""},
	{"TLS full handshakes/s ≥ 1.2 × HAProxy", "g6", "tls-short_rps", "haproxy", 1.2, false, ""},
	{"TLS full handshakes per proxy CPU-second ≥ 1.2 × HAProxy", "g6", "tls-short_per_cpu", "haproxy", 1.2, false, ""},
	{"TLS keep-alive requests/s ≥ 1.1 × HAProxy", "g6", "tls-keepalive_rps", "haproxy", 1.1, false, ""},
	{"TLS bulk, 1 stream ≥ 1.0 × HAProxy", "g6", "tls-bulk1_gbps", "haproxy", 1.0, false, ""},
	{"RSS per idle TLS connection ≤ HAProxy's", "g6", "tls-idle_kib_per_conn", "haproxy", 1, true, ""},
	{"UDP request/response queries/s ≥ 1.5 × nginx", "g6", "udp-rr_qps", "nginx", 1.5, false, ""},
	{"UDP request/response queries/s ≥ 0.6 × direct", "g6", "udp-rr_qps", "direct", 0.6, false, ""},
	{"UDP bulk ≥ 1.5 × nginx", "g6", "udp-bulk_gbps", "nginx", 1.5, false, ""},
	{"memory per idle UDP session ≤ 1 KiB", "g6", "udp-idle_kib_per_session", "", 1, true, "KiB"},
}

// targetsSection says, per target, what was measured and whether it was met.
func (r *results) targetsSection(b *strings.Builder) {
	b.WriteString("\n## Targets\n\n| target | measured | met |\n|---|---:|---|\n")
	for _, g := range goals {
		if g.base == "" {
			if v := r.values[g.who][g.metric]; v != nil {
				fmt.Fprintf(b, "| %s | %.2f %s | %s |\n", g.text, median(v), g.unit, verdict(median(v), g.bound, g.atMost))
			}
			continue
		}
		q, ok := r.ratio(g.who, g.base, g.metric)
		if !ok {
			continue
		}
		fmt.Fprintf(b, "| %s | %.2f × | %s |\n", g.text, q, verdict(q, g.bound, g.atMost))
	}
	if g, h, ok := r.addedP99(); ok {
		met := "yes"
		if g > h {
			met = fmt.Sprintf("no, %.3f ms more", g-h)
		}
		fmt.Fprintf(b, "| added p99 latency at the fixed rate ≤ HAProxy's | g6 %+.3f ms, HAProxy %+.3f ms | %s |\n", g, h, met)
	}
}

func verdict(q, bound float64, atMost bool) string {
	switch {
	case atMost && q <= bound, !atMost && q >= bound:
		return "yes"
	case atMost:
		return fmt.Sprintf("no, %.0f%% over", (q/bound-1)*100)
	}
	return fmt.Sprintf("no, %.0f%% short", (1-q/bound)*100)
}

// addedP99 is the median over rounds of each proxy's p99 at the fixed rate
// minus direct's p99 in the same round.
func (r *results) addedP99() (g6, haproxy float64, ok bool) {
	d, h, g := r.values["direct"]["latency_p99_ms"], r.values["haproxy"]["latency_p99_ms"], r.values["g6"]["latency_p99_ms"]
	if len(d) == 0 || len(h) != len(d) || len(g) != len(d) {
		return 0, 0, false
	}
	var ga, ha []float64
	for i := range d {
		ga = append(ga, g[i]-d[i])
		ha = append(ha, h[i]-d[i])
	}
	return median(ga), median(ha), true
}

var cpuWorkloads = []struct{ key, label string }{
	{"short", "new connections"},
	{"keepalive", "keep-alive"},
	{"bulk1", "bulk, 1 stream"},
	{"bulk4", "bulk, 4 streams"},
	{"tls-short", "TLS full handshakes"},
	{"tls-keepalive", "TLS keep-alive"},
	{"tls-bulk1", "TLS bulk, 1 stream"},
	{"udp-rr", "UDP request/response"},
	{"udp-bulk", "UDP bulk"},
}

// cpuSection shows how busy each core was, so the bottleneck is visible:
// cpu0 runs the proxy and the backends, cpu1 the load generator.
func (r *results) cpuSection(b *strings.Builder) {
	b.WriteString("\n## Where the CPU went\n\nBusy % of cpu0 (proxy + backends) / cpu1 (load generator), medians; in brackets the proxy's own share of cpu0.\n\n| workload |")
	for _, t := range targetKinds {
		fmt.Fprintf(b, " %s |", t)
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(targetKinds)) + "\n")
	for _, w := range cpuWorkloads {
		if r.values["g6"][w.key+"_cpu0"] == nil {
			continue
		}
		fmt.Fprintf(b, "| %s |", w.label)
		for _, t := range targetKinds {
			v := r.values[t]
			if v[w.key+"_cpu0"] == nil {
				b.WriteString(" – |")
				continue
			}
			fmt.Fprintf(b, " %.0f / %.0f", median(v[w.key+"_cpu0"]), median(v[w.key+"_cpu1"]))
			if p := v[w.key+"_cpu_pct"]; p != nil {
				fmt.Fprintf(b, " (%.0f)", median(p))
			}
			b.WriteString(" |")
		}
		b.WriteString("\n")
	}
	if len(r.steal) > 0 {
		s := append([]float64(nil), r.steal...)
		sort.Float64s(s)
		fmt.Fprintf(b, "\nCPU time stolen by the hypervisor for other guests during a measurement: median %.1f%%, highest %.1f%% (a reason rounds differ).\n",
			median(s), s[len(s)-1])
	}
}

var variantRows = []struct{ variant, metric, label, note string }{
	{"g6-splice", "keepalive_rps", "keep-alive requests/s", `splice = "always" (tiny messages spliced) vs the default, which copies them`},
	{"g6-quickack", "keepalive_rps", "keep-alive requests/s", `quickack = true on the client and server sockets vs the default`},
	{"g6-quickack", "keepalive_p99_ms", "keep-alive p99", `quickack = true vs the default (lower is better)`},
	{"g6-console", "short_rps", "new connections/s", `console set and polled like an open page (6 documents every 2 s) vs no console`},
	{"g6-console", "keepalive_rps", "keep-alive requests/s", `console set and polled vs no console`},
	{"g6-copy", "bulk1_gbps", "bulk, 1 stream", `splice = "off" (copied through the worker) vs the default, which splices after 256 KiB`},
	{"g6-copy", "bulk4_gbps", "bulk, 4 streams", `splice = "off" vs the default`},
}

// variantsSection compares g6's default with its variants (splice modes,
// quickack, a watched console), same rounds.
func (r *results) variantsSection(b *strings.Builder) {
	var rows []string
	for _, v := range variantRows {
		q, ok := r.ratio(v.variant, "g6", v.metric)
		if !ok {
			continue
		}
		cpu := v.metric[:strings.IndexByte(v.metric, '_')] + "_cpu_pct"
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %.2f | %.0f%% | %.0f%% | %s |", v.label, num(median(r.values["g6"][v.metric])),
			num(median(r.values[v.variant][v.metric])), q, median(r.values["g6"][cpu]), median(r.values[v.variant][cpu]), v.note))
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("\n## Variants of g6\n\n| workload | g6 (default) | variant | variant/g6 | g6 CPU | variant CPU | variant |\n|---|---:|---:|---:|---:|---:|---|\n")
	b.WriteString(strings.Join(rows, "\n") + "\n")
}
