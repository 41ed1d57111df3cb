package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

func sumOf(f *dto.MetricFamily, label, value string) float64 {
	total := 0.0
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		match := label == ""
		for _, l := range m.Label {
			if l.GetName() == label && l.GetValue() == value {
				match = true
			}
		}
		if !match {
			continue
		}
		if m.Counter != nil {
			total += m.Counter.GetValue()
		} else if m.Gauge != nil {
			total += m.Gauge.GetValue()
		}
	}
	return total
}

// TestMetrics: /metrics parses with the Prometheus text parser and its
// counters match the traffic sent.
func TestMetrics(t *testing.T) {
	s1, s2, dead := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", s1, s2)
	front, metrics := testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[global]
metrics = %q
moratorium = "1h"

[[rule]]
id = "m"
algorithm = "RR"
clients = ["127.0.0.1:*"]
listen = [%q]
servers = [%q, %q, %q]
`, metrics, front, dead, s1, s2)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	before := sumOf(scrape(t, metrics)["g6_server_connections_total"], "", "")
	countGreetings(t, front, 20)
	testenv.Hold(front, "127.0.0.2") // matches no client pattern
	fams := scrape(t, metrics)
	if got := sumOf(fams["g6_server_connections_total"], "", "") - before; got != 20 {
		t.Errorf("g6_server_connections_total grew by %v, want 20", got)
	}
	if got := sumOf(fams["g6_server_connect_failures_total"], "server", dead); got != 1 {
		t.Errorf("connect failures of the dead server: %v, want 1", got)
	}
	if got := sumOf(fams["g6_server_up"], "server", dead); got != 0 {
		t.Errorf("g6_server_up of the dead server: %v, want 0", got)
	}
	if got := sumOf(fams["g6_rule_refused_total"], "reason", "no_match"); got != 1 {
		t.Errorf("refused no_match: %v, want 1", got)
	}
	if fams["g6_build_info"] == nil || sumOf(fams["g6_workers"], "", "") != 2 {
		t.Errorf("build info or worker count missing")
	}
}

// TestLiveByteCounts: a session's bytes reach the server's byte totals
// while it is still open (workers add them every 250 ms), in both
// directions, and are not counted again when it ends.
func TestLiveByteCounts(t *testing.T) {
	back, front, metrics := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "echo", back)
	cfg := fmt.Sprintf("[global]\nmetrics = %q\n\n[[rule]]\nid = \"b\"\nalgorithm = \"RR\"\nclients = [\"*:*\"]\nlisten = [%q]\nservers = [%q]\n", metrics, front, back)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 1 << 20
	go c.Write(make([]byte, n))
	if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
		t.Fatalf("echo of 1 MiB: %v", err)
	}
	counts := func() (sent, recv float64) {
		fams := scrape(t, metrics)
		return sumOf(fams["g6_server_sent_bytes_total"], "server", back), sumOf(fams["g6_server_received_bytes_total"], "server", back)
	}
	within(t, 2*time.Second, "the open session's bytes in the totals", func() error {
		if sent, recv := counts(); sent != n || recv != n {
			return fmt.Errorf("sent %v, received %v, want %d each", sent, recv, n)
		}
		return nil
	})
	c.Close()
	time.Sleep(500 * time.Millisecond)
	if sent, recv := counts(); sent != n || recv != n {
		t.Errorf("after the session ended: sent %v, received %v, want %d each", sent, recv, n)
	}
}

// TestMetricsSurviveUpgrade: the new master binds the metrics address while
// the old one still holds it (SO_REUSEPORT), so /metrics is served by the
// new master once the old one is gone.
func TestMetricsSurviveUpgrade(t *testing.T) {
	s1 := testenv.Addr(t)
	testenv.Backend(t, "greet", s1)
	front, metrics := testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[global]
metrics = %q

[[rule]]
id = "m"
algorithm = "RR"
clients = ["127.0.0.1:*"]
listen = [%q]
servers = [%q]
`, metrics, front, s1)
	m := testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	scrape(t, metrics)
	old := m.Pid()
	syscall.Kill(old, syscall.SIGUSR2)
	m.WaitCount(t, "upgrade complete", 1, 20*time.Second)
	if code := m.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("old master exited %d", code)
	}
	if strings.Contains(m.Log(), "metrics endpoint not served") {
		t.Fatalf("the new master could not bind %s:\n%s", metrics, m.Log())
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if fams := scrape(t, metrics); fams["g6_build_info"] == nil {
		t.Fatal("no g6_build_info after the upgrade")
	}
}
