package chunkproto

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const trackA = "0123456789abcdef0123456789abcdef"

func TestChunkRoundTrip(t *testing.T) {
	payload := bytes.Repeat([]byte{0xAB, 0xCD}, 1000)
	msg, err := EncodeChunk(trackA, 70000, payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) != HeaderSize+len(payload) || msg[0] != KindChunk {
		t.Fatalf("bad layout: len %d kind %x", len(msg), msg[0])
	}
	// seq 70000 = 0x00011170 big-endian at offset 17.
	if !bytes.Equal(msg[17:21], []byte{0x00, 0x01, 0x11, 0x70}) {
		t.Fatalf("seq bytes %x", msg[17:21])
	}
	if msg[1] != 0x01 || msg[16] != 0xef {
		t.Fatalf("track bytes %x", msg[1:17])
	}
	c, err := DecodeChunk(msg)
	if err != nil {
		t.Fatal(err)
	}
	if c.Track != trackA || c.Seq != 70000 || !bytes.Equal(c.Data, payload) {
		t.Fatalf("got %+v", c)
	}
}

func TestChunkErrors(t *testing.T) {
	big := make([]byte, MaxPayload+1)
	for name, f := range map[string]func() error{
		"bad track":     func() error { _, err := EncodeChunk("XYZ", 0, []byte{1}); return err },
		"upper track":   func() error { _, err := EncodeChunk(strings.ToUpper(trackA), 0, []byte{1}); return err },
		"negative seq":  func() error { _, err := EncodeChunk(trackA, -1, []byte{1}); return err },
		"empty payload": func() error { _, err := EncodeChunk(trackA, 0, nil); return err },
		"big payload":   func() error { _, err := EncodeChunk(trackA, 0, big); return err },
		"short":         func() error { _, err := DecodeChunk(make([]byte, HeaderSize)); return err },
		"kind":          func() error { _, err := DecodeChunk(append([]byte{2}, make([]byte, HeaderSize)...)); return err },
		"too big": func() error {
			_, err := DecodeChunk(append([]byte{KindChunk}, make([]byte, HeaderSize-1+MaxPayload+1)...))
			return err
		},
	} {
		if err := f(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	// The largest allowed payload is accepted.
	msg, err := EncodeChunk(trackA, 1, big[:MaxPayload])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeChunk(msg); err != nil {
		t.Fatal(err)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range []Message{
		Request{ID: 7, Track: trackA, From: 0, To: 40},
		Cancel{ID: 7},
		Done{ID: 4294967295},
		Error{ID: 7, Code: CodeInvalidRange, Message: "x"},
		Have{Track: trackA},
		HaveReply{Track: trackA, OK: true},
	} {
		b, err := EncodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(`{"type":"`+m.MessageType()+`",`)) {
			t.Errorf("encoding %s", b)
		}
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("got %#v want %#v", got, m)
		}
	}
}

func TestDecodeMessageRejects(t *testing.T) {
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `{"type":"nope"}`, `{"type":1}`,
		`{"type":"request","id":-1,"track":"` + trackA + `","from":0,"to":3}`,
		`{"type":"cancel","id":"x"}`,
		`{"type":"have","track":""}`,
		`{"type":"have_reply","track":"abc","ok":true}`,
		`{"type":"done","id":1` + strings.Repeat(" ", MaxTextSize) + `}`,
	} {
		if m, err := DecodeMessage([]byte(s)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%.60q: got %v, %v; want ErrMalformed", s, m, err)
		}
	}
}

func TestRequestValidate(t *testing.T) {
	for _, tc := range []struct {
		r     Request
		empty bool
	}{
		{Request{ID: 1, Track: "zz", From: 0, To: 1}, false},
		{Request{ID: 1, Track: strings.ToUpper(trackA), From: 0, To: 1}, false},
		{Request{ID: 1, Track: trackA, From: 3, To: 3}, true},
		{Request{ID: 1, Track: trackA, From: -1, To: 3}, true},
	} {
		err := tc.r.Validate()
		if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrEmptyRange) != tc.empty {
			t.Errorf("%+v: %v", tc.r, err)
		}
	}
	if err := (Request{ID: 1, Track: trackA, From: 0, To: 1}).Validate(); err != nil {
		t.Fatal(err)
	}
	// Decoding leaves the check to the receiver, which answers with the id.
	m, err := DecodeMessage([]byte(`{"type":"request","id":9,"track":"` + trackA + `","from":3,"to":3}`))
	if err != nil || m.(Request).ID != 9 {
		t.Fatalf("decode: %v %v", m, err)
	}
}

func FuzzDecode(f *testing.F) {
	if msg, err := EncodeChunk(trackA, 3, []byte("frame")); err == nil {
		f.Add(msg)
	}
	f.Add([]byte(`{"type":"request","id":1,"track":"` + trackA + `","from":0,"to":2}`))
	f.Add([]byte(`{"type":"have_reply","track":"` + trackA + `","ok":true}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := DecodeChunk(data); err == nil {
			again, err := EncodeChunk(c.Track, c.Seq, c.Data)
			if err != nil {
				t.Fatalf("re-encode of decoded chunk: %v", err)
			}
			if !bytes.Equal(again, data) {
				t.Fatalf("chunk round trip differs")
			}
		}
		if m, err := DecodeMessage(data); err == nil {
			b, err := EncodeMessage(m)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			m2, err := DecodeMessage(b)
			if err != nil {
				t.Fatalf("decode of re-encoded %s: %v", b, err)
			}
			if !reflect.DeepEqual(m, m2) {
				t.Fatalf("round trip %#v != %#v", m, m2)
			}
		}
	})
}
