package worker

import (
	"testing"
	"time"

	"g6/conf"
	"g6/pool"
	"g6/shared"
)

// tieredRule builds rule "t" from a published config: two primaries, one
// in slow start since now, and a backup.
func tieredRule(t *testing.T) (*rule, *shared.Region) {
	t.Helper()
	cfg, err := conf.ParseTOML("t.toml", []byte(`
[[rule]]
id = "t"
algorithm = "RR"
clients = ["*:*"]
listen = ["127.0.0.1:1"]
servers = ["127.0.0.1:10", { address = "127.0.0.1:11", slow_start = "1h" }, { address = "127.0.0.1:12", backup = true }]
`))
	if err != nil {
		t.Fatal(err)
	}
	region, err := shared.Create(shared.Sizes{Rules: 1, Servers: 8, Clients: 1, IPs: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { region.Close() })
	if err := pool.New(region, pool.State{}, true).Publish(cfg, []int{0}); err != nil {
		t.Fatal(err)
	}
	r, err := buildRule(&cfg.Rules[0], region, 0, []int{0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r, region
}

func TestRuleTiersAndSlowStart(t *testing.T) {
	r, _ := tieredRule(t)
	if len(r.servers) != 3 || r.primary.Len() != 2 || r.servers[2].text != "127.0.0.1:12" {
		t.Fatalf("servers %v, primaries %d", r.servers, r.primary.Len())
	}
	r.servers[1].slot.UpSince.Store(shared.Now()) // just came back: 5% share
	first := map[string]int{}
	var dst []int
	for i := 0; i < 1000; i++ {
		dst = r.order(shared.Now(), nil, dst)
		if len(dst) != 2 {
			t.Fatalf("order %v: primaries only", dst)
		}
		if b := r.backupOrder(shared.Now(), nil, r.servers, 2, dst); len(b) != 3 || b[2] != 2 {
			t.Fatalf("order with backups %v: the backup must come last", b)
		}
		first[r.servers[dst[0]].text]++
	}
	if n := first["127.0.0.1:11"]; n > 100 {
		t.Fatalf("a server in its first moment of slow start led %d of 1000 orders (RR share 500, ramp 5%%)", n)
	}
	r.servers[1].slot.UpSince.Store(shared.Now() - int64(time.Millisecond))
	r.servers[1].slot.SlowStart.Store(int64(time.Microsecond)) // ramp over
	first = map[string]int{}
	for i := 0; i < 1000; i++ {
		dst = r.order(shared.Now(), nil, dst)
		first[r.servers[dst[0]].text]++
	}
	if n := first["127.0.0.1:11"]; n < 450 || n > 550 {
		t.Fatalf("after the ramp: %v", first)
	}
	if a := testing.AllocsPerRun(100, func() {
		dst = r.backupOrder(shared.Now(), nil, r.servers, 2, r.order(shared.Now(), nil, dst))
	}); a != 0 {
		t.Fatalf("%.1f allocations per order", a)
	}
}

func TestRuleRefreshOnChange(t *testing.T) {
	r, region := tieredRule(t)
	before := r.servers
	r.refresh(region)
	if &r.servers[0] != &before[0] {
		t.Fatal("refresh rebuilt the list with no change")
	}
	region.Server(r.servers[0].slotIdx).Member.Store(0) // as a del server does
	region.Rule(0).Members.Add(1)
	r.refresh(region)
	if len(r.servers) != 2 || r.servers[0].text != "127.0.0.1:11" {
		t.Fatalf("after a removal: %v", r.servers)
	}
}
