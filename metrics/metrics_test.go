package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// histogramCount returns the sample count of the unlabelled histogram name.
func histogramCount(t *testing.T, m *Metrics, name string) uint64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var n uint64
			for _, mt := range mf.GetMetric() {
				n += mt.GetHistogram().GetSampleCount()
			}
			return n
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// exercise calls every hub-side method once or more.
func exercise(m *Metrics) {
	m.ServerBytes(1000)
	m.ChunkSent(2000)
	m.ChunkSent(0)
	m.StoreRead(150 * time.Microsecond)
	m.PeerConnected()
	m.PeerConnected()
	m.PeerDisconnected()
	m.PairBrokered()
	m.PairFailed()
	m.SeederLookup(LookupFound, 40*time.Millisecond)
	m.SeederLookup("no_candidates", time.Millisecond)
	m.SeederLookup("all_refused", 30*time.Millisecond)
	m.SeederLookup("timeout", 1500*time.Millisecond)
	m.SeederLookup("shutdown", time.Second)
	m.AddBufferedBytes(70_000)
	m.AddBufferedBytes(-20_000)
	m.SignalingRejected("not_paired")
	m.SignalingRejected("a reason nobody planned: \x00 1234")
}

func TestHubMethods(t *testing.T) {
	t.Parallel()
	m := New()
	exercise(m)
	checks := []struct {
		name      string
		got, want float64
	}{
		{"server bytes", testutil.ToFloat64(m.DeliveredBytes.WithLabelValues(SourceServer)), 3000},
		{"chunks via http", testutil.ToFloat64(m.chunksServed.WithLabelValues(ViaHTTP)), 1},
		{"chunks via datachannel", testutil.ToFloat64(m.chunksServed.WithLabelValues(ViaDataChannel)), 2},
		{"connected peers", testutil.ToFloat64(m.peers), 1},
		{"pairs brokered", testutil.ToFloat64(m.pairsBrokered), 1},
		{"pairs failed", testutil.ToFloat64(m.pairsFailed), 1},
		{"lookups found", testutil.ToFloat64(m.lookups.WithLabelValues(LookupFound)), 1},
		{"lookups not found", testutil.ToFloat64(m.lookups.WithLabelValues(LookupNotFound)), 2},
		{"lookups timeout", testutil.ToFloat64(m.lookups.WithLabelValues(LookupTimeout)), 1},
		{"lookups canceled", testutil.ToFloat64(m.lookups.WithLabelValues(LookupCanceled)), 1},
		{"buffered bytes", testutil.ToFloat64(m.buffered), 50_000},
		{"rejected not_paired", testutil.ToFloat64(m.rejected.WithLabelValues("not_paired")), 1},
		{"rejected other", testutil.ToFloat64(m.rejected.WithLabelValues(ReasonOther)), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// Label sets stay bounded whatever strings callers pass, and every metric
// follows the Prometheus naming conventions (promlint).
func TestBoundedLabelsAndLint(t *testing.T) {
	t.Parallel()
	m := New()
	exercise(m)
	for i := range 200 {
		m.SignalingRejected(strings.Repeat("x", i))
		m.SeederLookup(strings.Repeat("y", i), time.Millisecond)
	}
	if n := testutil.CollectAndCount(m.rejected); n != len(rejectReasons) {
		t.Errorf("rejected series = %d, want %d", n, len(rejectReasons))
	}
	if n := testutil.CollectAndCount(m.lookups); n != 4 {
		t.Errorf("lookup series = %d, want 4", n)
	}
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "ztream_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestHandlerExposition(t *testing.T) {
	t.Parallel()
	m := New()
	exercise(m)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	text := string(body)
	for _, want := range []string{
		`ztream_delivered_bytes_total{source="server"} 3000`,
		`ztream_delivered_bytes_total{source="p2p"} 0`,
		`ztream_delivered_bytes_total{source="cache"} 0`,
		`ztream_connected_peers 1`,
		`ztream_seeder_lookup_duration_seconds_bucket{outcome="timeout",le="1.5"} 1`,
		`ztream_store_read_duration_seconds_count{op="chunk"} 1`,
		`ztream_datachannel_buffered_bytes 50000`,
		`ztream_playback_start_latency_seconds_count 0`,
		`ztream_peer_stats_reports_total{result="rate_limited"} 0`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestLookupOutcome(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": LookupFound, "found": LookupFound, "timeout": LookupTimeout,
		"no_candidates": LookupNotFound, "all_refused": LookupNotFound, "not_found": LookupNotFound,
		"shutdown": LookupCanceled, "canceled": LookupCanceled, "junk": LookupNotFound,
	} {
		if got := LookupOutcome(in); got != want {
			t.Errorf("LookupOutcome(%q) = %q, want %q", in, got, want)
		}
	}
}
