package dashboardtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/ztream/ztream/cluster"
	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/internal/natstest"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/loadgen"
	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/metrics"
	"github.com/ztream/ztream/metrics/hubmetrics"
	"github.com/ztream/ztream/origin"
	"github.com/ztream/ztream/server"
	"github.com/ztream/ztream/signaling"
	"github.com/ztream/ztream/store"
)

// trafficMode is how the test feeds the metrics.
type trafficMode struct {
	name string
	// withHub mounts a real hub at /ws.
	withHub bool
	// run drives traffic through the environment and returns when done
	// (it must stop by itself, well within the test budget).
	run func(ctx context.Context, t *testing.T, e *ztreamEnv) error
}

// Traffic modes: a load run of Go peers through a real hub, and synthetic
// traffic (HTTP chunk fetches plus the hub's metric calls made directly),
// which exercises every metric, including ones a short load run may leave
// at zero.
var (
	loadRunTraffic   = trafficMode{name: "loadrun", withHub: true, run: loadRun}
	syntheticTraffic = trafficMode{name: "synthetic", run: synthetic}
)

// ztreamEnv is the Ztream HTTP handler (and, in load-run mode, the hub) on a
// real boltstore, served on 127.0.0.1.
type ztreamEnv struct {
	addr   string // host:port of the handler
	base   string // http://addr
	met    *metrics.Metrics
	origin *metrics.OriginMetrics // serve --origin's, registered for its panels
	tracks []*media.Manifest
	// load is the load generator's report, after a load run.
	load *loadgen.Report
}

// startZtream opens a boltstore in a temporary directory, stores a few real
// MP3 fixtures and synthetic tracks (40 chunks of 4000 bytes: peers do not
// decode audio, and longer tracks give a load run time to seed), and serves
// server.NewHandler (with a hub at /ws when mode asks) on 127.0.0.1 until the
// test ends.
func startZtream(t *testing.T, mode trafficMode) *ztreamEnv {
	t.Helper()
	st := hubtest.OpenStore(t)
	env := &ztreamEnv{met: metrics.New()}
	env.origin = env.met.Origin()
	env.tracks = append(env.tracks, putFixtures(t, st, 2)...)
	opts := []hubtest.Option{hubtest.WithStore(st), hubtest.WithMetrics(env.met),
		hubtest.WithTracks(testtrack.List(3, 40)...)}
	if !mode.withHub {
		opts = append(opts, hubtest.WithHandler(func(s *hubtest.Server) http.Handler {
			return server.NewHandler(server.Config{Store: s.Store, Metrics: s.Metrics})
		}))
	}
	// The hub is in a cluster (of one, through a real NATS server), so that
	// the cluster panels have their series.
	nats := natstest.Start(t)
	c, err := cluster.New(cluster.Config{URLs: nats.URL, HubID: "dashboard-hub"})
	if err != nil {
		t.Fatal(err)
	}
	hubmetrics.WatchCluster(env.met, "dashboard-hub", c)
	srv := hubtest.New(t, hub.Config{Cluster: c}, opts...)
	env.tracks = append(env.tracks, testtrack.Manifests(srv.Tracks...)...)
	env.base = srv.URL
	env.addr = srv.Addr
	return env
}

// putFixtures stores up to n of the media package's MP3 test files.
func putFixtures(t *testing.T, st store.Store, n int) []*media.Manifest {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "media", "testdata", "*.mp3"))
	if err != nil {
		t.Fatalf("listing fixtures: %v", err)
	}
	var out []*media.Manifest
	for _, path := range paths {
		if len(out) == n {
			break
		}
		tr, err := media.OpenFile(path)
		if err != nil {
			continue // a fixture meant to be rejected
		}
		err = st.PutTrack(context.Background(), tr.Manifest, tr.Chunk)
		tr.Close()
		if err != nil {
			t.Fatalf("storing %s: %v", path, err)
		}
		out = append(out, tr.Manifest)
	}
	if len(out) == 0 {
		t.Fatalf("no usable MP3 fixture in media/testdata")
	}
	return out
}

// loadRun runs a few Go peers (package loadgen) against the hub: they play
// tracks, get the first chunks from the hub, find seeders through the
// tracker, stream from each other and report their stats.
func loadRun(ctx context.Context, t *testing.T, e *ztreamEnv) error {
	rep, err := loadgen.Run(ctx, loadgen.Config{
		Server:   e.base,
		Peers:    6,
		Duration: 10 * time.Second, // twice the peers' 5 s stats interval
		Ramp:     time.Second,
		Drain:    10 * time.Second,
		Speed:    20,
	})
	if err != nil {
		return fmt.Errorf("load run: %w", err)
	}
	t.Logf("load run: %d playbacks (%d complete), server %d B, p2p %d B, offload %.3f (as the peers count it)",
		rep.Playbacks, rep.PlaybacksComplete, rep.ServerBytes, rep.P2PBytes, rep.OffloadRatio)
	e.load = &rep
	return nil
}

// synthetic is real HTTP chunk fetches through the handler (server bytes,
// chunks served via http, store latency) plus the calls the hub makes on its
// events, through the same adapter the hub is given, for 6 s.
func synthetic(ctx context.Context, _ *testing.T, e *ztreamEnv) error {
	ctx, cancel := context.WithTimeout(ctx, 6*time.Second)
	defer cancel()
	const peers = 4
	hc := &http.Client{Timeout: 5 * time.Second}
	m := hubmetrics.New(e.met, metrics.Limits{})
	type simPeer struct {
		acct       hub.PeerMetrics
		lastReport time.Time
		received   int64 // p2p bytes since the previous report
	}
	sim := make([]*simPeer, peers)
	for i := range sim {
		m.PeerConnected()
		sim[i] = &simPeer{acct: m.OpenPeer(fmt.Sprint("p-", i)), lastReport: time.Now()}
	}
	defer func() {
		for _, p := range sim {
			p.acct.Close()
			m.PeerDisconnected()
		}
	}()

	reasons := origin.Reasons()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		tr := e.tracks[i%len(e.tracks)]
		seq := (i / len(e.tracks)) % len(tr.Chunks)
		// The HTTP fallback path: counted by the handler itself.
		if err := fetchChunk(ctx, hc, e.base, tr.ID, seq); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		// What the hub records as it works.
		size := tr.Chunks[seq].Size
		m.ChunkSent(size)
		m.AddBufferedBytes(int64(size))
		m.AddBufferedBytes(-int64(size))
		switch i % 8 {
		case 0:
			// A pair: the seeder may upload, the leecher download, one track.
			m.PairBrokered()
			m.SeederLookup(metrics.LookupFound, time.Duration(20+i%50)*time.Millisecond)
			sim[(i/8)%peers].acct.GrantDownload(tr.Size)
			sim[(i/8+1)%peers].acct.GrantUpload(tr.Size)
		case 3:
			m.SeederLookup(signaling.ReasonNoCandidates, time.Millisecond)
		case 5:
			m.SeederLookup(signaling.ReasonTimeout, 1500*time.Millisecond)
		case 7:
			m.SignalingRejected(signaling.CodeNotPaired)
			if i%16 == 7 {
				m.PairFailed()
				m.SeederReported(signaling.ReportHashMismatch, true)
			}
			if i%32 == 7 {
				m.SeederDropped()
			}
		}
		// What an origin does (package origin calls these).
		switch o := e.origin; i % 10 {
		case 0:
			o.OriginFetched("tags", 256<<10, time.Duration(5+i%20)*time.Millisecond)
		case 1:
			o.OriginCacheRequest("miss")
			o.OriginFetched("track", int64(tr.Size), time.Duration(100+i%400)*time.Millisecond)
			o.OriginCacheSize(int64(tr.Size)*int64(i/10+1), i/10+1)
		case 2, 3, 4, 5:
			o.OriginCacheRequest("hit")
		case 6:
			o.OriginCacheRequest("joined")
		case 7:
			o.OriginError(reasons[(i/10)%len(reasons)])
			o.OriginEvicted()
		case 8:
			o.OriginFetched("index", 40<<10, 30*time.Millisecond)
		}
		// Peers receive chunks from each other and report every 1.2 s.
		p := sim[i%peers]
		p.received += int64(size)
		if time.Since(p.lastReport) >= 1200*time.Millisecond {
			r := signaling.Stats{PeerBytes: p.received, UploadedBytes: p.received / 2, StartupMS: []float64{float64(80 + i%300)}}
			if i%5 == 0 {
				r.Stalls, r.BadChunks, r.EmergencyFetches = 1, 1, 1
			}
			p.acct.Report(r)
			p.received, p.lastReport = 0, time.Now()
		}
	}
}

// fetchChunk GETs one chunk through the API and checks its size.
func fetchChunk(ctx context.Context, hc *http.Client, base, id string, seq int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/tracks/%s/chunks/%d", base, id, seq), nil)
	if err != nil {
		return fmt.Errorf("chunk request: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("fetching chunk %d of %s: %w", seq, id, err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return fmt.Errorf("reading chunk %d of %s: %w", seq, id, err)
	}
	if resp.StatusCode != http.StatusOK || n == 0 {
		return errors.New("chunk " + fmt.Sprint(seq) + " of " + id + ": HTTP " + resp.Status)
	}
	return nil
}
