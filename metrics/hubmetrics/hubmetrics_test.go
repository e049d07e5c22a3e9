package hubmetrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/ztream/ztream/metrics"
	"github.com/ztream/ztream/signaling"
)

// scrape returns the exposition text of m.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	return string(body)
}

func TestAdapterCountsValidatedReports(t *testing.T) {
	m := metrics.New()
	a := New(m, metrics.Limits{})
	clock := time.Unix(1_700_000_000, 0)
	a.now = func() time.Time { return clock }

	honest := a.OpenPeer("p-honest")
	liar := a.OpenPeer("p-liar")
	honest.GrantDownload(1 << 20)
	liar.GrantDownload(1 << 20)
	honest.GrantUpload(1 << 20)

	clock = clock.Add(5 * time.Second)
	honest.Report(signaling.Stats{HubBytes: 999, PeerBytes: 500_000, UploadedBytes: 300_000, Stalls: 2, EmergencyFetches: 3, BadChunks: 4, StartupMS: []float64{150}})
	liar.Report(signaling.Stats{PeerBytes: signaling.MaxStatsValue})
	for range 10 { // flooding right after: all rate-limited
		liar.Report(signaling.Stats{PeerBytes: signaling.MaxStatsValue})
	}
	honest.Close()
	liar.Close()

	lim := metrics.DefaultLimits()
	liarMax := (1 << 20) + int64(float64(1<<20)*lim.GrantMargin) + lim.GrantSlack
	if got, want := testutil.ToFloat64(m.DeliveredBytes.WithLabelValues(metrics.SourceP2P)), float64(500_000+liarMax); got != want {
		t.Errorf("p2p bytes = %v, want %v (the honest report plus the liar's grant)", got, want)
	}
	text := scrape(t, m)
	for _, want := range []string{
		`ztream_delivered_bytes_total{source="server"} 0`,
		`ztream_peer_uploaded_bytes_total 300000`,
		`ztream_playback_stalls_total 2`,
		`ztream_emergency_fetches_total 3`,
		`ztream_chunk_hash_failures_total 4`,
		`ztream_playback_start_latency_seconds_count 1`,
		`ztream_peer_stats_reports_total{result="accepted"} 1`,
		`ztream_peer_stats_reports_total{result="clamped"} 1`,
		`ztream_peer_stats_reports_total{result="rate_limited"} 10`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestAdapterHubEvents(t *testing.T) {
	m := metrics.New()
	a := New(m, metrics.Limits{})
	a.PeerConnected()
	a.ChunkSent(4096)
	a.SeederLookup(signaling.ReasonNoCandidates, 2*time.Millisecond)
	a.SeederLookup(signaling.ReasonShutdown, 2*time.Millisecond)
	a.SignalingRejected(signaling.CodeNotPaired)
	a.SeederReported(signaling.ReportHashMismatch, true)
	a.SeederReported(signaling.ReportTimeout, false)
	a.SeederReported("forged", false)
	a.SeederDropped()
	text := scrape(t, m)
	for _, want := range []string{
		`ztream_connected_peers 1`,
		`ztream_delivered_bytes_total{source="server"} 4096`,
		`ztream_seeder_lookups_total{outcome="not_found"} 1`,
		`ztream_seeder_lookups_total{outcome="canceled"} 1`,
		`ztream_signaling_rejected_messages_total{reason="not_paired"} 1`,
		`ztream_peer_reports_total{outcome="accepted",reason="hash_mismatch"} 1`,
		`ztream_peer_reports_total{outcome="rejected",reason="timeout"} 1`,
		`ztream_peer_reports_total{outcome="rejected",reason="other"} 1`,
		`ztream_peer_reports_total{outcome="accepted",reason="bad_message"} 0`,
		`ztream_seeders_dropped_total 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
