package worker

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"unsafe"

	"g6/inspect"

	"golang.org/x/sys/unix"
)

// PROXY protocol (haproxy.org/download/2.6/doc/proxy-protocol.txt): the
// header goes to the server before any byte of the client, so the server
// sees the real client address. It is written into the server endpoint the
// moment the connection is up; what does not fit waits in pend, ahead of
// the client's bytes, and a direction only switches to splice with pend
// empty, so the header always comes first.

var proxyV2Sig = [12]byte{'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n'}

// proxyHeaderMax bounds the header g6 sends: addresses, the TLVs of the
// header it received, which are passed on in a v2 header, and the TLS g6
// terminated.
const proxyHeaderMax = 64 + inspect.MaxProxyV2 + inspect.MaxSSLTLV

// proxyHeader builds the header for a session into buf (cap proxyHeaderMax).
// ssl, when set, describes the TLS g6 terminated (v2 only).
func proxyHeader(buf []byte, version string, src, dst netip.AddrPort, tlvs []byte, ssl *inspect.SSL) []byte {
	b := buf[:0]
	v4 := src.Addr().Is4() && dst.Addr().Is4()
	if version == "v1" {
		fam := "TCP6 "
		if v4 {
			fam = "TCP4 "
		}
		b = append(b, "PROXY "...)
		b = append(b, fam...)
		b = src.Addr().AppendTo(b)
		b = append(b, ' ')
		b = dst.Addr().AppendTo(b)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(src.Port()), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(dst.Port()), 10)
		return append(b, '\r', '\n')
	}
	b = append(b, proxyV2Sig[:]...)
	b = append(b, 0x21) // version 2, PROXY command
	if v4 {
		b = append(b, 0x11, 0, 0) // TCP over IPv4; the length is set below
		s, d := src.Addr().As4(), dst.Addr().As4()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	} else {
		b = append(b, 0x21, 0, 0) // TCP over IPv6
		s, d := src.Addr().As16(), dst.Addr().As16()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	b = inspect.AppendTLVs(b, tlvs, ssl)
	binary.BigEndian.PutUint16(b[14:16], uint16(len(b)-16))
	return b
}

// localAddr is the address the client connected to.
func localAddr(fd int) netip.AddrPort {
	var rsa unix.RawSockaddrAny
	l := uint32(unix.SizeofSockaddrAny)
	_, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)))
	if e != 0 {
		return netip.AddrPort{}
	}
	return peerAddr(&rsa)
}
