package signaling

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

const trackA = "0123456789abcdef0123456789abcdef"

func TestRoundTrip(t *testing.T) {
	mid := "0"
	idx := uint16(0)
	for _, m := range []Message{
		Hello{Version: 1, Cached: []string{trackA}, UploadCap: 4},
		Welcome{PeerID: "p-1", UploadCap: 4, ICEServers: []webrtc.ICEServer{{URLs: []string{"stun:example.org:3478"}}}},
		Error{Code: CodeNotPaired, Message: "m", Ref: TypeSignal},
		Signal{To: "p-2", From: "p-1", PairID: "x-1", SDP: &webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "v=0\r\n"}},
		Signal{To: HubID, Candidate: &webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", SDPMid: &mid, SDPMLineIndex: &idx}},
		Lookup{Track: trackA},
		LookupResult{Track: trackA, Reason: ReasonTimeout},
		CanUpload{Track: trackA, LookupID: "l-1"},
		UploadReply{LookupID: "l-1", OK: true},
		Paired{PairID: "x-1", Peer: "p-2", Track: trackA, Role: RoleLeecher},
		Unpair{PairID: "x-1", Reason: ReasonPeerLeft},
		UploadDone{PairID: "x-1"},
		Completed{Track: trackA},
		Announce{Tracks: []string{trackA}},
		Stats{HubBytes: 1, PeerBytes: 2, CacheBytes: 3, UploadedBytes: 4, BadChunks: 5, Stalls: 6, EmergencyFetches: 7, StartupMS: []float64{12.5}},
		Report{Peer: "p-2", Track: trackA, Reason: ReportHashMismatch},
		Ping{},
		Pong{},
	} {
		b, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(`{"type":"`+m.MessageType()+`",`)) && string(b) != `{"type":"`+m.MessageType()+`"}` {
			t.Errorf("encoding %s", b)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("got %#v\nwant %#v", got, m)
		}
	}
}

func TestSDPWireShape(t *testing.T) {
	b, err := Encode(Signal{From: HubID, SDP: &webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: "v=0"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"signal","from":"hub","sdp":{"type":"answer","sdp":"v=0"}}`
	if string(b) != want {
		t.Fatalf("got %s want %s", b, want)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, s := range []string{
		``, `null`, `{}`, `{"type":"welcomez"}`,
		`{"type":"hello","version":1,"upload_cap":99}`,
		`{"type":"hello","version":1,"cached":["nothex"]}`,
		`{"type":"signal","to":"hub"}`,
		`{"type":"signal","to":"hub","sdp":{"type":"offer","sdp":"x"},"candidate":{"candidate":""}}`,
		`{"type":"signal","sdp":{"type":"bogus","sdp":"x"}}`,
		`{"type":"lookup","track":"ABC"}`,
		`{"type":"upload_reply","ok":true}`,
		`{"type":"unpair"}`,
		`{"type":"upload_done","pair_id":""}`,
		`{"type":"completed"}`,
		`{"type":"announce","tracks":["x"]}`,
		`{"type":"stats","hub_bytes":-1}`,
		`{"type":"report","track":"0123456789abcdef0123456789abcdef","reason":"timeout"}`,
		`{"type":"report","peer":"hub","track":"0123456789abcdef0123456789abcdef","reason":"timeout"}`,
		`{"type":"report","peer":"p-1","track":"nothex","reason":"timeout"}`,
		`{"type":"report","peer":"p-1","track":"0123456789abcdef0123456789abcdef","reason":"ugly"}`,
		`{"type":"report","peer":"` + strings.Repeat("p", 65) + `","track":"0123456789abcdef0123456789abcdef","reason":"timeout"}`,
		`{"type":"stats","startup_ms":[-3]}`,
		`{"type":"lookup","track":"` + trackA + `","pad":"` + strings.Repeat("x", MaxMessageSize) + `"}`,
	} {
		if m, err := Decode([]byte(s)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%.70q: got %#v, %v; want ErrMalformed", s, m, err)
		}
	}
}

func TestCachedTruncated(t *testing.T) {
	ids := make([]string, MaxCachedTracks+5)
	for i := range ids {
		ids[i] = trackA
	}
	b, err := Encode(Hello{Version: 1, Cached: ids})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(m.(Hello).Cached); n != MaxCachedTracks {
		t.Fatalf("cached %d, want %d", n, MaxCachedTracks)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"type":"hello","version":1,"cached":["` + trackA + `"],"upload_cap":4}`))
	f.Add([]byte(`{"type":"signal","to":"hub","sdp":{"type":"answer","sdp":"v=0"}}`))
	f.Add([]byte(`{"type":"signal","to":"p-1","pair_id":"x-1","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}}`))
	f.Add([]byte(`{"type":"stats","hub_bytes":1,"startup_ms":[1.5]}`))
	f.Add([]byte(`{"type":"announce","tracks":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			if m != nil {
				t.Fatalf("message %#v returned with error %v", m, err)
			}
			return
		}
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", m, err)
		}
		m2, err := Decode(b)
		if err != nil {
			t.Fatalf("decode of re-encoded %s: %v", b, err)
		}
		b2, err := Encode(m2)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("encoding not stable: %s vs %s (%v)", b, b2, err)
		}
	})
}
