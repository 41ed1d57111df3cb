package inspect

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strconv"
	"strings"
	"testing"
)

// crcTLV is a CRC32C TLV holding zeros, to be filled by withCRC.
const crcTLV = "\x03\x00\x04\x00\x00\x00\x00"

// withCRC fills the checksum of a header ending in crcTLV.
func withCRC(h string) string {
	b := []byte(h)
	binary.BigEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	return string(b)
}

// v2 builds a v2 header: command byte, family byte, then body.
func v2(cmd, fam byte, body string) string {
	n := len(body)
	return string(v2Sig) + string([]byte{cmd, fam, byte(n >> 8), byte(n)}) + body
}

const (
	v4Body  = "\x0a\x00\x00\x01\xc0\xa8\x00\x02\x30\x39\x01\xbb" // 10.0.0.1:12345 → 192.168.0.2:443
	v6Body  = "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x50\x1f\x90"
	tlvBody = "\x04\x00\x02hi" // a TLV g6 does not know (NOOP), 2 bytes
)

func TestParseProxy(t *testing.T) {
	tests := []struct {
		name, in, accept string
		want             string // "src dst local n" or an error fragment; "short" = ErrShort
	}{
		{"v1 tcp4", "PROXY TCP4 10.0.0.1 192.168.0.2 12345 443\r\nGET /", AcceptV1, "10.0.0.1:12345 192.168.0.2:443 false 43"},
		{"v1 tcp6", "PROXY TCP6 2001:db8::1 ::1 80 8080\r\n", AcceptAny, "[2001:db8::1]:80 [::1]:8080 false 36"},
		{"v1 unknown", "PROXY UNKNOWN\r\n", AcceptV1, "invalid AddrPort invalid AddrPort true 15"},
		{"v1 unknown with addresses", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", AcceptV1, "invalid AddrPort invalid AddrPort true 59"},
		{"v1 partial", "PROXY TCP4 10.0.0.1 19", AcceptV1, "short"},
		{"v1 prefix", "PRO", AcceptAny, "short"},
		{"empty", "", AcceptAny, "short"},
		{"v1 family mismatch", "PROXY TCP4 ::1 ::1 1 2\r\n", AcceptV1, "not of the line's family"},
		{"v1 port leading zero", "PROXY TCP4 10.0.0.1 10.0.0.2 080 1\r\n", AcceptV1, `port "080"`},
		{"v1 port too big", "PROXY TCP4 10.0.0.1 10.0.0.2 65536 1\r\n", AcceptV1, `port "65536"`},
		{"v1 too few fields", "PROXY TCP4 10.0.0.1 10.0.0.2 1\r\n", AcceptV1, "want TCP4|TCP6"},
		{"v1 bad proto", "PROXY UDP4 10.0.0.1 10.0.0.2 1 2\r\n", AcceptV1, "want TCP4|TCP6"},
		{"v1 double space", "PROXY TCP4 10.0.0.1  10.0.0.2 1 2\r\n", AcceptV1, "want TCP4|TCP6"},
		{"v1 LF only", "PROXY TCP4 10.0.0.1 10.0.0.2 1 2\n", AcceptV1, "without CR"},
		{"v1 too long", "PROXY TCP4 " + strings.Repeat("1", 120), AcceptV1, "longer than 107"},
		{"v1 when only v2", "PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n", AcceptV2, "no PROXY v2 header"},
		{"no header", "GET / HTTP/1.1\r\n", AcceptAny, "no PROXY any header"},
		{"v2 tcp4", v2(0x21, 0x11, v4Body) + "payload", AcceptV2, "10.0.0.1:12345 192.168.0.2:443 false 28"},
		{"v2 tcp6", v2(0x21, 0x21, v6Body), AcceptAny, "[2001:db8::1]:80 [::1]:8080 false 52"},
		{"v2 tlv", v2(0x21, 0x11, v4Body+tlvBody), AcceptV2, "10.0.0.1:12345 192.168.0.2:443 false 33"},
		{"v2 local", v2(0x20, 0x00, ""), AcceptV2, "invalid AddrPort invalid AddrPort true 16"},
		{"v2 local with addresses", v2(0x20, 0x11, v4Body), AcceptV2, "invalid AddrPort invalid AddrPort true 28"},
		{"v2 local unknown family", v2(0x20, 0x31, "xyz"), AcceptV2, "invalid AddrPort invalid AddrPort true 19"},
		{"v2 unspec proxy", v2(0x21, 0x00, ""), AcceptV2, "invalid AddrPort invalid AddrPort true 16"},
		{"v2 partial signature", "\r\n\r\n\x00", AcceptV2, "short"},
		{"v2 partial header", v2(0x21, 0x11, v4Body)[:20], AcceptV2, "short"},
		{"v2 bad version", v2(0x31, 0x11, v4Body), AcceptV2, "version 3"},
		{"v2 bad command", v2(0x22, 0x11, v4Body), AcceptV2, "command 2"},
		{"v2 udp", v2(0x21, 0x12, v4Body), AcceptV2, "0x12 is not TCP"},
		{"v2 short addresses", v2(0x21, 0x21, v4Body), AcceptV2, "too short for its addresses"},
		{"v2 tlv overrun", v2(0x21, 0x11, v4Body+"\x04\x00\x09hi"), AcceptV2, "overruns"},
		{"v2 tlv cut", v2(0x21, 0x11, v4Body+"\x04\x00"), AcceptV2, "TLV cut short"},
		{"v2 too long", string(v2Sig) + "\x21\x11\xff\xff", AcceptV2, "max 4096"},
		{"v2 when only v1", v2(0x21, 0x11, v4Body), AcceptV1, "no PROXY v1 header"},
		{"v1 tcp6 mapped", "PROXY TCP6 ::ffff:10.0.0.1 ::1 80 8080\r\n", AcceptV1, "10.0.0.1:80 [::1]:8080 false 40"},
		{"v2 crc32c", withCRC(v2(0x21, 0x11, v4Body+tlvBody+crcTLV)), AcceptV2, "10.0.0.1:12345 192.168.0.2:443 false 40"},
		{"v2 crc32c wrong", v2(0x21, 0x11, v4Body+"\x03\x00\x04\x12\x34\x56\x78"), AcceptV2, "CRC32C is 12345678"},
		{"v2 crc32c short", v2(0x21, 0x11, v4Body+"\x03\x00\x02\x12\x34"), AcceptV2, "CRC32C TLV of 2 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, n, err := ParseProxy([]byte(tt.in), tt.accept)
			var got string
			switch {
			case errors.Is(err, ErrShort):
				got = "short"
			case err != nil:
				got = err.Error()
				if !strings.Contains(got, tt.want) || tt.want == "" {
					t.Fatalf("error %q, want it to say %q", got, tt.want)
				}
				return
			default:
				got = p.Src.String() + " " + p.Dst.String() + " " + strconv.FormatBool(p.Local) + " " + strconv.Itoa(n)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	p, _, _ := ParseProxy([]byte(v2(0x21, 0x11, v4Body+tlvBody)), AcceptV2)
	if string(p.TLVs) != tlvBody {
		t.Fatalf("TLVs %q, want %q", p.TLVs, tlvBody)
	}
}

func TestAppendTLVs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"\x01\x00\x02h2", "\x01\x00\x02h2"}, // ALPN: passed on
		{"\x04\x00\x02hi\x02\x00\x03a.b", "\x02\x00\x03a.b"},                     // NOOP dropped, AUTHORITY kept
		{crcTLV + "\xe0\x00\x01x", "\xe0\x00\x01x"},                              // CRC32C dropped, a custom type kept
		{"\x20\x00\x05\x01\x00\x00\x00\x00", "\x20\x00\x05\x01\x00\x00\x00\x00"}, // SSL
	}
	for _, tt := range tests {
		if got := string(AppendTLVs([]byte("hdr"), []byte(tt.in), nil)); got != "hdr"+tt.want {
			t.Errorf("AppendTLVs(%q) = %q, want %q", tt.in, got, "hdr"+tt.want)
		}
	}
}

func FuzzProxy(f *testing.F) {
	f.Add([]byte("PROXY TCP4 10.0.0.1 192.168.0.2 12345 443\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 ::1 80 8080\r\n"))
	f.Add([]byte(v2(0x21, 0x11, v4Body+tlvBody)))
	f.Add([]byte(v2(0x21, 0x21, v6Body)))
	f.Add([]byte(v2(0x20, 0x00, "")))
	f.Add([]byte(withCRC(v2(0x21, 0x11, v4Body+crcTLV))))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, accept := range []string{AcceptV1, AcceptV2, AcceptAny} {
			p, n, err := ParseProxy(b, accept)
			if err != nil {
				continue
			}
			if n <= 0 || n > len(b) {
				t.Fatalf("length %d of %d bytes", n, len(b))
			}
			if !p.Local && (!p.Src.IsValid() || !p.Dst.IsValid()) {
				t.Fatalf("a PROXY header without addresses: %+v", p)
			}
			if out := AppendTLVs(nil, p.TLVs, nil); len(out) > len(p.TLVs) {
				t.Fatalf("AppendTLVs grew %q to %q", p.TLVs, out)
			}
			// Whatever follows a complete header does not change it.
			q, m, err := ParseProxy(append(b[:n:n], "tail"...), accept)
			if err != nil || m != n || q.Src != p.Src || q.Local != p.Local {
				t.Fatalf("the header with bytes after it: %+v %d %v, alone: %+v %d", q, m, err, p, n)
			}
			// Every strict prefix is short or wrong, never a different header.
			if _, m, err := ParseProxy(b[:n-1], accept); err == nil {
				t.Fatalf("a prefix of %d bytes parsed as a %d-byte header", n-1, m)
			}
		}
	})
}
