package resolve

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestServers(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name string
		in   []Address
		srv  bool
		want string
	}{
		{"a records keep no weight", []Address{{Addr: ap("10.0.0.1:80")}, {Addr: ap("10.0.0.2:80")}}, false,
			"[{10.0.0.1:80 0 false} {10.0.0.2:80 0 false}]"},
		{"srv weights as they are", []Address{{Addr: ap("10.0.0.1:80"), Priority: 10, Weight: 1}, {Addr: ap("10.0.0.2:80"), Priority: 10, Weight: 3}}, true,
			"[{10.0.0.1:80 1 false} {10.0.0.2:80 3 false}]"},
		{"higher priorities are backups", []Address{{Addr: ap("10.0.0.3:80"), Priority: 20, Weight: 5}, {Addr: ap("10.0.0.1:80"), Priority: 10, Weight: 1}, {Addr: ap("10.0.0.4:80"), Priority: 30}}, true,
			"[{10.0.0.1:80 1 false} {10.0.0.3:80 5 true} {10.0.0.4:80 1 true}]"},
		{"large weights scaled", []Address{{Addr: ap("10.0.0.1:80"), Weight: 1000}, {Addr: ap("10.0.0.2:80"), Weight: 4000}, {Addr: ap("10.0.0.3:80"), Weight: 1}}, true,
			"[{10.0.0.1:80 64 false} {10.0.0.2:80 256 false} {10.0.0.3:80 1 false}]"},
		{"an address twice: the lower priority wins", []Address{{Addr: ap("10.0.0.1:80"), Priority: 20, Weight: 9}, {Addr: ap("10.0.0.1:80"), Priority: 10, Weight: 2}}, true,
			"[{10.0.0.1:80 2 false}]"},
		{"nothing", nil, true, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fmt.Sprint(Servers(tt.in, tt.srv)); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
