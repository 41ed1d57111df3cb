package console

import (
	"runtime"
	"strconv"
	"time"

	"g6/admin"
	"g6/conf"
	"g6/shared"

	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// collector turns the shared region and the master's counts into
// Prometheus metrics at scrape time. It only reads atomics and a snapshot,
// so a scrape never touches the data path.
type collector struct {
	s *Server
}

var (
	descBuild       = prometheus.NewDesc("g6_build_info", "Build information.", []string{"version", "goversion"}, nil)
	serverLabels    = []string{"rule", "server"}
	descUp          = prometheus.NewDesc("g6_server_up", "1 when the server may be chosen (not isolated, disabled or waiting for a heartbeat).", serverLabels, nil)
	descActive      = prometheus.NewDesc("g6_server_active_connections", "Connections open to the server, across workers.", serverLabels, nil)
	descConns       = prometheus.NewDesc("g6_server_connections_total", "Connections made to the server.", serverLabels, nil)
	descFailures    = prometheus.NewDesc("g6_server_connect_failures_total", "Failed connects to the server.", serverLabels, nil)
	descRecv        = prometheus.NewDesc("g6_server_received_bytes_total", "Bytes received from the server (added every 250 ms while sessions live).", serverLabels, nil)
	descSent        = prometheus.NewDesc("g6_server_sent_bytes_total", "Bytes sent to the server (added every 250 ms while sessions live).", serverLabels, nil)
	descRT          = prometheus.NewDesc("g6_server_response_seconds", "Moving average of the time to the server's first byte.", serverLabels, nil)
	descSessions    = prometheus.NewDesc("g6_rule_sessions", "Sessions open through the rule.", []string{"rule"}, nil)
	descRefused     = prometheus.NewDesc("g6_rule_refused_total", "Connections closed at once (UDP: new sessions refused), by reason.", []string{"rule", "reason"}, nil)
	descDatagrams   = prometheus.NewDesc("g6_udp_datagrams_total", "Datagrams a UDP rule forwarded, by direction (from_client, from_server).", []string{"rule", "direction"}, nil)
	descDropped     = prometheus.NewDesc("g6_udp_dropped_total", "Datagrams a UDP rule dropped: no server took the session, or the kernel would not send it.", []string{"rule"}, nil)
	descPanic       = prometheus.NewDesc("g6_rule_panic", "1 while every server of the rule that could serve is isolated by moratorium alone, and is tried anyway.", []string{"rule"}, nil)
	descEjections   = prometheus.NewDesc("g6_server_ejections_total", "Times the server was ejected as an outlier, by reason (failures, latency, retransmits).", []string{"rule", "server", "reason"}, nil)
	descPanicConn   = prometheus.NewDesc("g6_rule_panic_connections_total", "Sessions that tried servers isolated by moratorium because the rule was in panic.", []string{"rule"}, nil)
	descHTTPRefused = prometheus.NewDesc("g6_http_refused_total", "Connections to the metrics or console endpoint closed at once: it held http_max_connections, or http_max_connections_per_ip from that client.", []string{"listen"}, nil)
	descRuleConns   = prometheus.NewDesc("g6_rule_connections_total", "Connections the rule's sessions established, whatever became of their servers.", []string{"rule"}, nil)
	descRuleFails   = prometheus.NewDesc("g6_rule_connect_failures_total", "Failed connects of the rule's sessions.", []string{"rule"}, nil)
	descRuleRecv    = prometheus.NewDesc("g6_rule_received_bytes_total", "Bytes received from the rule's servers.", []string{"rule"}, nil)
	descRuleSent    = prometheus.NewDesc("g6_rule_sent_bytes_total", "Bytes sent to the rule's servers.", []string{"rule"}, nil)
	descLogDropped  = prometheus.NewDesc("g6_access_log_dropped_total", "Access-log lines the workers could not write (a full disk, say).", nil, nil)
	descLocalFail   = prometheus.NewDesc("g6_rule_local_connect_failures_total", "Connects that failed on this host (no local port or buffers); they do not isolate the server.", []string{"rule"}, nil)
	descRestarts    = prometheus.NewDesc("g6_worker_restarts_total", "Times the worker slot was respawned.", []string{"slot"}, nil)
	descWorkers     = prometheus.NewDesc("g6_workers", "Live worker processes of the current generation.", nil, nil)
	descUptimeSec   = prometheus.NewDesc("g6_uptime_seconds", "Seconds since the master started.", nil, nil)
	descResolved    = prometheus.NewDesc("g6_resolver_addresses", "Addresses the server name yields now (held ones included).", []string{"entry"}, nil)
	descFailing     = prometheus.NewDesc("g6_resolver_failing", "1 while the server name's lookups fail.", []string{"entry"}, nil)
	descConnect     = prometheus.NewDesc("g6_server_connect_seconds", "Time from starting a connect to the server to it being established.", serverLabels, nil)
	descFirstByte   = prometheus.NewDesc("g6_server_first_byte_seconds", "Time to the server's first byte: from the connect (or the client's latest bytes before it) to the first byte back; the samples the RT algorithm averages.", serverLabels, nil)
	descTLS         = prometheus.NewDesc("g6_tls_handshakes_total", "TLS handshakes g6 terminated, by result.", []string{"rule", "result"}, nil)
	descTLSTime     = prometheus.NewDesc("g6_tls_handshake_seconds", "Time the TLS handshakes g6 terminated took, from the first ClientHello byte to the client's Finished.", []string{"rule"}, nil)
	descCertExpiry  = prometheus.NewDesc("g6_tls_certificate_expiry_timestamp_seconds", "When the certificate expires (its NotAfter), as a Unix time.", []string{"file", "subject"}, nil)
	descDuration    = prometheus.NewDesc("g6_session_duration_seconds", "Duration of the sessions that reached the server, from accept to close.", serverLabels, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBuild, descUp, descActive, descConns, descFailures, descRecv,
		descSent, descRT, descSessions, descRefused, descDatagrams, descDropped, descPanic, descPanicConn, descEjections, descHTTPRefused, descLogDropped, descRuleConns, descRuleFails, descRuleRecv, descRuleSent, descLocalFail, descRestarts, descWorkers, descUptimeSec,
		descResolved, descFailing, descConnect, descFirstByte, descDuration, descTLS, descTLSTime, descCertExpiry} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.s.backend.Snapshot()
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, c.s.version, runtime.Version())
	ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(len(snap.Workers)))
	ch <- prometheus.MustNewConstMetric(descUptimeSec, prometheus.GaugeValue, time.Since(snap.Started).Seconds())
	ch <- prometheus.MustNewConstMetric(descLogDropped, prometheus.CounterValue, float64(snap.Region.AccessLogDropped().Load()))
	now := shared.Now()
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	for _, e := range snap.Ejections {
		ch <- prometheus.MustNewConstMetric(descEjections, counter, float64(e.Count), e.Rule, e.Server, e.Reason)
	}
	for i, r := range snap.Config.Rules {
		var sessions int64
		for _, e := range snap.Servers[i] {
			slot := snap.Region.Server(e.Slot)
			up := 0.0
			if slot.Usable(now) {
				up = 1
			}
			l := []string{r.ID, e.Server.Address}
			active := slot.Active.Load()
			sessions += active
			ch <- prometheus.MustNewConstMetric(descUp, gauge, up, l...)
			ch <- prometheus.MustNewConstMetric(descActive, gauge, float64(active), l...)
			ch <- prometheus.MustNewConstMetric(descConns, counter, float64(slot.Total.Load()), l...)
			ch <- prometheus.MustNewConstMetric(descFailures, counter, float64(slot.Failures.Load()), l...)
			ch <- histogram(descConnect, &slot.Connect, l)
			ch <- histogram(descFirstByte, &slot.FirstByte, l)
			ch <- histogram(descDuration, &slot.Duration, l)
			ch <- prometheus.MustNewConstMetric(descRecv, counter, float64(slot.FromServer.Load()), l...)
			ch <- prometheus.MustNewConstMetric(descSent, counter, float64(slot.FromClient.Load()), l...)
			ch <- prometheus.MustNewConstMetric(descRT, gauge, float64(slot.RTAvg.Load())/1e9, l...)
		}
		var limited, rated int64
		for _, ci := range snap.Clients[i] {
			limited += snap.Region.Client(ci).Refused.Load()
			rated += snap.Region.Client(ci).RateLimited.Load()
		}
		rs := snap.Region.Rule(snap.Rules[i])
		inPanic := 0.0
		if rs.PanicSince.Load() != 0 {
			inPanic = 1
		}
		ch <- prometheus.MustNewConstMetric(descPanic, gauge, inPanic, r.ID)
		ch <- prometheus.MustNewConstMetric(descPanicConn, counter, float64(rs.PanicConnections.Load()), r.ID)
		ch <- prometheus.MustNewConstMetric(descRuleConns, counter, float64(rs.Connections.Load()), r.ID)
		ch <- prometheus.MustNewConstMetric(descRuleFails, counter, float64(rs.Failures.Load()), r.ID)
		ch <- prometheus.MustNewConstMetric(descRuleRecv, counter, float64(rs.FromServer.Load()), r.ID)
		ch <- prometheus.MustNewConstMetric(descRuleSent, counter, float64(rs.FromClient.Load()), r.ID)
		ch <- prometheus.MustNewConstMetric(descSessions, gauge, float64(sessions), r.ID)
		ch <- prometheus.MustNewConstMetric(descRefused, counter, float64(limited), r.ID, "client_limit")
		ch <- prometheus.MustNewConstMetric(descRefused, counter, float64(rated), r.ID, "rate_limit")
		for _, c := range rs.Refusals() {
			ch <- prometheus.MustNewConstMetric(descRefused, counter, float64(c.N.Load()), r.ID, c.Reason)
		}
		ch <- prometheus.MustNewConstMetric(descLocalFail, counter, float64(rs.LocalFailures.Load()), r.ID)
		if r.Protocol == conf.ProtocolUDP {
			ch <- prometheus.MustNewConstMetric(descDatagrams, counter, float64(rs.DatagramsFromClient.Load()), r.ID, "from_client")
			ch <- prometheus.MustNewConstMetric(descDatagrams, counter, float64(rs.DatagramsFromServer.Load()), r.ID, "from_server")
			ch <- prometheus.MustNewConstMetric(descDropped, counter, float64(rs.DatagramsDropped.Load()), r.ID)
		}
		if r.TerminatesTLS() {
			for _, res := range shared.TLSResults() {
				ch <- prometheus.MustNewConstMetric(descTLS, counter, float64(res.Counter(rs).Load()), r.ID, res.String())
			}
			ch <- histogram(descTLSTime, &rs.TLSHandshake, []string{r.ID})
		}
	}
	for _, c := range admin.Certs(snap.Config, time.Now()) {
		ch <- prometheus.MustNewConstMetric(descCertExpiry, gauge, float64(c.NotAfter.Unix()), c.File, c.Subject)
	}
	for _, ln := range c.s.lns {
		ch <- prometheus.MustNewConstMetric(descHTTPRefused, counter, float64(ln.refused.Load()), ln.addr)
	}
	for _, w := range snap.Workers {
		ch <- prometheus.MustNewConstMetric(descRestarts, counter, float64(w.Restarts), strconv.Itoa(w.Slot))
	}
	for _, r := range c.s.backend.Resolvers() {
		failing := 0.0
		if r.Error != "" {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(descResolved, gauge, float64(len(r.Answer)), r.Entry)
		ch <- prometheus.MustNewConstMetric(descFailing, gauge, failing, r.Entry)
	}
}

// metricsHandler is /metrics.
func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	// The master's own runtime (go_goroutines, go_memstats_*) and process
	// (process_open_fds, ...) metrics: leaks show there first.
	reg.MustRegister(collector{s: s}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// histogram reads one of a server slot's latency histograms as
// Prometheus's cumulative buckets, in seconds.
func histogram(d *prometheus.Desc, h *shared.Histogram, labels []string) prometheus.Metric {
	counts, total := h.Counts()
	buckets := make(map[float64]uint64, len(shared.HistBounds))
	var cum uint64
	for i, b := range shared.HistBounds {
		cum += counts[i]
		buckets[b.Seconds()] = cum
	}
	return prometheus.MustNewConstHistogram(d, total, float64(h.Sum.Load())/1e9, buckets, labels...)
}
