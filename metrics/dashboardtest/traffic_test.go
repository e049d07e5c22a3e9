package dashboardtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztream/ztream/boltstore"
	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/metrics"
	"github.com/ztream/ztream/metrics/hubmetrics"
	"github.com/ztream/ztream/server"
	"github.com/ztream/ztream/signaling"
	"github.com/ztream/ztream/store"
)

// fixtures are the tracks put into the store (real MP3 files of the media tests).
var fixtures = []string{
	filepath.Join("..", "..", "media", "testdata", "cbr320_44k_joint.mp3"),
	filepath.Join("..", "..", "media", "testdata", "mono_44k.mp3"),
}

// ztreamEnv is a Ztream HTTP handler on a real boltstore, served on
// 127.0.0.1, plus the traffic that feeds its metrics.
type ztreamEnv struct {
	addr    string // host:port of the handler
	base    string // http://addr
	met     *metrics.Metrics
	tracks  []*media.Manifest
	traffic func(ctx context.Context, e *ztreamEnv) error
}

// startZtream opens a boltstore in a temporary directory, stores the
// fixtures and serves server.NewHandler on 127.0.0.1 until the test ends.
func startZtream(t *testing.T) *ztreamEnv {
	t.Helper()
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	env := &ztreamEnv{met: metrics.New(), traffic: syntheticTraffic}
	for _, path := range fixtures {
		env.tracks = append(env.tracks, putTrack(t, st, path))
	}
	h := server.NewHandler(server.Config{Store: env.met.InstrumentStore(st), Metrics: env.met})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	env.base = srv.URL
	env.addr = strings.TrimPrefix(srv.URL, "http://")
	return env
}

func putTrack(t *testing.T, st store.Store, path string) *media.Manifest {
	t.Helper()
	tr, err := media.OpenFile(path)
	if err != nil {
		t.Fatalf("analyzing %s: %v", path, err)
	}
	defer tr.Close()
	if err := st.PutTrack(context.Background(), tr.Manifest, tr.Chunk); err != nil {
		t.Fatalf("storing %s: %v", path, err)
	}
	return tr.Manifest
}

// runTraffic feeds the metrics until ctx ends.
func (e *ztreamEnv) runTraffic(ctx context.Context) error { return e.traffic(ctx, e) }

// syntheticTraffic is real HTTP chunk fetches through the handler (server
// bytes, chunks served via http, store latency) plus the calls the hub makes
// on its events, including peers' stats reports through real PeerAccounts.
// It stands in for a load run with the hub and Go peers.
func syntheticTraffic(ctx context.Context, e *ztreamEnv) error {
	const peers = 4
	hc := &http.Client{Timeout: 5 * time.Second}
	// The same adapter the hub is given, so stats go through PeerAccounts.
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
			sim[(i/8)%peers].acct.GrantDownload(tr.Size)
			sim[(i/8+1)%peers].acct.GrantUpload(tr.Size)
			m.SeederLookup(metrics.LookupFound, time.Duration(20+i%50)*time.Millisecond)
		case 3:
			m.SeederLookup("no_candidates", time.Millisecond)
		case 5:
			m.SeederLookup("timeout", 1500*time.Millisecond)
		case 7:
			m.SignalingRejected("not_paired")
			if i%16 == 7 {
				m.PairFailed()
			}
		}
		// Peers receive chunks from each other and report every 1.2 s.
		p := sim[i%peers]
		p.received += int64(size)
		if time.Since(p.lastReport) >= 1200*time.Millisecond {
			r := signaling.Stats{PeerBytes: p.received, UploadedBytes: p.received / 2, StartupMS: []float64{float64(80 + i%300)}}
			if i%5 == 0 {
				r.Stalls, r.BadChunks = 1, 1
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
