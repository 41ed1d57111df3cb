package inspect

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func TestAppendSSLTLV(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   SSL
		want string // hex of the TLV
	}{
		{"no client certificate", SSL{Version: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256", Verified: true},
			"20 00 28 01 00000000 21 0007 544c5376312e33 23 0016 544c535f4145535f3132385f47434d5f534841323536"},
		{"client certificate", SSL{Version: "TLSv1.2", Cipher: "X", CN: "client1", CertConn: true, CertSess: true, Verified: true},
			"20 00 1d 07 00000000 21 0007 544c5376312e32 22 0007 636c69656e7431 23 0001 58"},
		{"resumed, not verified", SSL{Version: "TLSv1.3", Cipher: "X", CN: "c", CertSess: true},
			"20 00 17 05 00000001 21 0007 544c5376312e33 22 0001 63 23 0001 58"},
	} {
		got := AppendSSLTLV([]byte("hdr"), tt.in)
		want := append([]byte("hdr"), unhex(t, tt.want)...)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %x, want %x", tt.name, got, want)
		}
		back, ok := ParseSSLTLV(got[3:])
		if !ok || back != tt.in {
			t.Errorf("%s: parsed back as %+v (%v), want %+v", tt.name, back, ok, tt.in)
		}
	}
}

func TestAppendSSLTLVBounded(t *testing.T) {
	long := SSL{Version: "TLSv1.3", Cipher: strings.Repeat("c", 1000), CN: strings.Repeat("n", 70000), Verified: true}
	b := AppendSSLTLV(nil, long)
	if len(b) > MaxSSLTLV {
		t.Fatalf("%d bytes, above MaxSSLTLV %d", len(b), MaxSSLTLV)
	}
	back, ok := ParseSSLTLV(b)
	if !ok || len(back.CN) != maxSSLField || len(back.Cipher) != maxSSLField {
		t.Errorf("long fields: %v, CN %d cipher %d bytes, want %d each", ok, len(back.CN), len(back.Cipher), maxSSLField)
	}
}

func TestAppendTLVsReplacesSSL(t *testing.T) {
	theirs := AppendSSLTLV(nil, SSL{Version: "TLSv1.2", Cipher: "OLD"})
	in := append(append([]byte{0x05, 0x00, 0x02, 'i', 'd'}, theirs...), 0x04, 0x00, 0x00)
	out := AppendTLVs(nil, in, &SSL{Version: "TLSv1.3", Cipher: "NEW", Verified: true})
	got, ok := ParseSSLTLV(out)
	if !ok || got.Cipher != "NEW" || !bytes.HasPrefix(out, []byte{0x05, 0x00, 0x02, 'i', 'd'}) || bytes.Count(out, []byte("OLD")) != 0 {
		t.Errorf("AppendTLVs with ssl: %x", out)
	}
	if kept := AppendTLVs(nil, in, nil); !bytes.Contains(kept, []byte("OLD")) {
		t.Errorf("AppendTLVs without ssl dropped the SSL TLV it received: %x", kept)
	}
}

// FuzzSSLTLV: whatever the strings, the TLV is within MaxSSLTLV, its
// length field matches, it walks as TLVs (checkTLVs' rules) and parses
// back to the strings cut at maxSSLField.
func FuzzSSLTLV(f *testing.F) {
	f.Add("TLSv1.3", "TLS_AES_128_GCM_SHA256", "", false, true)
	f.Add("TLSv1.2", "ECDHE", "client1", true, false)
	f.Add("", "", "\x00\xff", true, true)
	f.Fuzz(func(t *testing.T, version, cipher, cn string, conn, verified bool) {
		in := SSL{Version: version, Cipher: cipher, CN: cn, CertConn: conn, CertSess: conn, Verified: verified}
		b := AppendSSLTLV(nil, in)
		if len(b) > MaxSSLTLV || int(b[1])<<8|int(b[2]) != len(b)-3 {
			t.Fatalf("TLV of %d bytes with length field %d", len(b), int(b[1])<<8|int(b[2]))
		}
		hdr := append(make([]byte, 16), b...)
		if err := checkTLVs(hdr, 16); err != nil {
			t.Fatalf("not a well-formed TLV: %v", err)
		}
		got, ok := ParseSSLTLV(b)
		cut := func(s string) string { return s[:min(len(s), maxSSLField)] }
		want := SSL{Version: cut(version), Cipher: cut(cipher), CN: cut(cn), CertConn: conn, CertSess: conn, Verified: verified}
		if !ok || got != want {
			t.Fatalf("parsed back as %+v, want %+v", got, want)
		}
	})
}

// unhex reads hex with spaces for readability.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
