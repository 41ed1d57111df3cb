package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"strconv"
)

// ErrShort says b is the start of a header that is not complete yet.
var ErrShort = errors.New("inspect: need more bytes")

// Versions a listen address may accept (accept_proxy).
const (
	AcceptV1  = "v1"
	AcceptV2  = "v2"
	AcceptAny = "any"
)

// Bounds: a v1 line is at most 107 bytes (the spec's own bound); a v2
// header is bounded here, far above what any sender's TLVs need.
const (
	maxProxyV1 = 107
	MaxProxyV2 = 4096
)

// v2Sig starts every v2 header.
var v2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// Proxy is a parsed PROXY header.
type Proxy struct {
	Version int // 1 or 2
	// Local: the sender speaks for itself (v2 LOCAL, v1 UNKNOWN, v2
	// UNSPEC): the connection's own addresses stand.
	Local    bool
	Src, Dst netip.AddrPort
	TLVs     []byte // v2 only: the TLVs as sent, a subslice of the input
}

// ParseProxy reads a PROXY header of a version accept allows (AcceptV1,
// AcceptV2, AcceptAny) from the start of b and returns it with its length.
func ParseProxy(b []byte, accept string) (Proxy, int, error) {
	v1 := accept == AcceptV1 || accept == AcceptAny
	v2 := accept == AcceptV2 || accept == AcceptAny
	switch {
	case v2 && hasPrefix(b, v2Sig):
		if len(b) < len(v2Sig) {
			return Proxy{}, 0, ErrShort
		}
		return parseV2(b)
	case v1 && hasPrefix(b, []byte("PROXY ")):
		if len(b) < 6 {
			return Proxy{}, 0, ErrShort
		}
		return parseV1(b)
	case len(b) == 0:
		return Proxy{}, 0, ErrShort
	}
	return Proxy{}, 0, fmt.Errorf("inspect: no PROXY %s header", accept)
}

// hasPrefix reports whether b and p agree on their common length, so a
// short b that may still become p counts.
func hasPrefix(b, p []byte) bool {
	n := min(len(b), len(p))
	return n > 0 && bytes.Equal(b[:n], p[:n])
}

// parseV1 reads "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or
// "PROXY UNKNOWN ...\r\n".
func parseV1(b []byte) (Proxy, int, error) {
	end := bytes.Index(b[:min(len(b), maxProxyV1)], []byte("\r\n"))
	if end < 0 {
		if len(b) >= maxProxyV1 {
			return Proxy{}, 0, errors.New("inspect: PROXY v1 line longer than 107 bytes")
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return Proxy{}, 0, errors.New("inspect: PROXY v1 line ends without CR")
		}
		return Proxy{}, 0, ErrShort
	}
	line := b[len("PROXY "):end]
	p := Proxy{Version: 1}
	if bytes.HasPrefix(line, []byte("UNKNOWN")) && (len(line) == 7 || line[7] == ' ') {
		p.Local = true
		return p, end + 2, nil
	}
	f := bytes.Split(line, []byte(" "))
	if len(f) != 5 || string(f[0]) != "TCP4" && string(f[0]) != "TCP6" {
		return Proxy{}, 0, fmt.Errorf("inspect: PROXY v1 line %q: want TCP4|TCP6 SRC DST SPORT DPORT", line)
	}
	src, err1 := v1Addr(f[1], f[3], string(f[0]) == "TCP4")
	dst, err2 := v1Addr(f[2], f[4], string(f[0]) == "TCP4")
	if err := errors.Join(err1, err2); err != nil {
		return Proxy{}, 0, fmt.Errorf("inspect: PROXY v1 line %q: %w", line, err)
	}
	p.Src, p.Dst = src, dst
	return p, end + 2, nil
}

func v1Addr(ip, port []byte, v4 bool) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(string(ip))
	switch {
	case err != nil:
		return netip.AddrPort{}, err
	case a.Is4() != v4 || a.Zone() != "":
		return netip.AddrPort{}, fmt.Errorf("address %s is not of the line's family", a)
	}
	// The spec: decimal, no leading zero, 0-65535.
	n, err := strconv.ParseUint(string(port), 10, 16)
	if err != nil || len(port) > 1 && port[0] == '0' {
		return netip.AddrPort{}, fmt.Errorf("port %q is not 0-65535", port)
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(n)), nil
}

// parseV2 reads the binary header: signature, version and command,
// family and protocol, length, addresses, TLVs.
func parseV2(b []byte) (Proxy, int, error) {
	if len(b) < 16 {
		return Proxy{}, 0, ErrShort
	}
	verCmd, fam := b[12], b[13]
	n := 16 + int(binary.BigEndian.Uint16(b[14:16]))
	switch {
	case verCmd>>4 != 2:
		return Proxy{}, 0, fmt.Errorf("inspect: PROXY v2 version %d", verCmd>>4)
	case verCmd&0xf > 1:
		return Proxy{}, 0, fmt.Errorf("inspect: PROXY v2 command %d", verCmd&0xf)
	case n > MaxProxyV2:
		return Proxy{}, 0, fmt.Errorf("inspect: PROXY v2 header of %d bytes (max %d)", n, MaxProxyV2)
	case len(b) < n:
		return Proxy{}, 0, ErrShort
	}
	p := Proxy{Version: 2, Local: verCmd&0xf == 0}
	body := b[16:n]
	var alen int
	switch fam {
	case 0x11: // TCP over IPv4
		alen = 12
	case 0x21: // TCP over IPv6
		alen = 36
	case 0x00: // UNSPEC: no addresses
		p.Local = true
	default:
		if !p.Local {
			return Proxy{}, 0, fmt.Errorf("inspect: PROXY v2 family/protocol 0x%02x is not TCP", fam)
		}
		return p, n, nil // LOCAL: whatever follows is not ours to read
	}
	if len(body) < alen {
		return Proxy{}, 0, fmt.Errorf("inspect: PROXY v2 header too short for its addresses (%d < %d bytes)", len(body), alen)
	}
	if !p.Local {
		a := body[:alen]
		half := (alen - 4) / 2
		src, _ := netip.AddrFromSlice(a[:half])
		dst, _ := netip.AddrFromSlice(a[half : 2*half])
		p.Src = netip.AddrPortFrom(src.Unmap(), binary.BigEndian.Uint16(a[2*half:]))
		p.Dst = netip.AddrPortFrom(dst.Unmap(), binary.BigEndian.Uint16(a[2*half+2:]))
	}
	body = body[alen:]
	if err := checkTLVs(b[:n], 16+alen); err != nil {
		return Proxy{}, 0, err
	}
	if len(body) > 0 {
		p.TLVs = body
	}
	return p, n, nil
}

// TLV types g6 reads (the spec, 2.2).
const (
	tlvCRC32C = 0x03
	tlvNoop   = 0x04
)

// checkTLVs checks that the TLVs of hdr, from offset at, tile their space
// exactly, and that a CRC32C TLV holds the header's checksum.
func checkTLVs(hdr []byte, at int) error {
	for b := hdr[at:]; len(b) > 0; {
		if len(b) < 3 {
			return errors.New("inspect: PROXY v2 TLV cut short")
		}
		l := 3 + int(binary.BigEndian.Uint16(b[1:3]))
		if l > len(b) {
			return fmt.Errorf("inspect: PROXY v2 TLV 0x%02x of %d bytes overruns the header", b[0], l-3)
		}
		if b[0] == tlvCRC32C {
			if l != 7 {
				return fmt.Errorf("inspect: PROXY v2 CRC32C TLV of %d bytes", l-3)
			}
			if err := checkCRC(hdr, len(hdr)-len(b)+3); err != nil {
				return err
			}
		}
		b = b[l:]
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkCRC compares the CRC32C at hdr[at:at+4] with the checksum of the
// whole header with those four bytes taken as zero.
func checkCRC(hdr []byte, at int) error {
	var zero [4]byte
	c := crc32.Update(0, castagnoli, hdr[:at])
	c = crc32.Update(c, castagnoli, zero[:])
	c = crc32.Update(c, castagnoli, hdr[at+4:])
	if want := binary.BigEndian.Uint32(hdr[at:]); c != want {
		return fmt.Errorf("inspect: PROXY v2 CRC32C is %08x, the header's checksum %08x", want, c)
	}
	return nil
}

// AppendTLVs appends the TLVs of a parsed header that a header g6 sends
// on should carry: all but CRC32C (its sum covers the addresses, which
// change) and NOOP (padding). With ssl, the TLS g6 terminated replaces
// any PP2_TYPE_SSL received.
func AppendTLVs(dst, tlvs []byte, ssl *SSL) []byte {
	for len(tlvs) >= 3 {
		l := min(3+int(binary.BigEndian.Uint16(tlvs[1:3])), len(tlvs))
		if t := tlvs[0]; t != tlvCRC32C && t != tlvNoop && (ssl == nil || t != tlvSSL) {
			dst = append(dst, tlvs[:l]...)
		}
		tlvs = tlvs[l:]
	}
	if ssl != nil {
		dst = AppendSSLTLV(dst, *ssl)
	}
	return dst
}
