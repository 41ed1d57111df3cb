package worker

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dial opens a non-blocking client socket to the harness's listener and
// steps the loop until the worker has its session.
func (h *harness) dial() (int, *session) {
	h.t.Helper()
	cfd := rawSocket(h.t)
	if err := unix.Connect(cfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: h.port}); err != nil {
		h.t.Fatal(err)
	}
	unix.SetNonblock(cfd, true)
	n := len(h.w.live)
	h.until("the session", func() bool { return len(h.w.live) > n })
	return cfd, h.w.live[len(h.w.live)-1]
}

// backend steps the loop until the session is established and returns the
// backend's end of it.
func (h *harness) backend(s *session) int {
	h.t.Helper()
	h.until("the backend connection", func() bool { return s.state == stateEstablished })
	afd, _, err := unix.Accept4(h.bfd, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { unix.Close(afd) })
	return afd
}

const acceptV1 = `{ address = "127.0.0.1:%d", accept_proxy = "any", proxy_sources = ["127.0.0.0/8"] }`

// TestAcceptProxyByteByByte: a PROXY v2 header with a TLV, written one byte
// per loop turn, is consumed; the client becomes the header's source; the
// bytes after it reach the server behind g6's own v2 header, which carries
// the original destination and the TLV.
func TestAcceptProxyByteByByte(t *testing.T) {
	h := newHarness(t, harnessOpts{listen: acceptV1, rule: `proxy_protocol = "v2"`})
	src, dst := netip.MustParseAddrPort("192.0.2.7:51234"), netip.MustParseAddrPort("198.51.100.1:443")
	tlv := []byte{0xe0, 0, 3, 'a', 'b', 'c'}
	in := append(proxyHeader(make([]byte, 0, proxyHeaderMax), "v2", src, dst, tlv, nil), "hello"...)
	cfd, s := h.dial()
	for i := range in {
		h.write(cfd, in[i:i+1])
		h.w.step(1)
		if i < 15 && s.state != stateInspecting {
			t.Fatalf("state %d after %d bytes of the header", s.state, i+1)
		}
	}
	afd := h.backend(s)
	want := append(proxyHeader(make([]byte, 0, proxyHeaderMax), "v2", src, dst, tlv, nil), "hello"...)
	if got := h.read(afd, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("server got\n %q\nwant\n %q", got, want)
	}
	if s.peer != src || s.inspection.via.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("session peer %v via %v", s.peer, s.inspection.via)
	}
	h.write(cfd, []byte(" world"))
	if got := h.read(afd, 6); string(got) != " world" {
		t.Fatalf("then %q", got)
	}
	h.write(afd, []byte("back"))
	if got := h.read(cfd, 4); string(got) != "back" {
		t.Fatalf("client got %q", got)
	}
}

// TestAcceptProxyRefusals: what is not a header closes the connection and
// counts it; a LOCAL header keeps the real peer.
func TestAcceptProxyRefusals(t *testing.T) {
	h := newHarness(t, harnessOpts{listen: acceptV1})
	cfd, s := h.dial()
	h.write(cfd, []byte("GET / HTTP/1.0\r\n\r\n"))
	h.readEOF(cfd)
	if n := h.w.rules[0].slot.BadProxy.Load(); n != 1 || s.state != stateFree && s.reason != endBadProxy {
		t.Fatalf("bad_proxy %d, session %d %q", n, s.state, s.reason)
	}

	local := []byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00ping")
	cfd, s = h.dial()
	h.write(cfd, local)
	afd := h.backend(s)
	if got := h.read(afd, 4); string(got) != "ping" {
		t.Fatalf("after LOCAL the server got %q", got)
	}
	if s.peer.Addr() != netip.MustParseAddr("127.0.0.1") || s.inspection.via.IsValid() {
		t.Fatalf("LOCAL: peer %v via %v", s.peer, s.inspection.via)
	}
}

// TestAcceptProxyUntrusted: a peer outside proxy_sources is closed at once.
func TestAcceptProxyUntrusted(t *testing.T) {
	h := newHarness(t, harnessOpts{listen: `{ address = "127.0.0.1:%d", accept_proxy = "v1", proxy_sources = ["10.0.0.0/8"] }`})
	cfd := rawSocket(t)
	if err := unix.Connect(cfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: h.port}); err != nil {
		t.Fatal(err)
	}
	unix.SetNonblock(cfd, true)
	h.readEOF(cfd)
	if n := h.w.rules[0].slot.ProxyUntrusted.Load(); n != 1 || len(h.w.live) != 0 {
		t.Fatalf("proxy_untrusted %d, %d sessions", n, len(h.w.live))
	}
}

// TestProxyHeaderTLVs: g6's v2 header carries what it received, less
// CRC32C and NOOP, with the length set for them.
func TestProxyHeaderTLVs(t *testing.T) {
	src, dst := netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2")
	tlvs := []byte{0x04, 0, 1, 0, 0x01, 0, 2, 'h', '2', 0x03, 0, 4, 1, 2, 3, 4}
	got := proxyHeader(make([]byte, 0, proxyHeaderMax), "v2", src, dst, tlvs, nil)
	if n := binary.BigEndian.Uint16(got[14:16]); int(n) != len(got)-16 || !bytes.HasSuffix(got, []byte{0x01, 0, 2, 'h', '2'}) || len(got) != 16+12+5 {
		t.Fatalf("header %q (length field %d)", got, n)
	}
}

// TestFastPathSessionSize: what sessions on inspected addresses keep is
// not in the session itself, so the fast path's sessions stay in the
// 448-byte size class they had before (a session was 440 bytes).
func TestFastPathSessionSize(t *testing.T) {
	if n := unsafe.Sizeof(session{}); n > 448 {
		t.Fatalf("a session is %d bytes", n)
	}
}
