package worker

import (
	"bytes"
	"net/netip"
	"testing"
)

// TestProxyHeaderBytes pins the exact bytes sent to a server
// (haproxy.org/download/2.6/doc/proxy-protocol.txt §2.1, §2.2).
func TestProxyHeaderBytes(t *testing.T) {
	sig := "\r\n\r\n\x00\r\nQUIT\n"
	tests := []struct {
		version, src, dst, want string
	}{
		{"v1", "192.0.2.7:51234", "127.0.0.1:8080", "PROXY TCP4 192.0.2.7 127.0.0.1 51234 8080\r\n"},
		{"v1", "[2001:db8::7]:51234", "[::1]:443", "PROXY TCP6 2001:db8::7 ::1 51234 443\r\n"},
		{"v1", "192.0.2.7:1", "[::1]:65535", "PROXY TCP6 192.0.2.7 ::1 1 65535\r\n"}, // mixed families: TCP6
		{"v2", "192.0.2.7:51234", "127.0.0.1:8080", sig +
			"\x21\x11\x00\x0c" + // v2 PROXY, TCP over IPv4, 12 bytes
			"\xc0\x00\x02\x07" + "\x7f\x00\x00\x01" + "\xc8\x22" + "\x1f\x90"},
		{"v2", "[2001:db8::7]:51234", "[::1]:443", sig +
			"\x21\x21\x00\x24" + // v2 PROXY, TCP over IPv6, 36 bytes
			"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07" +
			"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" +
			"\xc8\x22" + "\x01\xbb"},
		{"v2", "192.0.2.7:1", "[::1]:2", sig + "\x21\x21\x00\x24" +
			"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xc0\x00\x02\x07" +
			"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" +
			"\x00\x01" + "\x00\x02"},
	}
	for _, tt := range tests {
		var buf [proxyHeaderMax]byte
		got := proxyHeader(buf[:], tt.version, netip.MustParseAddrPort(tt.src), netip.MustParseAddrPort(tt.dst), nil, nil)
		if !bytes.Equal(got, []byte(tt.want)) {
			t.Errorf("%s %s → %s:\n got %q\nwant %q", tt.version, tt.src, tt.dst, got, tt.want)
		}
	}
}
