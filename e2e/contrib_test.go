package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"g6/internal/testenv"
)

// metricNames finds the g6 metric names a text uses, without the
// _bucket, _sum and _count of histograms.
func metricNames(text string) []string {
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bg6_[a-z0-9_]+`).FindAllString(text, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			m = strings.TrimSuffix(m, suffix)
		}
		seen[m] = true
	}
	var out []string
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// TestContribDashboardAndAlerts: the Grafana dashboard parses and, like
// the alert rules, names only metrics a running g6 exports; promtool
// accepts the alert rules.
func TestContribDashboardAndAlerts(t *testing.T) {
	root := testenv.Root()
	dash, err := os.ReadFile(filepath.Join(root, "contrib/grafana/g6.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(dash, &d); err != nil || len(d.Panels) == 0 {
		t.Fatalf("contrib/grafana/g6.json: %v (%d panels)", err, len(d.Panels))
	}
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	alerts := filepath.Join(root, "contrib/prometheus/g6-alerts.yml")
	rules, err := os.ReadFile(alerts)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := testenv.Run(t, 30*time.Second, "promtool", "check", "rules", alerts); err != nil {
		t.Fatalf("promtool check rules (Debian's prometheus package): %v\n%s", err, out)
	}
	if out, err := testenv.Run(t, 30*time.Second, "promtool", "test", "rules", filepath.Join(root, "contrib/prometheus/g6-alerts.test.yml")); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}

	// A g6 with traffic, so that every family has samples, and a TLS
	// address for the TLS families.
	back, front, tlsFront, metrics := testenv.Addr(t), testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", back)
	cert, key := newCA(t, "contrib").issue(t, "contrib.test", []string{"contrib.test"}, 30, false)
	cfg := fmt.Sprintf("[global]\nmetrics = %q\n\n[[rule]]\nid = \"r\"\nalgorithm = \"RR\"\nclients = [\"*:*\"]\nlisten = [%q, { address = %q, tls = { certificates = [{ cert = %q, key = %q }] } }]\nservers = [%q]\n",
		metrics, front, tlsFront, cert, key, back)
	testenv.StartMaster(t, testenv.WriteConfig(t, cfg), []string{"-w", "1"})
	if c, _, err := testenv.Hold(front, ""); err == nil {
		c.Close()
	}
	fams := scrape(t, metrics)
	for what, text := range map[string]string{"the dashboard": strings.Join(exprs, "\n"), "the alert rules": string(rules)} {
		names := metricNames(text)
		if len(names) == 0 {
			t.Errorf("%s names no g6 metric", what)
		}
		for _, n := range names {
			if fams[n] == nil {
				t.Errorf("%s uses %s, which g6 does not export", what, n)
			}
		}
	}
}
