package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/metrics"
)

// newServer serves a hub with the whole HTTP surface (/ws, /api, /metrics)
// over tracks synthetic tracks of 30 chunks of 3000 bytes.
func newServer(t *testing.T, tracks int) string {
	t.Helper()
	return hubtest.New(t, hub.Config{}, hubtest.WithMetrics(metrics.New()),
		hubtest.WithTracks(testtrack.List(tracks, 30, testtrack.Size(3000))...)).URL
}

func TestRunP2P(t *testing.T) {
	t.Parallel()
	url := newServer(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var progress bytes.Buffer
	rep, err := Run(ctx, Config{Server: url, Peers: 5, Duration: 4 * time.Second, Ramp: time.Second,
		Speed: 30, Progress: &progress, ProgressEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	if rep.Playbacks == 0 || rep.PlaybacksComplete != rep.Playbacks || rep.PlaybackErrors != 0 {
		t.Errorf("playbacks %d complete %d errors %d", rep.Playbacks, rep.PlaybacksComplete, rep.PlaybackErrors)
	}
	if rep.P2PBytes == 0 || rep.OffloadRatio <= 0 {
		t.Errorf("no p2p traffic: %+v", rep)
	}
	if rep.Pairs.Opened == 0 {
		t.Errorf("p2p bytes without a pair opened: %+v", rep.Pairs)
	}
	if by := rep.ServerBytesByRule; by.Emergency+by.FirstCopy+by.Orphan != rep.ServerBytes {
		t.Errorf("server bytes %d, by rule %+v: the parts do not add up", rep.ServerBytes, by)
	}
	if d := rep.DuplicateBytes; d.Server > rep.ServerBytes || d.P2P > rep.P2PBytes {
		t.Errorf("duplicate bytes %+v exceed server %d / p2p %d", d, rep.ServerBytes, rep.P2PBytes)
	}
	if rep.CorruptAccepted != 0 || rep.HashFailures != 0 {
		t.Errorf("integrity: %+v", rep)
	}
	if rep.StartupMS.N == 0 || rep.UploadedBytes < rep.P2PBytes {
		t.Errorf("startup n=%d uploaded %d p2p %d", rep.StartupMS.N, rep.UploadedBytes, rep.P2PBytes)
	}
	if !strings.Contains(progress.String(), "offload") {
		t.Errorf("no progress lines: %q", progress.String())
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
}

func TestRunServerOnly(t *testing.T) {
	t.Parallel()
	url := newServer(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, Config{Server: url, Peers: 3, Duration: 2 * time.Second, Speed: 30, DisableP2P: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.P2PBytes != 0 || rep.OffloadRatio != 0 || rep.ServerBytes == 0 {
		t.Errorf("server-only run: %+v", rep)
	}
	if by := rep.ServerBytesByRule; by.Emergency != rep.ServerBytes || by.FirstCopy != 0 || by.Orphan != 0 {
		t.Errorf("server-only run: server bytes %d by rule %+v, want all of them emergency (rules 3 and 5)", rep.ServerBytes, by)
	}
	if rep.PlaybacksComplete != rep.Playbacks || rep.Playbacks == 0 {
		t.Errorf("playbacks %d complete %d", rep.Playbacks, rep.PlaybacksComplete)
	}
}

func TestRunUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := Run(ctx, Config{Server: url, Peers: 1, Duration: time.Second}); err == nil {
		t.Fatal("Run against a closed server succeeded")
	}
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("[]"))
	}))
	defer empty.Close()
	if _, err := Run(ctx, Config{Server: empty.URL, Peers: 1, Duration: time.Second}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("Run against an empty catalog: %v", err)
	}
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	v := make([]float64, 100)
	for i := range v {
		v[99-i] = float64(i + 1) // 100..1, unsorted
	}
	p := percentiles(v)
	if p.N != 100 || p.P50 != 50 || p.P95 != 95 || p.P99 != 99 || p.Max != 100 {
		t.Fatalf("percentiles = %+v", p)
	}
	if (percentiles(nil) != Percentiles{}) {
		t.Fatal("percentiles of nothing")
	}
}

// TestRunHostile: corrupt seeders and churn; every playback completes,
// nothing corrupt is accepted, the faults are counted and detected.
func TestRunHostile(t *testing.T) {
	t.Parallel()
	url := newServer(t, 1) // one track: the first (corrupt) holder is asked
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rep, err := Run(ctx, Config{Server: url, Peers: 6, Duration: 5 * time.Second, Ramp: 2 * time.Second,
		Speed: 30, CorruptPeers: 2, Churn: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	if rep.Playbacks == 0 || rep.PlaybacksComplete != rep.Playbacks || rep.PlaybackErrors != 0 {
		t.Errorf("playbacks %d complete %d errors %d", rep.Playbacks, rep.PlaybacksComplete, rep.PlaybackErrors)
	}
	if rep.CorruptAccepted != 0 {
		t.Errorf("corrupt chunks accepted: %d", rep.CorruptAccepted)
	}
	inj, det := rep.FaultsInjected, rep.FaultsDetected
	if inj.CorruptPeers != 2 || inj.Modes["bad_bytes"] != 1 || inj.Modes["wrong_seq"] != 1 {
		t.Errorf("corrupt peers %d modes %v, want one bad_bytes and one wrong_seq", inj.CorruptPeers, inj.Modes)
	}
	if inj.FaultyChunks == 0 {
		t.Errorf("no faulty chunk served: the run tested nothing")
	}
	if det.HashFailures == 0 || det.ReportsSent == 0 || int64(rep.HashFailures) > det.HashFailures {
		t.Errorf("faults detected %+v (playbacks counted %d hash failures)", det, rep.HashFailures)
	}
	if det.Hub == nil || det.Hub.ReportsAccepted == 0 || det.Hub.ReportsRejected != 0 {
		t.Errorf("hub report counts %+v, want some accepted and none refused", det.Hub)
	}
	if inj.ChurnLeaves == 0 || inj.RejoinFailures != 0 {
		t.Errorf("churn leaves %d rejoin failures %d", inj.ChurnLeaves, inj.RejoinFailures)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"faults_injected"`, `"churn_leaves"`, `"faults_detected"`, `"reports_sent"`, `"offload_ratio"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("JSON lacks %s: %s", k, b)
		}
	}
}

func TestCorruptIndex(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ n, c int }{{12, 2}, {12, 5}, {7, 7}, {5, 0}, {16, 3}} {
		seen := map[int]bool{}
		for i := 0; i < tc.n; i++ {
			if k := corruptIndex(i, tc.n, tc.c); k >= 0 {
				if seen[k] || k >= tc.c {
					t.Fatalf("n=%d c=%d: index %d repeated or out of range", tc.n, tc.c, k)
				}
				seen[k] = true
			}
		}
		if len(seen) != tc.c {
			t.Errorf("n=%d c=%d: %d corrupt peers", tc.n, tc.c, len(seen))
		}
	}
}
