package cluster

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestDecodeMessage: what other hubs send is checked before anything acts on
// it: size, kind, hub and peer ids, track ids, reasons, and a signal's own
// syntax.
func TestDecodeMessage(t *testing.T) {
	const (
		a     = "p-00000000000000a1"
		b     = "p-00000000000000b2"
		track = "0123456789abcdef0123456789abcdef"
	)
	cases := []struct {
		name string
		m    Message
		ok   bool
	}{
		{"report", Message{Kind: KindReport, Peer: a, Seeder: b, Track: track, Reason: "hash_mismatch"}, true},
		{"report bad_message", Message{Kind: KindReport, Peer: a, Seeder: b, Track: track, Reason: "bad_message"}, true},
		{"report of a timeout", Message{Kind: KindReport, Peer: a, Seeder: b, Track: track, Reason: "timeout"}, false},
		{"report of itself", Message{Kind: KindReport, Peer: a, Seeder: a, Track: track, Reason: "hash_mismatch"}, false},
		{"report bad track", Message{Kind: KindReport, Peer: a, Seeder: b, Track: "x", Reason: "hash_mismatch"}, false},
		{"report bad peer", Message{Kind: KindReport, Peer: "hub", Seeder: b, Track: track, Reason: "hash_mismatch"}, false},
		{"ask", Message{Kind: KindAsk, Lookup: "l-1", Track: track, Seeder: a, Requester: b}, true},
		{"ask without lookup", Message{Kind: KindAsk, Track: track, Seeder: a, Requester: b}, false},
		{"pair without pair id", Message{Kind: KindPair, Lookup: "l-1", Track: track, Seeder: a, Requester: b}, false},
		{"unpair", Message{Kind: KindUnpair, Pair: "x-1", Peer: a, Reason: "requested"}, true},
		{"unpair bad reason", Message{Kind: KindUnpair, Pair: "x-1", Peer: a, Reason: "because"}, false},
		{"upload_done", Message{Kind: KindUploadDone, Pair: "x-1", Seeder: a}, true},
		{"signal", Message{Kind: KindSignal, Pair: "x-1", Peer: a, To: b,
			Signal: json.RawMessage(`{"type":"signal","to":"` + b + `","pair_id":"x-1","candidate":{"candidate":"c"}}`)}, true},
		{"signal carrying a lookup", Message{Kind: KindSignal, Pair: "x-1", Peer: a, To: b,
			Signal: json.RawMessage(`{"type":"lookup","track":"` + track + `"}`)}, false},
		{"long pair id", Message{Kind: KindUploadDone, Pair: strings.Repeat("x", maxIDLen+1), Seeder: a}, false},
		{"unknown kind", Message{Kind: "steal", Peer: a}, false},
	}
	for _, c := range cases {
		c.m.From = "hub-a"
		data, err := json.Marshal(c.m)
		if err != nil {
			t.Fatal(err)
		}
		_, err = decodeMessage(data)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok %v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, errBadMessage) {
			t.Errorf("%s: %v does not wrap errBadMessage", c.name, err)
		}
	}
	if _, err := decodeMessage([]byte(`{"kind":"upload_done","from":"bad hub!","pair":"x","seeder":"` + a + `"}`)); err == nil {
		t.Error("a bad hub id passed")
	}
	if _, err := decodeMessage(make([]byte, MaxMessageBytes+1)); !errors.Is(err, errBadMessage) {
		t.Errorf("oversize: %v", err)
	}
}
