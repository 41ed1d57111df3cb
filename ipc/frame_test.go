package ipc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestDecoderSplitsFrames(t *testing.T) {
	var stream []byte
	for i, typ := range []string{TypeReady, TypeDrain, TypeSessions} {
		m, _ := New(typ, uint64(i), map[string]int{"n": i})
		b, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, b...)
	}
	// Fed one byte at a time, the three messages come out whole and in order.
	var d Decoder
	var got []string
	for _, c := range stream {
		d.Feed([]byte{c})
		for {
			m, ok, err := d.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, m.Type)
		}
	}
	if want := []string{TypeReady, TypeDrain, TypeSessions}; len(got) != 3 || got[0] != want[0] || got[2] != want[2] {
		t.Fatalf("decoded %v, want %v", got, want)
	}
}

func TestDecoderRejects(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
	}{
		{"too long", binary.BigEndian.AppendUint32(nil, MaxFrame+1)},
		{"not json", append(binary.BigEndian.AppendUint32(nil, 3), "{{{"...)},
	}
	for _, tt := range tests {
		var d Decoder
		d.Feed(tt.frame)
		if _, _, err := d.Next(); !errors.Is(err, ErrFrame) {
			t.Errorf("%s: err %v, want ErrFrame", tt.name, err)
		}
	}
}

func TestReadWrite(t *testing.T) {
	var buf bytes.Buffer
	m, _ := New(TypeConfig, 7, Setup{Slot: 3})
	if err := Write(&buf, m); err != nil {
		t.Fatal(err)
	}
	back, err := Read(&buf)
	if err != nil || back.ID != 7 || back.Type != TypeConfig || back.V != ProtocolVersion {
		t.Fatalf("read back %+v, %v", back, err)
	}
}

// FuzzDecoder: any byte stream gives messages or ErrFrame, never a panic.
func FuzzDecoder(f *testing.F) {
	m, _ := New(TypeReady, 1, nil)
	b, _ := Encode(m)
	f.Add(b)
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Decoder
		d.Feed(b)
		for i := 0; i < 100; i++ {
			_, ok, err := d.Next()
			if err != nil && !errors.Is(err, ErrFrame) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if !ok || err != nil {
				return
			}
		}
	})
}

func TestDecodeDrain(t *testing.T) {
	tests := []struct {
		body    string
		want    int64
		wantErr string
	}{
		{`{"timeout_ns":5000000000}`, 5e9, ""},
		{`{"timeout_ns":1,"later_field":true}`, 1, ""}, // unknown fields are ignored (upgrades)
		{``, 0, "ipc: drain: empty body"},
		{`{"timeout_ns":"5s"}`, 0, "ipc: drain body: json: cannot unmarshal"},
		{`[1]`, 0, "ipc: drain body: json: cannot unmarshal"},
	}
	for _, tt := range tests {
		d, err := DecodeBody[Drain](Message{Type: TypeDrain, Body: []byte(tt.body)})
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tt.body, err)
		case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
			t.Errorf("%q: err %v, want %q...", tt.body, err, tt.wantErr)
		case d.Timeout != tt.want:
			t.Errorf("%q: timeout %d, want %d", tt.body, d.Timeout, tt.want)
		}
	}
}

// TestOtherProtocolVersion: a frame of another protocol version is refused
// by both decoding paths.
func TestOtherProtocolVersion(t *testing.T) {
	b, err := Encode(Message{V: ProtocolVersion + 1, Type: TypePing})
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	d.Feed(b)
	if _, _, err := d.Next(); !errors.Is(err, ErrFrame) || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("Decoder: %v", err)
	}
	if _, err := Read(bytes.NewReader(b)); !errors.Is(err, ErrFrame) {
		t.Errorf("Read: %v", err)
	}
}
