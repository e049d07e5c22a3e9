package hub_test

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/signaling"
)

// varied gives chunk sizes from 1 byte to the 64 KiB maximum (chunk 3).
func varied(seq int) int {
	if seq == 3 {
		return chunkproto.MaxPayload
	}
	return 1 + (seq*7919+131)%chunkproto.MaxPayload
}

func TestHandshakeAndRange(t *testing.T) {
	t.Parallel()
	tr := testtrack.New(1, 40, testtrack.Sizes(varied))
	spy := hubtest.NewSpy()
	srv := hubtest.New(t, hub.Config{Metrics: spy}, hubtest.WithTracks(tr))
	h, url := srv.Hub, srv.WSURL
	c := connect(t, url, clientAPI(), signaling.Hello{UploadCap: 2})
	if !strings.HasPrefix(c.id, "p-") || c.welcome.UploadCap != 2 {
		t.Fatalf("welcome %+v", c.welcome)
	}
	if h.Peers() != 1 {
		t.Fatalf("hub counts %d peers", h.Peers())
	}

	c.dcSend(chunkproto.Request{ID: 7, Track: tr.ID(), From: 2, To: 30})
	c.receiveRange(tr, 7, 2, 30)
	c.dcSend(chunkproto.Request{ID: 8, Track: tr.ID(), From: 0, To: 40})
	c.receiveRange(tr, 8, 0, 40)

	c.dcSend(chunkproto.Have{Track: tr.ID()})
	if m := c.nextText(); m != (chunkproto.HaveReply{Track: tr.ID(), OK: true}) {
		t.Fatalf("have: %#v", m)
	}
	other := strings.Repeat("ab", 16)
	c.dcSend(chunkproto.Have{Track: other})
	if m := c.nextText(); m != (chunkproto.HaveReply{Track: other, OK: false}) {
		t.Fatalf("have unknown: %#v", m)
	}
	if n := spy.Counts().Chunks; n != 68 {
		t.Fatalf("metrics counted %d chunks, want 68", n)
	}
	if spy.Counts().Connected != 1 {
		t.Fatal("metrics: peer not counted as connected")
	}
}

func TestInvalidRequests(t *testing.T) {
	t.Parallel()
	tr := testtrack.New(2, 10, testtrack.Size(1000))
	url := hubtest.New(t, hub.Config{}, hubtest.WithTracks(tr)).WSURL
	c := connect(t, url, clientAPI(), signaling.Hello{})
	for _, tc := range []struct {
		req  chunkproto.Request
		code string
	}{
		{chunkproto.Request{ID: 1, Track: tr.ID(), From: 0, To: 11}, chunkproto.CodeInvalidRange},
		{chunkproto.Request{ID: 2, Track: tr.ID(), From: 5, To: 5}, chunkproto.CodeInvalidRange},
		{chunkproto.Request{ID: 3, Track: tr.ID(), From: -1, To: 2}, chunkproto.CodeInvalidRange},
		{chunkproto.Request{ID: 4, Track: strings.Repeat("0", 32), From: 0, To: 1}, chunkproto.CodeNotFound},
		{chunkproto.Request{ID: 5, Track: "nothex", From: 0, To: 1}, chunkproto.CodeBadRequest},
	} {
		c.dcSend(tc.req)
		m, ok := c.nextText().(chunkproto.Error)
		if !ok || m.ID != tc.req.ID || m.Code != tc.code {
			t.Fatalf("request %+v: got %#v, want error %s", tc.req, m, tc.code)
		}
	}
	if err := c.dc.SendText(`{"type":"bogus"}`); err != nil {
		t.Fatal(err)
	}
	if m, ok := c.nextText().(chunkproto.Error); !ok || m.Code != chunkproto.CodeBadRequest {
		t.Fatalf("bogus: %#v", m)
	}
	// The channel still works after errors.
	c.dcSend(chunkproto.Request{ID: 9, Track: tr.ID(), From: 9, To: 10})
	c.receiveRange(tr, 9, 9, 10)
}

// bigTrack is large enough (3.2 MiB) that a paused reader makes the hub hit
// its send window: the SCTP receive window is 1 MiB.
func bigTrack(seed uint64) *testtrack.Track {
	return testtrack.New(seed, 200, testtrack.Size(16<<10))
}

func TestSlowReaderBoundedWindow(t *testing.T) {
	t.Parallel()
	tr := bigTrack(3)
	spy := hubtest.NewSpy()
	const window = 128 << 10
	url := hubtest.New(t, hub.Config{Metrics: spy, SendWindow: window}, hubtest.WithTracks(tr)).WSURL
	c := connect(t, url, clientAPI(), signaling.Hello{})

	c.pause.Lock() // the client stops reading its DataChannel
	c.dcSend(chunkproto.Request{ID: 1, Track: tr.ID(), From: 0, To: tr.Len()})
	hubtest.WaitFor(t, testTimeout, "hub send buffer to reach the window", func() bool {
		return spy.Counts().Buffered >= window
	})
	sent := spy.Counts().Chunks
	if sent >= tr.Len() {
		t.Fatalf("hub sent all %d chunks to a reader that does not read", sent)
	}
	c.pause.Unlock()
	c.receiveRange(tr, 1, 0, tr.Len())

	peak := spy.Counts().Peak
	if limit := int64(window + chunkproto.MaxMessageSize); peak > limit {
		t.Fatalf("hub buffered %d bytes for one peer, limit %d", peak, limit)
	}
	t.Logf("peak buffered %d bytes (window %d)", peak, window)
}

func TestCancelAndReplace(t *testing.T) {
	t.Parallel()
	tr := bigTrack(4)
	small := testtrack.New(5, 5, testtrack.Size(500))
	spy := hubtest.NewSpy()
	const window = 128 << 10
	url := hubtest.New(t, hub.Config{Metrics: spy, SendWindow: window}, hubtest.WithTracks(tr, small)).WSURL
	c := connect(t, url, clientAPI(), signaling.Hello{})

	// Cancel: pause, request everything, cancel while the hub is blocked.
	c.pause.Lock()
	c.dcSend(chunkproto.Request{ID: 1, Track: tr.ID(), From: 0, To: tr.Len()})
	hubtest.WaitFor(t, testTimeout, "hub send buffer to reach the window", func() bool {
		return spy.Counts().Buffered >= window
	})
	c.dcSend(chunkproto.Cancel{ID: 1})
	c.dcSend(chunkproto.Request{ID: 2, Track: small.ID(), From: 0, To: 5})
	c.pause.Unlock()
	got := 0
	for {
		select {
		case ch := <-c.chunks:
			if ch.Track == tr.ID() {
				if ch.Seq != got {
					t.Fatalf("chunk %d, want %d", ch.Seq, got)
				}
				got++
				continue
			}
			// The first chunk of request 2: every chunk of request 1 sent
			// before the cancel was processed arrived before it.
			if ch.Seq != 0 {
				t.Fatalf("small chunk %d first", ch.Seq)
			}
			for seq := 1; seq < 5; seq++ {
				if ch := c.nextChunk(); ch.Track != small.ID() || ch.Seq != seq {
					t.Fatalf("got %s/%d", ch.Track, ch.Seq)
				}
			}
		case <-c.ctx.Done():
			t.Fatal("timeout")
		}
		break
	}
	if m := c.nextText(); m != (chunkproto.Done{ID: 2}) {
		t.Fatalf("got %#v, want done 2 (and no done 1)", m)
	}
	if got >= tr.Len() {
		t.Fatalf("cancel did not stop the range: %d chunks", got)
	}
	t.Logf("cancel after %d of %d chunks", got, tr.Len())

	// Replace: a new request for the same track replaces the running one.
	c.pause.Lock()
	c.dcSend(chunkproto.Request{ID: 3, Track: tr.ID(), From: 0, To: tr.Len()})
	hubtest.WaitFor(t, testTimeout, "hub send buffer to reach the window", func() bool {
		return spy.Counts().Buffered >= window
	})
	c.dcSend(chunkproto.Request{ID: 4, Track: tr.ID(), From: 190, To: 200})
	c.pause.Unlock()
	n := 0
	for {
		ch := c.nextChunk()
		if ch.Seq == 190 && n != 190 {
			break
		}
		if ch.Seq != n {
			t.Fatalf("range 3: chunk %d, want %d", ch.Seq, n)
		}
		n++
	}
	for seq := 191; seq < 200; seq++ {
		if ch := c.nextChunk(); ch.Seq != seq {
			t.Fatalf("range 4: chunk %d, want %d", ch.Seq, seq)
		}
	}
	if m := c.nextText(); m != (chunkproto.Done{ID: 4}) {
		t.Fatalf("got %#v, want done 4", m)
	}
}

func TestTooManyRequests(t *testing.T) {
	t.Parallel()
	var tracks []*testtrack.Track
	for i := range 5 {
		tracks = append(tracks, testtrack.New(uint64(10+i), 20, testtrack.Size(64<<10)))
	}
	spy := hubtest.NewSpy()
	const window = 128 << 10
	url := hubtest.New(t, hub.Config{Metrics: spy, SendWindow: window, MaxRequests: 4}, hubtest.WithTracks(tracks...)).WSURL
	c := connect(t, url, clientAPI(), signaling.Hello{})
	c.pause.Lock()
	for i := range 4 {
		c.dcSend(chunkproto.Request{ID: uint32(i + 1), Track: tracks[i].ID(), From: 0, To: 20})
	}
	hubtest.WaitFor(t, testTimeout, "hub send buffer to reach the window", func() bool {
		return spy.Counts().Buffered >= window
	})
	c.dcSend(chunkproto.Request{ID: 5, Track: tracks[4].ID(), From: 0, To: 20})
	c.dcSend(chunkproto.Request{ID: 2, Track: tracks[4].ID(), From: 0, To: 20})
	c.pause.Unlock()
	next := map[string]int{}
	var texts []chunkproto.Message
	for len(texts) < 6 {
		select {
		case ch := <-c.chunks:
			if ch.Seq != next[ch.Track] {
				t.Fatalf("track %s: chunk %d, want %d", ch.Track, ch.Seq, next[ch.Track])
			}
			next[ch.Track]++
		case m := <-c.text:
			texts = append(texts, m)
		case <-c.ctx.Done():
			t.Fatalf("timeout; texts so far %#v", texts)
		}
	}
	want := map[chunkproto.Message]bool{
		chunkproto.Error{ID: 5, Code: chunkproto.CodeTooManyRequests, Message: "at most 4 ranges in flight"}: true,
		chunkproto.Error{ID: 2, Code: chunkproto.CodeDuplicateID, Message: "request 2 is in flight"}:         true,
		chunkproto.Done{ID: 1}: true, chunkproto.Done{ID: 2}: true, chunkproto.Done{ID: 3}: true, chunkproto.Done{ID: 4}: true,
	}
	for _, m := range texts {
		if !want[m] {
			t.Errorf("unexpected %#v", m)
		}
		delete(want, m)
	}
	for i := range 4 {
		if next[tracks[i].ID()] != 20 {
			t.Errorf("track %d: %d chunks", i, next[tracks[i].ID()])
		}
	}
}

func TestHandshakeErrors(t *testing.T) {
	t.Parallel()
	spy := hubtest.NewSpy()
	url := hubtest.New(t, hub.Config{Metrics: spy, MaxPeers: 1}).WSURL

	c := dial(t, url)
	c.send(signaling.Lookup{Track: strings.Repeat("a", 32)})
	if e, ok := c.readRaw().(signaling.Error); !ok || e.Code != signaling.CodeHelloRequired {
		t.Fatalf("got %#v", e)
	}
	go c.readLoop()
	if s := c.closeStatus(); s != websocket.StatusPolicyViolation {
		t.Fatalf("close status %v", s)
	}

	c = dial(t, url)
	c.send(signaling.Hello{Version: 2})
	if e, ok := c.readRaw().(signaling.Error); !ok || e.Code != signaling.CodeBadVersion {
		t.Fatalf("got %#v", e)
	}
	go c.readLoop()
	if s := c.closeStatus(); s != websocket.StatusPolicyViolation {
		t.Fatalf("close status %v", s)
	}

	c = dial(t, url)
	if err := c.ws.Write(c.ctx, websocket.MessageText, []byte(`{"type":"hello","version":1,"pad":"`+strings.Repeat("x", signaling.MaxMessageSize)+`"}`)); err != nil {
		t.Fatal(err)
	}
	go c.readLoop()
	if s := c.closeStatus(); s != websocket.StatusMessageTooBig {
		t.Fatalf("close status %v", s)
	}

	// One peer fits; it may send junk and stay; a second peer is refused.
	api := clientAPI()
	first := connect(t, url, api, signaling.Hello{})
	if err := first.ws.Write(first.ctx, websocket.MessageText, []byte(`{"type":"nope"}`)); err != nil {
		t.Fatal(err)
	}
	if e := waitFor[signaling.Error](first); e.Code != signaling.CodeBadMessage {
		t.Fatalf("got %#v", e)
	}
	first.send(signaling.Welcome{PeerID: "p-x"}) // a hub→peer type
	if e := waitFor[signaling.Error](first); e.Code != signaling.CodeBadMessage || e.Ref != signaling.TypeWelcome {
		t.Fatalf("got %#v", e)
	}
	c = dial(t, url)
	c.send(signaling.Hello{Version: 1})
	if e, ok := c.readRaw().(signaling.Error); !ok || e.Code != signaling.CodeServerFull {
		t.Fatalf("got %#v", e)
	}
	go c.readLoop()
	if s := c.closeStatus(); s != websocket.StatusTryAgainLater {
		t.Fatalf("close status %v", s)
	}
	for _, r := range []string{"too_large", signaling.CodeBadMessage, signaling.CodeServerFull} {
		if spy.Counts().Rejected[r] == 0 {
			t.Errorf("rejection %q not counted", r)
		}
	}
}

func TestUDPMux(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
	tr := testtrack.New(6, 8, testtrack.Size(4000))
	srv := hubtest.New(t, hub.Config{UDPPort: port}, hubtest.WithTracks(tr))
	h, url := srv.Hub, srv.WSURL
	if len(h.UDPAddrs()) == 0 {
		t.Fatal("no mux addresses")
	}
	api := clientAPI()
	for i := range 2 {
		c := connect(t, url, api, signaling.Hello{})
		c.dcSend(chunkproto.Request{ID: uint32(i), Track: tr.ID(), From: 0, To: 8})
		c.receiveRange(tr, uint32(i), 0, 8)
	}
	t.Logf("mux on %v", h.UDPAddrs())
}

func TestConnectTimeoutAndShutdown(t *testing.T) {
	t.Parallel()
	st := hubtest.OpenStore(t)
	srv := hubtest.New(t, hub.Config{ConnectTimeout: 200 * time.Millisecond}, hubtest.WithStore(st))
	url := srv.WSURL

	// A peer that never answers the offer is dropped.
	c := dial(t, url)
	c.send(signaling.Hello{Version: signaling.Version})
	if _, ok := c.readRaw().(signaling.Welcome); !ok {
		t.Fatal("no welcome")
	}
	go c.readLoopRaw()
	if s := c.closeStatus(); s != websocket.StatusInternalError {
		t.Fatalf("close status %v", s)
	}

	// Close disconnects connected peers with "going away".
	srv = hubtest.New(t, hub.Config{}, hubtest.WithStore(st))
	h, url := srv.Hub, srv.WSURL
	ok := connect(t, url, clientAPI(), signaling.Hello{})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if s := ok.closeStatus(); s != websocket.StatusGoingAway {
		t.Fatalf("close status %v", s)
	}
	if h.Peers() != 0 {
		t.Fatalf("%d peers after close", h.Peers())
	}
}

func TestPionRoutineWarningsAreDebug(t *testing.T) {
	t.Parallel()
	for msg, want := range map[string]slog.Level{
		"Failed to read from candidate udp4 host 192.0.2.2:8443: io: read/write on closed pipe": slog.LevelDebug,
		"Failed to ping without candidate pairs. Connection is not possible yet.":               slog.LevelDebug,
		"failed to write packets on netConn: dtls fatal: conn is closed":                        slog.LevelDebug,
		"Incoming DataChannel message larger then Max Message size 65563":                       slog.LevelWarn,
	} {
		if got := hub.PionLevel(slog.LevelWarn, msg); got != want {
			t.Errorf("hub.PionLevel(%q) = %v, want %v", msg, got, want)
		}
	}
}
