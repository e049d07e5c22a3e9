package metrics

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

const trackSize = 4 << 20 // a 4 MiB track

func p2pBytes(m *Metrics) float64 {
	return testutil.ToFloat64(m.DeliveredBytes.WithLabelValues(SourceP2P))
}

func reports(m *Metrics, result string) float64 {
	return testutil.ToFloat64(m.reports.WithLabelValues(result))
}

// An honest peer that downloads the tracks it was paired for, reporting every
// few seconds, gets every byte counted.
func TestAccountHonestPeerCountedInFull(t *testing.T) {
	m := New()
	t0 := time.Unix(1_700_000_000, 0)
	a := m.NewPeerAccount(t0, Limits{})
	a.GrantDownload(trackSize)
	a.GrantUpload(trackSize)
	var want float64
	now := t0
	for i := range 8 {
		now = now.Add(3 * time.Second)
		r := PeerReport{PeerBytes: trackSize / 8, UploadedBytes: trackSize / 8, CacheBytes: 40_000, HubBytes: 1000}
		if i == 0 {
			r.StartupMS = []float64{120, 250}
			r.Stalls = 1
		}
		if got := a.Report(now, r); got != ReportAccepted {
			t.Fatalf("report %d: result %q, want %q", i, got, ReportAccepted)
		}
		want += trackSize / 8
	}
	if got := p2pBytes(m); got != want {
		t.Errorf("p2p bytes = %v, want %v", got, want)
	}
	if got := testutil.ToFloat64(m.uploaded); got != want {
		t.Errorf("uploaded bytes = %v, want %v", got, want)
	}
	if got := testutil.ToFloat64(m.DeliveredBytes.WithLabelValues(SourceCache)); got != 8*40_000 {
		t.Errorf("cache bytes = %v, want %v", got, 8*40_000)
	}
	// Peer-reported hub bytes are never counted: the hub counts its own.
	if got := testutil.ToFloat64(m.DeliveredBytes.WithLabelValues(SourceServer)); got != 0 {
		t.Errorf("server bytes = %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.stalls); got != 1 {
		t.Errorf("stalls = %v, want 1", got)
	}
	if got := testutil.CollectAndCount(m.startLatency); got != 1 {
		t.Errorf("start latency series = %d, want 1", got)
	}
	if got := reports(m, ReportAccepted); got != 8 {
		t.Errorf("accepted reports = %v, want 8", got)
	}
}

// A peer claiming far more peer bytes than the tracks it was paired for gets
// at most the granted budget (track size plus margin) counted, however it
// spreads its claims.
func TestAccountLyingPeerCannotExceedGrants(t *testing.T) {
	m := New()
	t0 := time.Unix(1_700_000_000, 0)
	a := m.NewPeerAccount(t0, Limits{})
	a.GrantDownload(trackSize)
	lim := DefaultLimits()
	budget := float64(trackSize + int64(float64(trackSize)*lim.GrantMargin) + lim.GrantSlack)

	now := t0
	for i := range 100 {
		now = now.Add(5 * time.Second)
		a.Report(now, PeerReport{PeerBytes: 10 << 20, UploadedBytes: 10 << 20})
		if got := p2pBytes(m); got > budget {
			t.Fatalf("after report %d: p2p bytes %v exceed the granted budget %v", i, got, budget)
		}
	}
	if got := p2pBytes(m); got != budget {
		t.Errorf("p2p bytes = %v, want exactly the budget %v", got, budget)
	}
	// Never paired as seeder: no uploaded byte counts.
	if got := testutil.ToFloat64(m.uploaded); got != 0 {
		t.Errorf("uploaded bytes = %v, want 0 without an upload grant", got)
	}
	if got := reports(m, ReportClamped); got != 100 {
		t.Errorf("clamped reports = %v, want 100", got)
	}
}

// A peer with no pairing at all cannot add a single p2p byte.
func TestAccountNoGrantNoP2PBytes(t *testing.T) {
	m := New()
	t0 := time.Unix(1_700_000_000, 0)
	a := m.NewPeerAccount(t0, Limits{})
	if got := a.Report(t0.Add(10*time.Second), PeerReport{PeerBytes: 1 << 20}); got != ReportClamped {
		t.Errorf("result %q, want %q", got, ReportClamped)
	}
	if got := p2pBytes(m); got != 0 {
		t.Errorf("p2p bytes = %v, want 0", got)
	}
}

// Reports sent faster than MinInterval are ignored, so flooding gains nothing.
func TestAccountRateLimited(t *testing.T) {
	m := New()
	t0 := time.Unix(1_700_000_000, 0)
	a := m.NewPeerAccount(t0, Limits{MinInterval: 2 * time.Second, IgnoreGrants: true})
	if got := a.Report(t0.Add(time.Second), PeerReport{PeerBytes: 1000}); got != ReportRateLimited {
		t.Fatalf("first report 1 s after connecting: result %q, want %q", got, ReportRateLimited)
	}
	if got := a.Report(t0.Add(2*time.Second), PeerReport{PeerBytes: 1000}); got != ReportAccepted {
		t.Fatalf("report at 2 s: result %q, want %q", got, ReportAccepted)
	}
	// 50 more within the next 1.9 s: all ignored.
	for i := range 50 {
		at := t0.Add(2*time.Second + time.Duration(i+1)*38*time.Millisecond)
		if got := a.Report(at, PeerReport{PeerBytes: 1000}); got != ReportRateLimited {
			t.Fatalf("flood report %d: result %q, want %q", i, got, ReportRateLimited)
		}
	}
	if got := p2pBytes(m); got != 1000 {
		t.Errorf("p2p bytes = %v, want 1000", got)
	}
	if got := reports(m, ReportRateLimited); got != 51 {
		t.Errorf("rate-limited reports = %v, want 51", got)
	}
}

// Without grants, bytes are bounded by the byte-rate cap over the time since
// the previous report, and silence does not bank allowance past MaxCredit.
func TestAccountByteRateCap(t *testing.T) {
	m := New()
	t0 := time.Unix(1_700_000_000, 0)
	lim := Limits{MaxByteRate: 1 << 20, MaxCredit: 10 * time.Second, IgnoreGrants: true}
	a := m.NewPeerAccount(t0, lim)
	// 3 s after connecting: at most 3 MiB.
	if got := a.Report(t0.Add(3*time.Second), PeerReport{PeerBytes: 100 << 20}); got != ReportClamped {
		t.Fatalf("result %q, want %q", got, ReportClamped)
	}
	if got := p2pBytes(m); got != 3<<20 {
		t.Fatalf("p2p bytes = %v, want %v", got, 3<<20)
	}
	// After an hour of silence: at most MaxCredit (10 s) worth more.
	if got := a.Report(t0.Add(time.Hour), PeerReport{PeerBytes: 100 << 20}); got != ReportClamped {
		t.Fatalf("result %q, want %q", got, ReportClamped)
	}
	if got := p2pBytes(m); got != 13<<20 {
		t.Errorf("p2p bytes = %v, want %v", got, 13<<20)
	}
}

// Negative, huge or NaN values make the whole report invalid: nothing counts,
// and the rate-limit clock is not reset.
func TestAccountInvalidReports(t *testing.T) {
	m := New()
	t0 := time.Unix(1_700_000_000, 0)
	a := m.NewPeerAccount(t0, Limits{IgnoreGrants: true})
	bad := []PeerReport{
		{PeerBytes: -1},
		{PeerBytes: 500, CacheBytes: -500}, // a negative delta: a decreasing counter
		{UploadedBytes: 1<<40 + 1},
		{Stalls: -3},
		{PeerBytes: 10, StartupMS: []float64{math.NaN()}},
		{PeerBytes: 10, StartupMS: []float64{-5}},
		{PeerBytes: 10, StartupMS: []float64{4000e3}},
		{PeerBytes: 10, StartupMS: make([]float64, 65)},
	}
	for i, r := range bad {
		if got := a.Report(t0.Add(time.Duration(i+5)*time.Second), r); got != ReportInvalid {
			t.Errorf("report %d %+v: result %q, want %q", i, r, got, ReportInvalid)
		}
	}
	for _, src := range []string{SourceP2P, SourceCache} {
		if got := testutil.ToFloat64(m.DeliveredBytes.WithLabelValues(src)); got != 0 {
			t.Errorf("%s bytes = %v after invalid reports, want 0", src, got)
		}
	}
	if got := testutil.CollectAndCount(m.startLatency); got != 1 {
		t.Fatalf("start latency series = %d", got)
	}
	if got := reports(m, ReportInvalid); got != float64(len(bad)) {
		t.Errorf("invalid reports = %v, want %d", got, len(bad))
	}
}

// Event counters and start samples are capped per report.
func TestAccountEventCaps(t *testing.T) {
	m := New()
	t0 := time.Unix(1_700_000_000, 0)
	a := m.NewPeerAccount(t0, Limits{MaxEvents: 5, MaxStartupSamples: 3})
	r := PeerReport{Stalls: 1000, BadChunks: 1000, EmergencyFetches: 1000, StartupMS: []float64{1, 2, 3, 4, 5, 6}}
	if got := a.Report(t0.Add(5*time.Second), r); got != ReportClamped {
		t.Fatalf("result %q, want %q", got, ReportClamped)
	}
	for name, c := range map[string]float64{
		"stalls":    testutil.ToFloat64(m.stalls),
		"bad":       testutil.ToFloat64(m.hashFailures),
		"emergency": testutil.ToFloat64(m.emergency),
	} {
		if c != 5 {
			t.Errorf("%s = %v, want 5", name, c)
		}
	}
	if got := histogramCount(t, m, "ztream_playback_start_latency_seconds"); got != 3 {
		t.Errorf("start latency samples = %d, want 3", got)
	}
}

// Grants themselves are bounded, so a peer paired for many huge tracks cannot
// bank an unbounded budget.
func TestAccountBudgetBounded(t *testing.T) {
	m := New()
	t0 := time.Unix(1_700_000_000, 0)
	a := m.NewPeerAccount(t0, Limits{MaxBudget: 10 << 20, MaxByteRate: 1 << 30})
	for range 100 {
		a.GrantDownload(1 << 30)
	}
	a.Report(t0.Add(30*time.Second), PeerReport{PeerBytes: 1 << 40})
	if got := p2pBytes(m); got != 10<<20 {
		t.Errorf("p2p bytes = %v, want the 10 MiB budget cap", got)
	}
}

// Many goroutines reporting into accounts concurrently (run with -race).
func TestAccountConcurrent(t *testing.T) {
	m := New()
	t0 := time.Unix(1_700_000_000, 0)
	done := make(chan struct{})
	const peers = 8
	for p := range peers {
		go func() {
			defer func() { done <- struct{}{} }()
			a := m.NewPeerAccount(t0, Limits{})
			a.GrantDownload(trackSize)
			for i := range 20 {
				a.Report(t0.Add(time.Duration(p+2*i+2)*time.Second), PeerReport{PeerBytes: 1000})
			}
		}()
	}
	for range peers {
		<-done
	}
	if got := p2pBytes(m); got != peers*20*1000 {
		t.Errorf("p2p bytes = %v, want %v", got, peers*20*1000)
	}
}
