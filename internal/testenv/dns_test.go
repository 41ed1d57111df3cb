package testenv

import (
	"strings"
	"testing"
	"time"
)

// TestDNS: the harness's dnsmasq answers A, AAAA and SRV from what the
// test wrote, and rereads hosts on SetHosts.
func TestDNS(t *testing.T) {
	d := StartDNS(t)
	d.SetHosts("127.0.0.11 db.internal", "127.0.0.12 db.internal", "::1 v6.internal")
	d.SetSRV("_pg._tcp.db.internal,db.internal,5432,10,1")
	if got := d.Dig("db.internal", "A"); !strings.Contains(got, "127.0.0.11") || !strings.Contains(got, "127.0.0.12") {
		t.Fatalf("A: %q", got)
	}
	if got := d.Dig("v6.internal", "AAAA"); got != "::1" {
		t.Fatalf("AAAA: %q", got)
	}
	if got := d.Dig("_pg._tcp.db.internal", "SRV"); got != "10 1 5432 db.internal." {
		t.Fatalf("SRV: %q", got)
	}
	d.SetHosts("127.0.0.13 db.internal")
	for i := 0; d.Dig("db.internal", "A") != "127.0.0.13"; i++ {
		if i == 50 {
			t.Fatalf("after SetHosts: %q", d.Dig("db.internal", "A"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
