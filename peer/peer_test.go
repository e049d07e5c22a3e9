package peer

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/store"
)

// testEnv is a hub (package hubtest) with a bolt store of synthetic tracks.
type testEnv struct {
	t   *testing.T
	url string // the hub's base URL, for the peers
	st  store.Store
	// tracks are the manifests of the stored tracks, of 4000-byte chunks.
	tracks []*media.Manifest
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func newTestEnv(t *testing.T, tracks int) *testEnv {
	return newTestEnvWith(t, tracks, 40, nil)
}

// newTestEnvWith is newTestEnv with tracks of n chunks and the hub's
// configuration changed by mod.
func newTestEnvWith(t *testing.T, tracks, n int, mod func(*hub.Config)) *testEnv {
	t.Helper()
	cfg := hub.Config{Logger: testLogger(t)}
	if mod != nil {
		mod(&cfg)
	}
	srv := hubtest.New(t, cfg, hubtest.WithTracks(testtrack.List(tracks, n)...))
	return &testEnv{t: t, url: srv.URL, st: srv.Store, tracks: testtrack.Manifests(srv.Tracks...)}
}

// peer dials a peer with the test defaults, changed by mod.
func (env *testEnv) peer(mod func(*Config)) *Peer {
	env.t.Helper()
	cfg := Config{
		HubURL: env.url, Manifests: env.st, Speed: 20, ICELoopback: true,
		Logger: testLogger(env.t), StatsInterval: -1,
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p, err := Dial(ctx, cfg)
	if err != nil {
		env.t.Fatal(err)
	}
	env.t.Cleanup(func() { p.Close() })
	return p
}

func play(t *testing.T, p *Peer, id string) PlaybackResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := p.Play(ctx, id)
	if err != nil {
		t.Fatalf("Play: %v", err)
	}
	t.Logf("%s: %+v", p.ID(), res)
	return res
}

func checkComplete(t *testing.T, p *Peer, res PlaybackResult, m *media.Manifest) {
	t.Helper()
	if !res.Complete {
		t.Errorf("playback not complete: %+v", res)
	}
	if res.CorruptAccepted != 0 {
		t.Errorf("corrupt chunks accepted: %d", res.CorruptAccepted)
	}
	ct, ok := p.Cache().Peek(m.ID)
	if !ok {
		t.Fatalf("completed track not cached")
	}
	for seq, c := range ct.Chunks {
		if !VerifyChunk(m, seq, c) {
			t.Fatalf("cached chunk %d differs from the store's", seq)
		}
	}
}

func TestInstantStartFromHub(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, 1)
	m := env.tracks[0]
	p := env.peer(nil)
	res := play(t, p, m.ID)
	checkComplete(t, p, res, m)
	if res.StartLatency <= 0 {
		t.Errorf("start latency %v", res.StartLatency)
	}
	if res.ServerBytes < m.Size || res.P2PBytes != 0 {
		t.Errorf("server %d p2p %d bytes, want all %d from the hub", res.ServerBytes, res.P2PBytes, m.Size)
	}
	if res.Stalls != 0 {
		t.Errorf("%d stalls", res.Stalls)
	}
	// Played again: from the cache.
	res2 := play(t, p, m.ID)
	if !res2.FromCache || res2.CacheBytes != m.Size || res2.ServerBytes != 0 {
		t.Errorf("second playback not from the cache: %+v", res2)
	}
	if st := p.Stats(); st.CacheBytes != m.Size || st.Playbacks != 2 || st.Complete != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestSecondPeerStreamsFromCompleter(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, 1)
	m := env.tracks[0]
	a := env.peer(nil)
	checkComplete(t, a, play(t, a, m.ID), m)
	b := env.peer(nil)
	res := play(t, b, m.ID)
	checkComplete(t, b, res, m)
	if res.P2PBytes <= res.ServerBytes {
		t.Errorf("p2p %d bytes <= server %d bytes", res.P2PBytes, res.ServerBytes)
	}
	if res.HashFailures != 0 || res.Seeders == 0 {
		t.Errorf("hash failures %d, seeders %d", res.HashFailures, res.Seeders)
	}
	if up := a.Stats().UploadedBytes; up < res.P2PBytes {
		t.Errorf("seeder uploaded %d bytes, leecher got %d", up, res.P2PBytes)
	}
	// A third peer: two seeders are known now; it also gets the track from peers.
	c := env.peer(nil)
	res3 := play(t, c, m.ID)
	checkComplete(t, c, res3, m)
	if res3.P2PBytes <= res3.ServerBytes {
		t.Errorf("third peer: p2p %d bytes <= server %d bytes", res3.P2PBytes, res3.ServerBytes)
	}
}

type playOut struct {
	res PlaybackResult
	err error
}

func playAsync(p *Peer, id string) <-chan playOut {
	out := make(chan playOut, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := p.Play(ctx, id)
		out <- playOut{res, err}
	}()
	return out
}

func TestUploadCapRespected(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, 1)
	m := env.tracks[0]
	s := env.peer(func(c *Config) { c.UploadCap = 1 })
	checkComplete(t, s, play(t, s, m.ID), m)
	// L1 plays slowly and asks the seeder only 5 s ahead, so it holds the
	// seeder's only slot for seconds.
	l1 := env.peer(func(c *Config) { c.Speed = 5; c.Sched.PeerAheadMS = 5000 })
	out1 := playAsync(l1, m.ID)
	hubtest.WaitFor(t, 10*time.Second, "L1 to stream from the seeder", func() bool { return l1.Stats().P2PBytes > 0 })
	l2 := env.peer(nil)
	res2 := play(t, l2, m.ID)
	checkComplete(t, l2, res2, m)
	// L2 may take chunks from L1, a partial holder, but none from the
	// seeder: what L2 got from peers beyond what L1 uploaded came from it.
	if fromSeeder := res2.P2PBytes - l1.Stats().UploadedBytes; fromSeeder > 0 {
		t.Errorf("L2 got %d bytes from the seeder while its only slot was taken (%+v)", fromSeeder, res2)
	}
	r1 := <-out1
	if r1.err != nil {
		t.Fatal(r1.err)
	}
	checkComplete(t, l1, r1.res, m)
	if r1.res.P2PBytes <= r1.res.ServerBytes {
		t.Errorf("L1: p2p %d <= server %d", r1.res.P2PBytes, r1.res.ServerBytes)
	}
}

func TestSeederVanishesMidTrack(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, 1)
	m := env.tracks[0]
	s := env.peer(nil)
	checkComplete(t, s, play(t, s, m.ID), m)
	l := env.peer(func(c *Config) { c.Speed = 10; c.Sched.PeerAheadMS = 6000 })
	out := playAsync(l, m.ID)
	hubtest.WaitFor(t, 10*time.Second, "the leecher to stream from the seeder", func() bool { return l.Stats().P2PBytes > 10*4000 })
	s.Close()
	r := <-out
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkComplete(t, l, r.res, m)
	if r.res.Stalls != 0 {
		t.Errorf("%d stalls after the seeder left", r.res.Stalls)
	}
	if r.res.P2PBytes == 0 || r.res.ServerBytes < m.Size/4 {
		t.Errorf("p2p %d server %d: want both, the end from the hub", r.res.P2PBytes, r.res.ServerBytes)
	}
}

func TestCorruptSeederBypassed(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, 1)
	m := env.tracks[0]
	bad := env.peer(func(c *Config) { c.Corrupt = true }) // the deprecated form of FaultBadBytes
	checkComplete(t, bad, play(t, bad, m.ID), m)
	l := env.peer(nil)
	res := play(t, l, m.ID)
	checkComplete(t, l, res, m)
	if res.HashFailures == 0 {
		t.Errorf("no hash failure detected from a corrupting seeder: %+v", res)
	}
	if st := l.Stats(); st.CorruptAccepted != 0 || st.HashFailures == 0 {
		t.Errorf("stats %+v", st)
	}
	if bad.Stats().UploadedBytes == 0 {
		t.Errorf("the corrupting seeder was never used; the test proves nothing")
	}
}

func TestConnectedPeerAskedFirst(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, 2)
	x, y := env.tracks[0], env.tracks[1]
	a := env.peer(nil)
	checkComplete(t, a, play(t, a, x.ID), x)
	checkComplete(t, a, play(t, a, y.ID), y)
	b := env.peer(nil)
	resX := play(t, b, x.ID)
	checkComplete(t, b, resX, x)
	if resX.Seeders == 0 || resX.Lookups == 0 {
		t.Fatalf("first track: seeders %d lookups %d, want a seeder from the tracker", resX.Seeders, resX.Lookups)
	}
	// b is still connected to a, which holds y too: have, no tracker lookup.
	resY := play(t, b, y.ID)
	checkComplete(t, b, resY, y)
	if resY.Lookups != 0 || resY.Seeders != 1 {
		t.Errorf("second track: lookups %d seeders %d, want the connected peer without a lookup", resY.Lookups, resY.Seeders)
	}
	if resY.P2PBytes <= resY.ServerBytes {
		t.Errorf("second track: p2p %d <= server %d", resY.P2PBytes, resY.ServerBytes)
	}
}

// TestDialRetries: Dial tries DialAttempts times with the reconnection
// backoff between attempts; a hub that refuses the first two upgrades is
// reached on the third attempt, and two attempts are not enough.
func TestDialRetries(t *testing.T) {
	env := newTestEnv(t, 1)
	target, err := url.Parse(env.url)
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" && refused.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	dial := func(attempts int) (*Peer, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return Dial(ctx, Config{HubURL: front.URL, Manifests: env.st, ICELoopback: true, Logger: testLogger(t),
			StatsInterval: -1, DialAttempts: attempts, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 20 * time.Millisecond})
	}
	if _, err := dial(2); err == nil || !strings.Contains(err.Error(), "(2 attempts)") {
		t.Fatalf("two attempts against a hub refusing two: err %v, want a failure after 2 attempts", err)
	}
	refused.Store(0)
	p, err := dial(3)
	if err != nil {
		t.Fatalf("three attempts against a hub refusing two: %v", err)
	}
	defer p.Close()
	if n := refused.Load(); n != 3 {
		t.Errorf("upgrades seen: %d, want 3 (two refused, one accepted)", n)
	}
	if !p.Connected() {
		t.Error("peer not connected after Dial")
	}
}

// TestICEOverTCP: a peer whose network blocks UDP (ICE over TCP only)
// still gets the hub DataChannel from a hub that accepts ICE over TCP, and
// plays a track from it; against a hub without it, it cannot connect.
func TestICEOverTCP(t *testing.T) {
	env := newTestEnvWith(t, 1, 20, func(c *hub.Config) { c.TCPPort = -1 })
	tcpOnly := func(c *Config) { c.ICENetworkTypes = []webrtc.NetworkType{webrtc.NetworkTypeTCP4} }
	p := env.peer(tcpOnly)
	res := play(t, p, env.tracks[0].ID)
	checkComplete(t, p, res, env.tracks[0])
	if res.ServerBytes != env.tracks[0].Size {
		t.Errorf("server bytes %d, want the whole track (%d) over the hub DataChannel", res.ServerBytes, env.tracks[0].Size)
	}

	udpOnly := newTestEnvWith(t, 1, 20, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Dial(ctx, Config{HubURL: udpOnly.url, Manifests: udpOnly.st, ICELoopback: true, Logger: testLogger(t),
		StatsInterval: -1, DialAttempts: 1, ConnectTimeout: 3 * time.Second,
		ICENetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeTCP4}})
	if err == nil {
		t.Fatal("a TCP-only peer connected to a hub without ICE over TCP")
	}
}
