package hub_test

import (
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/signaling"
)

// lookupOK has leecher l find seeder s for track (s answers yes) and returns
// the pair id, checking both paired messages and the lookup result.
func lookupOK(t *testing.T, l, s *client, track string) string {
	t.Helper()
	l.send(signaling.Lookup{Track: track})
	ask := waitFor[signaling.CanUpload](s)
	if ask.Track != track || ask.LookupID == "" {
		t.Fatalf("can_upload %+v", ask)
	}
	s.send(signaling.UploadReply{LookupID: ask.LookupID, OK: true})
	ps := waitFor[signaling.Paired](s)
	pl := waitFor[signaling.Paired](l)
	res := waitFor[signaling.LookupResult](l)
	if ps.Role != signaling.RoleSeeder || ps.Peer != l.id || ps.Track != track ||
		pl.Role != signaling.RoleLeecher || pl.Peer != s.id || pl.PairID != ps.PairID ||
		res.PeerID != s.id || res.PairID != ps.PairID || res.Track != track {
		t.Fatalf("seeder %+v leecher %+v result %+v", ps, pl, res)
	}
	return ps.PairID
}

// barrier returns once the hub has handled every message c sent before:
// the hub handles one peer's messages in order and answers this one.
func barrier(t *testing.T, c *client) {
	t.Helper()
	c.send(signaling.Lookup{Track: strings.Repeat("f", 32)})
	if e := waitFor[signaling.Error](c); e.Code != signaling.CodeUnknownTrack {
		t.Fatalf("barrier: %+v", e)
	}
}

// lookupFail has l look track up and expects no seeder, for reason.
func lookupFail(t *testing.T, l *client, track, reason string) {
	t.Helper()
	l.send(signaling.Lookup{Track: track})
	res := waitFor[signaling.LookupResult](l)
	if res.PeerID != "" || res.Reason != reason || res.Track != track {
		t.Fatalf("lookup result %+v, want failure %s", res, reason)
	}
}

func TestRelayOnlyBetweenPairedPeers(t *testing.T) {
	t.Parallel()
	tr := testtrack.New(20, 3, testtrack.Size(100))
	nobody := testtrack.New(21, 3, testtrack.Size(100))
	spy := hubtest.NewSpy()
	// The relay budget is sent in bursts above the default message rate.
	url := hubtest.New(t, hub.Config{Metrics: spy, MessageRate: 1000, MessageBurst: 1000}, hubtest.WithTracks(tr, nobody)).WSURL
	api := clientAPI()
	s := connect(t, url, api, signaling.Hello{Cached: []string{tr.ID()}})
	l := connect(t, url, api, signaling.Hello{})
	c := connect(t, url, api, signaling.Hello{})

	pair := lookupOK(t, l, s, tr.ID())
	if c := spy.Counts(); c.GrantsUp+c.GrantsDown != 2*tr.Manifest.Size {
		t.Fatalf("metric grants %d, want %d", c.GrantsUp+c.GrantsDown, 2*tr.Manifest.Size)
	}
	offer := &webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "v=0\r\n"}

	// A relayed message carries the real sender, whatever the sender claims.
	l.send(signaling.Signal{To: s.id, From: "p-forged", PairID: pair, SDP: offer})
	got := waitFor[signaling.Signal](s)
	if got.From != l.id || got.PairID != pair || got.SDP == nil || got.SDP.SDP != offer.SDP {
		t.Fatalf("relayed %+v", got)
	}
	mid := "0"
	s.send(signaling.Signal{To: l.id, PairID: pair, Candidate: &webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host", SDPMid: &mid}})
	if got := waitFor[signaling.Signal](l); got.From != s.id || got.Candidate == nil || *got.Candidate.SDPMid != "0" {
		t.Fatalf("relayed %+v", got)
	}

	// Refused: to a peer outside the pair, with an unknown pair, from outside the pair.
	for _, bad := range []struct {
		from *client
		sig  signaling.Signal
	}{
		{l, signaling.Signal{To: c.id, PairID: pair, SDP: offer}},
		{l, signaling.Signal{To: s.id, PairID: "x-999", SDP: offer}},
		{c, signaling.Signal{To: s.id, PairID: pair, SDP: offer}},
		{l, signaling.Signal{To: "p-nobody", PairID: pair, SDP: offer}},
	} {
		bad.from.send(bad.sig)
		if e := waitFor[signaling.Error](bad.from); e.Code != signaling.CodeNotPaired || e.Ref != signaling.TypeSignal {
			t.Fatalf("%+v: got %+v", bad.sig, e)
		}
	}
	if n := spy.Counts().Rejected[signaling.CodeNotPaired]; n != 4 {
		t.Fatalf("refused relays counted %d, want 4", n)
	}
	// Nothing reached c or s: the next message each gets is the answer to
	// a lookup they send now (the hub writes each peer's messages in order).
	// (waitFor keeps skipped messages in the backlog: there must be none.)
	lookupFail(t, c, nobody.ID(), signaling.ReasonNoCandidates)
	if len(c.backlog) != 0 {
		t.Fatalf("c received %#v", c.backlog[0])
	}
	lookupFail(t, s, nobody.ID(), signaling.ReasonNoCandidates)
	if len(s.backlog) != 0 {
		t.Fatalf("s received %#v", s.backlog[0])
	}

	// The pair's relay budget: 2 signals used above.
	cand := &webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host"}
	for used := 2; used < signaling.MaxPairSignals; {
		n := min(32, signaling.MaxPairSignals-used) // stay well below the send queue
		for range n {
			l.send(signaling.Signal{To: s.id, PairID: pair, Candidate: cand})
		}
		for range n {
			waitFor[signaling.Signal](s)
		}
		used += n
	}
	l.send(signaling.Signal{To: s.id, PairID: pair, Candidate: cand})
	if e := waitFor[signaling.Error](l); e.Code != signaling.CodeRateLimited {
		t.Fatalf("over budget: %+v", e)
	}

	// Unpair: the other side is told and the relay closes.
	l.send(signaling.Unpair{PairID: pair})
	if u := waitFor[signaling.Unpair](s); u.PairID != pair || u.Reason != signaling.ReasonRequested {
		t.Fatalf("unpair %+v", u)
	}
	s.send(signaling.Signal{To: l.id, PairID: pair, SDP: offer})
	if e := waitFor[signaling.Error](s); e.Code != signaling.CodeNotPaired {
		t.Fatalf("after unpair: %+v", e)
	}
	l.send(signaling.Unpair{PairID: pair})
	if e := waitFor[signaling.Error](l); e.Code != signaling.CodeUnknownPair {
		t.Fatalf("second unpair: %+v", e)
	}
}

func TestLookupOutcomes(t *testing.T) {
	tr := testtrack.New(30, 3, testtrack.Size(100))
	spy := hubtest.NewSpy()
	url := hubtest.New(t, hub.Config{Metrics: spy, LookupTimeout: 300 * time.Millisecond}, hubtest.WithTracks(tr)).WSURL
	api := clientAPI()
	l := connect(t, url, api, signaling.Hello{})

	// Nobody holds it.
	lookupFail(t, l, tr.ID(), signaling.ReasonNoCandidates)
	// Unknown track, bad track.
	l.send(signaling.Lookup{Track: strings.Repeat("0", 32)})
	if e := waitFor[signaling.Error](l); e.Code != signaling.CodeUnknownTrack {
		t.Fatalf("got %+v", e)
	}

	// Two holders: one says no, the other never answers → timeout.
	s1 := connect(t, url, api, signaling.Hello{Cached: []string{tr.ID()}})
	s2 := connect(t, url, api, signaling.Hello{})
	s2.send(signaling.Announce{Tracks: []string{tr.ID()}})
	barrier(t, s2)

	l.send(signaling.Lookup{Track: tr.ID()})
	a1 := waitFor[signaling.CanUpload](s1)
	a2 := waitFor[signaling.CanUpload](s2)
	if a1.LookupID != a2.LookupID {
		t.Fatalf("asked with different lookup ids %q %q", a1.LookupID, a2.LookupID)
	}
	s1.send(signaling.UploadReply{LookupID: a1.LookupID, OK: false})
	if res := waitFor[signaling.LookupResult](l); res.PeerID != "" || res.Reason != signaling.ReasonTimeout {
		t.Fatalf("result %+v", res)
	}
	// A late yes is ignored: no pair, no message.
	s2.send(signaling.UploadReply{LookupID: a2.LookupID, OK: true})

	// Both say no → all_refused at once.
	l.send(signaling.Lookup{Track: tr.ID()})
	for _, s := range []*client{s1, s2} {
		a := waitFor[signaling.CanUpload](s)
		s.send(signaling.UploadReply{LookupID: a.LookupID, OK: false})
	}
	if res := waitFor[signaling.LookupResult](l); res.Reason != signaling.ReasonAllRefused {
		t.Fatalf("result %+v", res)
	}
	if n := spy.Counts().Lookups[signaling.ReasonTimeout]; n != 1 {
		t.Fatalf("timeouts counted %d", n)
	}
}

func TestUploadCapAndCompleted(t *testing.T) {
	t.Parallel()
	tr := testtrack.New(40, 3, testtrack.Size(100))
	url := hubtest.New(t, hub.Config{LookupTimeout: 5 * time.Second}, hubtest.WithTracks(tr)).WSURL
	api := clientAPI()
	s := connect(t, url, api, signaling.Hello{Cached: []string{tr.ID()}, UploadCap: 1})
	l1 := connect(t, url, api, signaling.Hello{})
	l2 := connect(t, url, api, signaling.Hello{})

	pair := lookupOK(t, l1, s, tr.ID())
	// s is at its cap: it is not even asked, and the track is busy, not cold.
	lookupFail(t, l2, tr.ID(), signaling.ReasonBusy)
	// upload_done frees the slot (only the seeder may send it).
	l1.send(signaling.UploadDone{PairID: pair})
	if e := waitFor[signaling.Error](l1); e.Code != signaling.CodeUnknownPair {
		t.Fatalf("leecher upload_done: %+v", e)
	}
	s.send(signaling.UploadDone{PairID: pair})
	barrier(t, s)
	pair2 := lookupOK(t, l2, s, tr.ID())

	// l1 completed the track: it becomes a candidate, the most recent one.
	l1.send(signaling.Completed{Track: tr.ID()})
	barrier(t, l1)
	l3 := connect(t, url, api, signaling.Hello{})
	l3.send(signaling.Lookup{Track: tr.ID()})
	a := waitFor[signaling.CanUpload](l1)
	l1.send(signaling.UploadReply{LookupID: a.LookupID, OK: true})
	if res := waitFor[signaling.LookupResult](l3); res.PeerID != l1.id {
		t.Fatalf("result %+v, want seeder %s", res, l1.id)
	}

	// The seeder leaves: its leecher's pair ends, and a new lookup no longer
	// finds it.
	if err := s.ws.CloseNow(); err != nil {
		t.Fatal(err)
	}
	if u := waitFor[signaling.Unpair](l2); u.PairID != pair2 || u.Reason != signaling.ReasonPeerLeft {
		t.Fatalf("unpair %+v", u)
	}
	if u := waitFor[signaling.Unpair](l1); u.PairID != pair || u.Reason != signaling.ReasonPeerLeft {
		t.Fatalf("unpair %+v", u)
	}
}

func TestStatsAccepted(t *testing.T) {
	t.Parallel()
	spy := hubtest.NewSpy()
	url := hubtest.New(t, hub.Config{Metrics: spy}).WSURL
	c := connect(t, url, clientAPI(), signaling.Hello{})
	c.send(signaling.Stats{HubBytes: 10, PeerBytes: 20, StartupMS: []float64{150}})
	if err := c.ws.Write(c.ctx, websocket.MessageText, []byte(`{"type":"stats","hub_bytes":-5}`)); err != nil {
		t.Fatal(err)
	}
	if e := waitFor[signaling.Error](c); e.Code != signaling.CodeBadMessage {
		t.Fatalf("got %+v", e)
	}
	reports := int64(len(spy.Counts().Reports))
	if reports != 1 {
		t.Fatalf("%d reports", reports)
	}
	r := spy.Counts().Reports[0]
	if r.PeerBytes != 20 || len(r.StartupMS) != 1 {
		t.Fatalf("report %+v", r)
	}
}

// TestPeerToPeer runs the whole flow with real PeerConnections: lookup,
// pairing, SDP and candidates relayed through the hub, and the chunk
// protocol on the peers' own DataChannel.
func TestPeerToPeer(t *testing.T) {
	t.Parallel()
	tr := testtrack.New(50, 4, testtrack.Size(3000))
	url := hubtest.New(t, hub.Config{}, hubtest.WithTracks(tr)).WSURL
	api := clientAPI()
	s := connect(t, url, api, signaling.Hello{Cached: []string{tr.ID()}})
	l := connect(t, url, api, signaling.Hello{})
	pair := lookupOK(t, l, s, tr.ID())

	newPC := func(self *client, other string) *webrtc.PeerConnection {
		pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: self.welcome.ICEServers})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pc.Close() })
		pc.OnICECandidate(func(c *webrtc.ICECandidate) {
			if c != nil {
				init := c.ToJSON()
				self.sendQuiet(signaling.Signal{To: other, PairID: pair, Candidate: &init})
			}
		})
		return pc
	}
	lpc := newPC(l, s.id)
	spc := newPC(s, l.id)

	// The seeder serves the chunk protocol: have → have_reply, request → chunks + done.
	spc.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(msg webrtc.DataChannelMessage) {
			m, err := chunkproto.DecodeMessage(msg.Data)
			if err != nil {
				t.Errorf("seeder: %v", err)
				return
			}
			var out [][]byte
			switch m := m.(type) {
			case chunkproto.Have:
				b, _ := chunkproto.EncodeMessage(chunkproto.HaveReply{Track: m.Track, OK: m.Track == tr.ID()})
				_ = dc.SendText(string(b))
			case chunkproto.Request:
				for seq := m.From; seq < m.To; seq++ {
					b, err := chunkproto.EncodeChunk(m.Track, seq, tr.Chunk(seq))
					if err != nil {
						t.Errorf("seeder: %v", err)
						return
					}
					out = append(out, b)
				}
				for _, b := range out {
					_ = dc.Send(b)
				}
				b, _ := chunkproto.EncodeMessage(chunkproto.Done{ID: m.ID})
				_ = dc.SendText(string(b))
			}
		})
	})
	ldc, err := lpc.CreateDataChannel(chunkproto.DataChannelLabel, nil)
	if err != nil {
		t.Fatal(err)
	}
	open := make(chan struct{})
	got := make(chan webrtc.DataChannelMessage, 16)
	ldc.OnOpen(func() { close(open) })
	ldc.OnMessage(func(m webrtc.DataChannelMessage) { got <- m })

	offer, err := lpc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := lpc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	l.send(signaling.Signal{To: s.id, PairID: pair, SDP: &offer})

	// Each side applies what the hub relays until the channel opens.
	// Candidates may overtake the description they belong to (each side
	// trickles from Pion's goroutine), so they wait for it, as PROTOCOL.md asks.
	relay := func(self *client, pc *webrtc.PeerConnection, stop <-chan struct{}) {
		var early []webrtc.ICECandidateInit
		for {
			select {
			case m, ok := <-self.inbox:
				if !ok {
					return
				}
				sig, ok := m.(signaling.Signal)
				if !ok || sig.PairID != pair {
					t.Errorf("%s: unexpected %#v", self.id, m)
					return
				}
				if sig.Candidate != nil {
					if pc.RemoteDescription() == nil {
						early = append(early, *sig.Candidate)
					} else if err := pc.AddICECandidate(*sig.Candidate); err != nil {
						t.Errorf("add candidate: %v", err)
					}
					continue
				}
				if err := pc.SetRemoteDescription(*sig.SDP); err != nil {
					t.Errorf("set remote: %v", err)
					return
				}
				for _, c := range early {
					if err := pc.AddICECandidate(c); err != nil {
						t.Errorf("add candidate: %v", err)
					}
				}
				early = nil
				if sig.SDP.Type == webrtc.SDPTypeOffer {
					ans, err := pc.CreateAnswer(nil)
					if err == nil {
						err = pc.SetLocalDescription(ans)
					}
					if err != nil {
						t.Errorf("answer: %v", err)
						return
					}
					self.sendQuiet(signaling.Signal{To: l.id, PairID: pair, SDP: &ans})
				}
			case <-stop:
				return
			}
		}
	}
	done := make(chan struct{})
	defer close(done)
	go relay(s, spc, done)
	go relay(l, lpc, done)
	select {
	case <-open:
	case <-time.After(testTimeout):
		t.Fatal("peer-to-peer data channel did not open")
	}
	send := func(m chunkproto.Message) {
		b, _ := chunkproto.EncodeMessage(m)
		if err := ldc.SendText(string(b)); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() webrtc.DataChannelMessage {
		select {
		case m := <-got:
			return m
		case <-time.After(testTimeout):
			t.Fatal("no message from the seeder")
		}
		return webrtc.DataChannelMessage{}
	}
	send(chunkproto.Have{Track: tr.ID()})
	if m, err := chunkproto.DecodeMessage(recv().Data); err != nil || m != (chunkproto.HaveReply{Track: tr.ID(), OK: true}) {
		t.Fatalf("have_reply %#v %v", m, err)
	}
	send(chunkproto.Request{ID: 1, Track: tr.ID(), From: 1, To: 4})
	for seq := 1; seq < 4; seq++ {
		c, err := chunkproto.DecodeChunk(recv().Data)
		if err != nil || c.Seq != seq || string(c.Data) != string(tr.Chunk(seq)) {
			t.Fatalf("chunk %d: %v", seq, err)
		}
	}
	if m, err := chunkproto.DecodeMessage(recv().Data); err != nil || m != (chunkproto.Done{ID: 1}) {
		t.Fatalf("done %#v %v", m, err)
	}
}

// noAsk checks that c has not been asked can_upload (after a barrier, every
// message the hub sent c before is in its backlog).
func noAsk(t *testing.T, c *client, who string) {
	t.Helper()
	barrier(t, c)
	for _, m := range c.backlog {
		if a, ok := m.(signaling.CanUpload); ok {
			t.Fatalf("%s was asked %+v", who, a)
		}
	}
}

// TestReportSeeder: a report counts only about a peer the hub paired the
// reporter with; the reported seeder is no longer offered to the reporter
// for that track, and after a second reporter it is dropped as a holder of
// the track for everyone, its later completed messages for it ignored.
func TestReportSeeder(t *testing.T) {
	t.Parallel()
	tr := testtrack.New(70, 3, testtrack.Size(100))
	other := testtrack.New(71, 3, testtrack.Size(100))
	spy := hubtest.NewSpy()
	url := hubtest.New(t, hub.Config{Metrics: spy, LookupTimeout: 5 * time.Second}, hubtest.WithTracks(tr, other)).WSURL
	api := clientAPI()
	bad := connect(t, url, api, signaling.Hello{Cached: []string{tr.ID(), other.ID()}})
	good := connect(t, url, api, signaling.Hello{Cached: []string{tr.ID()}})
	l1 := connect(t, url, api, signaling.Hello{})
	l2 := connect(t, url, api, signaling.Hello{})
	outsider := connect(t, url, api, signaling.Hello{})

	// pairWith has l look tr up; good says no, bad says yes.
	pairWith := func(l *client) string {
		t.Helper()
		l.send(signaling.Lookup{Track: tr.ID()})
		ag := waitFor[signaling.CanUpload](good)
		ab := waitFor[signaling.CanUpload](bad)
		good.send(signaling.UploadReply{LookupID: ag.LookupID, OK: false})
		bad.send(signaling.UploadReply{LookupID: ab.LookupID, OK: true})
		pl := waitFor[signaling.Paired](l)
		waitFor[signaling.Paired](bad)
		if res := waitFor[signaling.LookupResult](l); res.PeerID != bad.id || pl.Peer != bad.id {
			t.Fatalf("paired %+v result %+v, want seeder %s", pl, res, bad.id)
		}
		return pl.PairID
	}
	pair1 := pairWith(l1)

	// Refused: from a peer never paired with bad, about a peer that was only
	// asked (good), about an unknown peer.
	for _, c := range []struct {
		from *client
		r    signaling.Report
	}{
		{outsider, signaling.Report{Peer: bad.id, Track: tr.ID(), Reason: signaling.ReportHashMismatch}},
		{l1, signaling.Report{Peer: good.id, Track: tr.ID(), Reason: signaling.ReportHashMismatch}},
		{l1, signaling.Report{Peer: "p-nobody", Track: tr.ID(), Reason: signaling.ReportTimeout}},
	} {
		c.from.send(c.r)
		if e := waitFor[signaling.Error](c.from); e.Code != signaling.CodeNotPaired || e.Ref != signaling.TypeReport {
			t.Fatalf("report %+v: got %+v", c.r, e)
		}
	}

	// Accepted (no answer), then the leecher ends the pair itself. A pair's
	// DataChannel serves other tracks too (have/request): a report about
	// another track of the same partner counts as well.
	l1.send(signaling.Report{Peer: bad.id, Track: other.ID(), Reason: signaling.ReportTimeout})
	l1.send(signaling.Report{Peer: bad.id, Track: tr.ID(), Reason: signaling.ReportHashMismatch})
	l1.send(signaling.Unpair{PairID: pair1})
	barrier(t, l1)
	if len(l1.backlog) != 0 {
		t.Fatalf("l1 got %#v after its report", l1.backlog[0])
	}
	waitFor[signaling.Unpair](bad)

	// l1 is no longer offered bad for tr; only good is asked.
	l1.send(signaling.Lookup{Track: tr.ID()})
	a := waitFor[signaling.CanUpload](good)
	good.send(signaling.UploadReply{LookupID: a.LookupID, OK: false})
	if res := waitFor[signaling.LookupResult](l1); res.Reason != signaling.ReasonAllRefused {
		t.Fatalf("l1 lookup %+v", res)
	}
	noAsk(t, bad, "bad seeder (reported by l1)")
	lookupFail(t, l1, other.ID(), signaling.ReasonBusy) // its only holder is excluded for l1
	// Others still get bad for other: it is asked (and does not answer).
	outsider.send(signaling.Lookup{Track: other.ID()})
	if a := waitFor[signaling.CanUpload](bad); a.Track != other.ID() {
		t.Fatalf("bad asked %+v", a)
	}
	if res := waitFor[signaling.LookupResult](outsider); res.Reason != signaling.ReasonTimeout {
		t.Fatalf("outsider lookup %+v", res)
	}

	// Another leecher still gets bad (one report does not drop it); its
	// report makes two and drops bad as a holder of tr.
	pairWith(l2)
	l2.send(signaling.Report{Peer: bad.id, Track: tr.ID(), Reason: signaling.ReportBadMessage})
	barrier(t, l2)
	if n := spy.Counts().Dropped; n != 1 {
		t.Fatalf("seeders dropped %d, want 1", n)
	}
	// bad announces tr again: ignored. A fresh leecher is offered good only.
	bad.send(signaling.Completed{Track: tr.ID()})
	bad.send(signaling.Announce{Tracks: []string{tr.ID()}})
	barrier(t, bad)
	bad.backlog = nil
	l3 := connect(t, url, api, signaling.Hello{})
	l3.send(signaling.Lookup{Track: tr.ID()})
	a = waitFor[signaling.CanUpload](good)
	good.send(signaling.UploadReply{LookupID: a.LookupID, OK: true})
	if res := waitFor[signaling.LookupResult](l3); res.PeerID != good.id {
		t.Fatalf("l3 lookup %+v, want %s", res, good.id)
	}
	noAsk(t, bad, "dropped seeder")

	reported := spy.Counts().Reported
	want := map[string]int{"hash_mismatch/true": 1, "bad_message/true": 1, "timeout/true": 1, "hash_mismatch/false": 2, "timeout/false": 1}
	for k, v := range want {
		if reported[k] != v {
			t.Errorf("reports %s = %d, want %d (all: %v)", k, reported[k], v, reported)
		}
	}
}

// TestPlaybackGrants: the first hub request of a track grants the
// requester a download budget and every peer it is paired with an upload
// budget of the track's size (peers reuse a pair for other tracks without a
// lookup); later requests of that track grant nothing more.
func TestPlaybackGrants(t *testing.T) {
	t.Parallel()
	a := testtrack.New(80, 3, testtrack.Size(100))
	b := testtrack.New(81, 5, testtrack.Size(300))
	spy := hubtest.NewSpy()
	url := hubtest.New(t, hub.Config{Metrics: spy}, hubtest.WithTracks(a, b)).WSURL
	api := clientAPI()
	s := connect(t, url, api, signaling.Hello{Cached: []string{a.ID(), b.ID()}})
	l := connect(t, url, api, signaling.Hello{})
	o := connect(t, url, api, signaling.Hello{})
	lookupOK(t, l, s, a.ID())
	grants := func(id string) (down, up int64) {
		c := spy.Counts()
		return c.DownBy[id], c.UpBy[id]
	}
	if d, _ := grants(l.id); d != a.Manifest.Size {
		t.Fatalf("leecher download grant after pairing %d, want %d", d, a.Manifest.Size)
	}

	l.dcSend(chunkproto.Request{ID: 1, Track: b.ID(), From: 0, To: 2})
	l.receiveRange(b, 1, 0, 2)
	l.dcSend(chunkproto.Request{ID: 2, Track: b.ID(), From: 2, To: 5})
	l.receiveRange(b, 2, 2, 5)
	if d, u := grants(l.id); d != a.Manifest.Size+b.Manifest.Size || u != 0 {
		t.Errorf("leecher grants down %d up %d, want %d and 0", d, u, a.Manifest.Size+b.Manifest.Size)
	}
	if d, u := grants(s.id); d != 0 || u != a.Manifest.Size+b.Manifest.Size {
		t.Errorf("its partner's grants down %d up %d, want 0 and %d", d, u, a.Manifest.Size+b.Manifest.Size)
	}
	// A peer outside the pair gets nothing from l's playback; its own
	// playback grants it the download budget only.
	o.dcSend(chunkproto.Request{ID: 1, Track: b.ID(), From: 0, To: 1})
	o.receiveRange(b, 1, 0, 1)
	if d, u := grants(o.id); d != b.Manifest.Size || u != 0 {
		t.Errorf("outsider grants down %d up %d, want %d and 0", d, u, b.Manifest.Size)
	}
	if _, u := grants(s.id); u != a.Manifest.Size+b.Manifest.Size {
		t.Errorf("the outsider's playback granted s upload: %d", u)
	}
}
