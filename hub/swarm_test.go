package hub_test

import (
	"context"
	"encoding/base64"
	"slices"
	"sync"
	"testing"

	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/signaling"
	"github.com/ztream/ztream/store"
)

// TestHoldingMakesPartialHolders: a peer that announces some chunks of a
// track with holding is a candidate for it; a bitfield of the wrong length,
// an unknown track or bits past the end are refused and change nothing.
func TestHoldingMakesPartialHolders(t *testing.T) {
	tr := testtrack.New(40, 20, testtrack.Size(100))
	spy := hubtest.NewSpy()
	url := hubtest.New(t, hub.Config{Metrics: spy}, hubtest.WithTracks(tr)).WSURL
	api := clientAPI()
	s := connect(t, url, api, signaling.Hello{})
	l := connect(t, url, api, signaling.Hello{})

	lookupFail(t, l, tr.ID(), signaling.ReasonNoCandidates)

	present := make([]bool, 20)
	for i := 0; i < 5; i++ {
		present[i] = true
	}
	bad := signaling.NewHolding(tr.ID(), present[:16]) // 16 chunks: the track has 20
	s.send(bad)
	if e := waitFor[signaling.Error](s); e.Code != signaling.CodeBadMessage || e.Ref != signaling.TypeHolding {
		t.Fatalf("wrong chunk count: %+v", e)
	}
	unknown := signaling.NewHolding("ffffffffffffffffffffffffffffffff", present)
	s.send(unknown)
	if e := waitFor[signaling.Error](s); e.Code != signaling.CodeUnknownTrack {
		t.Fatalf("unknown track: %+v", e)
	}
	// Bits past the end never reach the hub's logic: the decoder refuses them.
	past := signaling.Holding{Track: tr.ID(), Chunks: 20, Have: base64.StdEncoding.EncodeToString([]byte{0, 0, 0x01})}
	s.send(past)
	if e := waitFor[signaling.Error](s); e.Code != signaling.CodeBadMessage {
		t.Fatalf("bits past the end: %+v", e)
	}
	barrier(t, s)
	lookupFail(t, l, tr.ID(), signaling.ReasonNoCandidates)

	s.send(signaling.NewHolding(tr.ID(), present))
	barrier(t, s)
	// A lookup that does not accept partial holders still finds nobody.
	lookupFail(t, l, tr.ID(), signaling.ReasonNoCandidates)
	l.send(signaling.Lookup{Track: tr.ID(), Partial: true, From: 2})
	ask := waitFor[signaling.CanUpload](s)
	s.send(signaling.UploadReply{LookupID: ask.LookupID, OK: true})
	if res := waitFor[signaling.LookupResult](l); res.PeerID != s.id || len(res.Peers) != 1 {
		t.Fatalf("partial lookup: %+v", res)
	}
}

// TestLookupWantsSeveralSeeders: a lookup with want pairs the requester with
// every candidate that says yes, one pair each, listed in lookup_result.
func TestLookupWantsSeveralSeeders(t *testing.T) {
	tr := testtrack.New(41, 10, testtrack.Size(100))
	spy := hubtest.NewSpy()
	url := hubtest.New(t, hub.Config{Metrics: spy}, hubtest.WithTracks(tr)).WSURL
	api := clientAPI()
	a := connect(t, url, api, signaling.Hello{Cached: []string{tr.ID()}})
	b := connect(t, url, api, signaling.Hello{Cached: []string{tr.ID()}})
	l := connect(t, url, api, signaling.Hello{})

	l.send(signaling.Lookup{Track: tr.ID(), Want: 2})
	for _, s := range []*client{a, b} {
		ask := waitFor[signaling.CanUpload](s)
		s.send(signaling.UploadReply{LookupID: ask.LookupID, OK: true})
	}
	res := waitFor[signaling.LookupResult](l)
	if len(res.Peers) != 2 || res.PeerID != res.Peers[0].PeerID || res.PairID != res.Peers[0].PairID {
		t.Fatalf("result %+v", res)
	}
	seen := map[string]bool{}
	for _, p := range res.Peers {
		seen[p.PeerID] = true
		pl := waitFor[signaling.Paired](l)
		if pl.Role != signaling.RoleLeecher || pl.Track != tr.ID() {
			t.Fatalf("paired %+v", pl)
		}
	}
	if !seen[a.id] || !seen[b.id] {
		t.Fatalf("peers %+v, want %s and %s", res.Peers, a.id, b.id)
	}
	for _, s := range []*client{a, b} {
		if ps := waitFor[signaling.Paired](s); ps.Role != signaling.RoleSeeder || ps.Peer != l.id {
			t.Fatalf("seeder paired %+v", ps)
		}
	}
	if n := spy.Counts().Brokered; n != 2 {
		t.Fatalf("pairs brokered %d", n)
	}
	// Out-of-range want is refused by the decoder.
	l.send(signaling.Lookup{Track: tr.ID(), Want: signaling.MaxLookupWant + 1})
	if e := waitFor[signaling.Error](l); e.Code != signaling.CodeBadMessage {
		t.Fatalf("want too large: %+v", e)
	}
}

// TestLookupBusyWhenHoldersAreFull: a holder at its upload cap makes the
// lookup end with busy, not no_candidates (nobody holds it).
func TestLookupBusyWhenHoldersAreFull(t *testing.T) {
	tr := testtrack.New(42, 10, testtrack.Size(100))
	url := hubtest.New(t, hub.Config{}, hubtest.WithTracks(tr)).WSURL
	api := clientAPI()
	s := connect(t, url, api, signaling.Hello{Cached: []string{tr.ID()}, UploadCap: 1})
	l1 := connect(t, url, api, signaling.Hello{})
	l2 := connect(t, url, api, signaling.Hello{})
	lookupOK(t, l1, s, tr.ID())
	lookupFail(t, l2, tr.ID(), signaling.ReasonBusy)
}

// TestDataChannelRateLimited: the hub's DataChannel refuses messages above
// its rate with rate_limited, and disconnects a peer that keeps going.
func TestDataChannelRateLimited(t *testing.T) {
	tr := testtrack.New(43, 4, testtrack.Size(100))
	spy := hubtest.NewSpy()
	url := hubtest.New(t, hub.Config{Metrics: spy, DataChannelRate: 1, DataChannelBurst: 4}, hubtest.WithTracks(tr)).WSURL
	c := connect(t, url, clientAPI(), signaling.Hello{})
	for i := 0; i < 4; i++ {
		c.dcSend(chunkproto.Have{Track: tr.ID()})
		if r, ok := c.nextText().(chunkproto.HaveReply); !ok || !r.OK {
			t.Fatalf("have %d: %+v", i, r)
		}
	}
	c.dcSend(chunkproto.Have{Track: tr.ID()})
	if e, ok := c.nextText().(chunkproto.Error); !ok || e.Code != chunkproto.CodeRateLimited {
		t.Fatalf("over the rate: %+v", e)
	}
	raw, err := chunkproto.EncodeMessage(chunkproto.Have{Track: tr.ID()})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		_ = c.dc.SendText(string(raw)) // the hub may have closed the channel already
	}
	if st := c.closeStatus(); st != 1008 {
		t.Fatalf("close status %d, want 1008", st)
	}
	if n := spy.Counts().Rejected["dc_rate_limited"]; n < 2 {
		t.Fatalf("dc_rate_limited counted %d", n)
	}
}

// TestFirstCopiesAreStriped: concurrent first-copy requests of one cold
// track get disjoint stripes; a peer asking after every chunk went out gets
// none (done at once); a plain request is always served in full; a
// departed peer's chunks are first copies again.
func TestFirstCopiesAreStriped(t *testing.T) {
	tr := testtrack.New(44, 20, testtrack.Size(100))
	spy := hubtest.NewSpy()
	srv := hubtest.New(t, hub.Config{Metrics: spy, FirstCopyStripe: 8}, hubtest.WithTracks(tr))
	h, url := srv.Hub, srv.WSURL
	api := clientAPI()
	a := connect(t, url, api, signaling.Hello{})
	b := connect(t, url, api, signaling.Hello{})
	c := connect(t, url, api, signaling.Hello{})

	a.dcSend(chunkproto.Request{ID: 1, Track: tr.ID(), From: 0, To: 20, FirstCopy: true})
	a.receiveRange(tr, 1, 0, 8)
	b.dcSend(chunkproto.Request{ID: 1, Track: tr.ID(), From: 0, To: 20, FirstCopy: true})
	b.receiveRange(tr, 1, 8, 16)
	// a's own chunks do not count against it.
	a.dcSend(chunkproto.Request{ID: 2, Track: tr.ID(), From: 4, To: 20, FirstCopy: true})
	a.receiveRange(tr, 2, 4, 8)
	c.dcSend(chunkproto.Request{ID: 1, Track: tr.ID(), From: 16, To: 20, FirstCopy: true})
	c.receiveRange(tr, 1, 16, 20)
	c.dcSend(chunkproto.Request{ID: 2, Track: tr.ID(), From: 0, To: 16, FirstCopy: true})
	if m := c.nextText(); m != (chunkproto.Done{ID: 2}) {
		t.Fatalf("all chunks sent elsewhere: %#v, want done", m)
	}
	if n := spy.Counts().FirstCopySkips; n != 1 {
		t.Fatalf("first-copy skips %d", n)
	}
	// The emergency guarantee: a plain request is served in full.
	c.dcSend(chunkproto.Request{ID: 3, Track: tr.ID(), From: 0, To: 6})
	c.receiveRange(tr, 3, 0, 6)
	// b leaves: its stripe is a first copy again.
	_ = b.ws.CloseNow()
	hubtest.WaitFor(t, testTimeout, "b gone", func() bool { return !h.Connected(b.id) })
	c.dcSend(chunkproto.Request{ID: 4, Track: tr.ID(), From: 8, To: 16, FirstCopy: true})
	c.receiveRange(tr, 4, 8, 16)
}

// requesterStore records the requester (store.RequesterOf) of every
// manifest read.
type requesterStore struct {
	store.Store
	mu  sync.Mutex
	got map[string][]string // by track
}

func (s *requesterStore) Manifest(ctx context.Context, id string) (*media.Manifest, error) {
	s.mu.Lock()
	s.got[id] = append(s.got[id], store.RequesterOf(ctx))
	s.mu.Unlock()
	return s.Store.Manifest(ctx, id)
}

// TestStoreHearsTheClient: the store calls the hub makes for a peer name
// that peer's address (store.WithRequester), so that a store fetching on a
// read (package origin) can bound each client's share.
func TestStoreHearsTheClient(t *testing.T) {
	tr := testtrack.New(41, 20, testtrack.Size(100))
	st := &requesterStore{Store: hubtest.OpenStore(t), got: make(map[string][]string)}
	testtrack.Put(t, st, tr)
	url := hubtest.New(t, hub.Config{}, hubtest.WithStore(st)).WSURL
	c := connect(t, url, clientAPI(), signaling.Hello{})
	c.send(signaling.NewHolding(tr.ID(), make([]bool, 20)))
	barrier(t, c)
	st.mu.Lock()
	defer st.mu.Unlock()
	if got := st.got[tr.ID()]; len(got) == 0 || slices.ContainsFunc(got, func(k string) bool { return k != "127.0.0.1" }) {
		t.Errorf("the manifest reads for the peer named %q, want 127.0.0.1", got)
	}
}
