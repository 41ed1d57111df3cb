package inspect

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// clientHello is the first flight crypto/tls sends for serverName and
// protos, read off a real loopback connection.
func clientHello(t testing.TB, serverName string, protos ...string) []byte {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		tc := tls.Client(c, &tls.Config{ServerName: serverName, NextProtos: protos, InsecureSkipVerify: serverName == ""})
		tc.SetDeadline(time.Now().Add(time.Second))
		tc.Handshake() // fails when the listener closes: only the hello matters
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		b = append(b, buf[:n]...)
		if _, herr := ParseClientHello(b); !errors.Is(herr, ErrShort) || err != nil {
			if err != nil && err != io.EOF {
				t.Fatalf("reading the hello: %v", err)
			}
			return b
		}
	}
}

// resplit cuts the handshake payload of a one-record hello into records of
// at most n bytes each.
func resplit(hello []byte, n int) []byte {
	payload := hello[5:]
	var out []byte
	for len(payload) > 0 {
		k := min(n, len(payload))
		out = append(out, 0x16, 3, 1, byte(k>>8), byte(k))
		out = append(out, payload[:k]...)
		payload = payload[k:]
	}
	return out
}

func TestParseClientHello(t *testing.T) {
	api := clientHello(t, "api.example.com", "h2", "http/1.1")
	bare := clientHello(t, "")
	tests := []struct {
		name string
		in   []byte
		want string // "SNI ALPN,..." or an error fragment; "short" = ErrShort
	}{
		{"sni and alpn", api, "api.example.com h2,http/1.1"},
		{"no sni, no alpn", bare, " "},
		{"records of 1 byte", resplit(api, 1), "api.example.com h2,http/1.1"},
		{"records of 100 bytes", resplit(api, 100), "api.example.com h2,http/1.1"},
		{"cut in the record header", api[:3], "short"},
		{"cut in the hello", api[:len(api)/2], "short"},
		{"cut after a whole small record", resplit(api, 50)[:55], "short"},
		{"one byte", []byte{0x16}, "short"},
		{"plain http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "not a TLS ClientHello (record type 0x47"},
		{"plain, one byte", []byte("G"), "not a TLS ClientHello (first byte 0x47)"},
		{"ssh banner", []byte("SSH-2.0-OpenSSH_9.6\r\n"), "not a TLS ClientHello"},
		{"tls alert record", []byte("\x15\x03\x01\x00\x02\x02\x28"), "record type 0x15"},
		{"server hello", []byte("\x16\x03\x03\x00\x04\x02\x00\x00\x00"), "handshake type 2"},
		{"empty record", []byte("\x16\x03\x01\x00\x00"), "TLS record of 0 bytes"},
		{"huge record", []byte("\x16\x03\x01\x50\x00"), "TLS record of 20480 bytes"},
		{"hello over 16 KiB", []byte("\x16\x03\x01\x00\x04\x01\x00\x50\x00"), "max 16384"},
		{"record of another type inside", append(resplit(api, 50)[:55], "\x17\x03\x03\x00\x01x"...), "cut by a record of type 0x17"},
		{"empty hello body", []byte("\x16\x03\x01\x00\x04\x01\x00\x00\x00"), "malformed ClientHello"},
		{"hello cut inside its fields", []byte("\x16\x03\x01\x00\x2a\x01\x00\x00\x26\x03\x03" + strings.Repeat("r", 32) + "\x00\x00\x00\x01\x00"), "malformed ClientHello"},
		{"minimal hello", []byte("\x16\x03\x01\x00\x2d\x01\x00\x00\x29\x03\x03" + strings.Repeat("r", 32) + "\x00\x00\x02\x13\x01\x01\x00"), " "},
		{"trailing bytes after extensions", []byte("\x16\x03\x01\x00\x30\x01\x00\x00\x2c\x03\x03" + strings.Repeat("r", 32) + "\x00\x00\x02\x13\x01\x01\x00\x00\x00\x00"), "malformed ClientHello extensions"},
		{"sni", []byte("\x16\x03\x01\x00\x3b\x01\x00\x00\x37\x03\x03" + strings.Repeat("r", 32) + "\x00\x00\x02\x13\x01\x01\x00\x00\x0c\x00\x00\x00\x08\x00\x06\x00\x00\x03a.b"), "a.b "},
		{"sni list empty", []byte("\x16\x03\x01\x00\x35\x01\x00\x00\x31\x03\x03" + strings.Repeat("r", 32) + "\x00\x00\x02\x13\x01\x01\x00\x00\x06\x00\x00\x00\x02\x00\x00"), "malformed server_name"},
		{"sni longer than its list", []byte("\x16\x03\x01\x00\x3b\x01\x00\x00\x37\x03\x03" + strings.Repeat("r", 32) + "\x00\x00\x02\x13\x01\x01\x00\x00\x0c\x00\x00\x00\x08\x00\x06\x00\x00\x09a.b"), "malformed server_name"},
		{"alpn", []byte("\x16\x03\x01\x00\x3a\x01\x00\x00\x36\x03\x03" + strings.Repeat("r", 32) + "\x00\x00\x02\x13\x01\x01\x00\x00\x0b\x00\x10\x00\x07\x00\x05\x02h2\x01x"), " h2,x"},
		{"alpn empty name", []byte("\x16\x03\x01\x00\x39\x01\x00\x00\x35\x03\x03" + strings.Repeat("r", 32) + "\x00\x00\x02\x13\x01\x01\x00\x00\x0a\x00\x10\x00\x06\x00\x04\x02h2\x00"), "malformed ALPN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseClientHello(tt.in)
			var got string
			switch {
			case errors.Is(err, ErrShort):
				got = "short"
			case err != nil:
				if got = err.Error(); !strings.Contains(got, tt.want) || tt.want == "" || tt.want == "short" {
					t.Fatalf("error %q, want it to say %q", got, tt.want)
				}
				return
			default:
				got = h.SNI + " " + strings.Join(h.ALPN, ",")
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzClientHello(f *testing.F) {
	// Seeds must be the same in every fuzz process, so the real hellos
	// (crypto/tls's, whose random differs each time) are in
	// testdata/fuzz/FuzzClientHello, captured once by clientHello.
	f.Add([]byte("\x16\x03\x01\x00\x3b\x01\x00\x00\x37\x03\x03" + strings.Repeat("r", 32) + "\x00\x00\x02\x13\x01\x01\x00\x00\x0c\x00\x00\x00\x08\x00\x06\x00\x00\x03a.b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseClientHello(b)
		if err != nil {
			return
		}
		// A complete hello stays the same with more bytes after it.
		h2, err := ParseClientHello(append(b[:len(b):len(b)], 0x17, 3, 3, 0, 1, 'x'))
		if err != nil || h2.SNI != h.SNI || strings.Join(h2.ALPN, ",") != strings.Join(h.ALPN, ",") {
			t.Fatalf("with bytes after it: %+v %v, alone %+v", h2, err, h)
		}
	})
}
