package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"g6/conf"
	"g6/internal/testenv"
)

// TestUpstreamSamplesServe: each of G6's sample configs (non-loopback
// addresses rewritten to 127.0.0.1) loads in g6 master as it is, and show
// rules lists the same rules, clients, listens and servers as the file.
func TestUpstreamSamplesServe(t *testing.T) {
	for _, name := range []string{"test.conf", "test.conf.172", "test.conf.192", "press.conf"} {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(testenv.Root(), "conf/testdata/upstream", name))
			if err != nil {
				t.Fatal(err)
			}
			text := string(src)
			for _, ip := range []string{"192.168.6.17", "192.168.6.111", "172.16.69.110"} {
				text = strings.ReplaceAll(text, ip, "127.0.0.1")
			}
			path := filepath.Join(t.TempDir(), name)
			os.WriteFile(path, []byte(text), 0o644)
			cfg, err := conf.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			adminAddr := cfg.Admin.Listen[0].Address
			m := testenv.StartMaster(t, path, []string{"-w", "1"})
			got := adminSend(t, adminAddr, "show rules\n")
			for _, r := range cfg.Rules {
				var want []string
				for _, c := range r.Clients {
					want = append(want, c.Pattern.Text)
				}
				line := r.ID + " | " + r.Algorithm + " | " + strings.Join(want, " ") + " - "
				if !strings.Contains(got, line) {
					t.Errorf("show rules lacks %q:\n%s", line, got)
				}
				for _, s := range r.Servers {
					if !strings.Contains(got, " "+s.Address+"(") {
						t.Errorf("show rules lacks server %s of %s", s.Address, r.ID)
					}
				}
			}
			_ = m
		})
	}
}
