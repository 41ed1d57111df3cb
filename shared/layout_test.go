package shared

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"g6/conf"
)

var update = flag.Bool("update", false, "rewrite testdata/layout.golden (only together with a Version bump)")

// layoutText describes every byte position other processes rely on: each
// struct's size and field offsets, and where each section of a region
// starts.
func layoutText(t *testing.T) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %d\nmax_workers %d\nflags disabled=%d check_down=%d draining=%d\nsettings backup=%d proxy_v1=%d proxy_v2=%d quickack=%d transparent=%d\nfull_share %d\n",
		Version, MaxWorkers, FlagDisabled, FlagCheckDown, FlagDraining, SetBackup, SetProxyV1, SetProxyV2, SetQuickAck, SetTransparent, FullShare)
	for _, v := range []any{header{}, RuleSlot{}, ServerSlot{}, ClientSlot{}, ipEntry{}} {
		typ := reflect.TypeOf(v)
		fmt.Fprintf(&b, "%s size %d\n", typ.Name(), typ.Size())
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			fmt.Fprintf(&b, "  %-16s offset %4d size %4d\n", f.Name, f.Offset, f.Type.Size())
		}
	}
	r, err := Create(Sizes{Rules: 2, Servers: 3, Clients: 4, IPs: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	at := func(p unsafe.Pointer) uintptr { return uintptr(p) - uintptr(unsafe.Pointer(&r.mem[0])) }
	fmt.Fprintf(&b, "region 2 rules, 3 servers, 4 clients, 5 ips: total %d\n", len(r.mem))
	fmt.Fprintf(&b, "  rule 1 at %d\n  server 0 at %d\n  client 0 at %d\n  ip 0 at %d\n",
		at(unsafe.Pointer(r.Rule(1))), at(unsafe.Pointer(r.Server(0))), at(unsafe.Pointer(r.Client(0))), at(unsafe.Pointer(r.ip(0))))
	return b.String()
}

// TestLayoutGolden fails on any change to the region's layout. A change
// must bump Version (so a worker refuses a region of the other layout, and
// an upgrade hands over a fresh one); -update rewrites the golden file only
// then.
func TestLayoutGolden(t *testing.T) {
	const path = "testdata/layout.golden"
	got := layoutText(t)
	want, err := os.ReadFile(path)
	if err != nil && !*update {
		t.Fatal(err)
	}
	if got == string(want) {
		return
	}
	var goldenVersion int
	fmt.Sscanf(string(want), "version %d", &goldenVersion)
	switch {
	case goldenVersion == Version:
		t.Fatalf("the shared layout changed but Version is still %d: bump it, then go test ./shared -run LayoutGolden -update\ngot:\n%s\nwant:\n%s", Version, got, want)
	case *update:
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("Version is %d, the golden file has %d: go test ./shared -run LayoutGolden -update", Version, goldenVersion)
	}
}

// TestWorkerSlotsForTwoMasters: an upgrade runs two masters' workers at
// once, each in a counter slot of its own.
func TestWorkerSlotsForTwoMasters(t *testing.T) {
	if MaxWorkers < 2*conf.MaxWorkers {
		t.Fatalf("%d counter slots for two masters of %d workers", MaxWorkers, conf.MaxWorkers)
	}
}
