package metrics

import (
	"math"
	"sync"
	"time"
)

// PeerReport is one stats message of a peer (signaling.Stats): counters
// accumulated since the peer's previous report, so every value is a
// non-negative delta.
type PeerReport struct {
	// HubBytes is what the peer says it received from the hub. It is not
	// counted: the hub counts server bytes itself as it sends them.
	HubBytes int64
	// PeerBytes is chunk bytes received from other peers (source p2p).
	PeerBytes int64
	// RelayBytes is the part of PeerBytes that went through a TURN relay.
	RelayBytes int64
	// CacheBytes is chunk bytes played from the peer's local cache.
	CacheBytes int64
	// UploadedBytes is chunk bytes the peer sent to other peers.
	UploadedBytes int64
	// BadChunks is chunks from peers that failed the SHA-256 check.
	BadChunks int64
	// Stalls is playback stalls.
	Stalls int64
	// EmergencyFetches is chunks fetched from the server because a peer
	// was too slow to deliver them.
	EmergencyFetches int64
	// StartupMS lists playback start latencies in milliseconds.
	StartupMS []float64
}

// Limits bound what one peer's reports may add to the metrics. The zero
// value of a field means its default (see DefaultLimits); grants are
// enforced unless IgnoreGrants is set.
type Limits struct {
	// MinInterval is the shortest time between two reports; a report that
	// comes sooner after the previous accepted one (or after the account was
	// opened) is ignored and counted as rate_limited.
	MinInterval time.Duration
	// MaxByteRate caps each byte counter of a report at MaxByteRate times the
	// time since the previous accepted report (bytes per second).
	MaxByteRate int64
	// MaxCredit caps the time credited to one report, so a peer cannot save
	// up allowance by staying silent.
	MaxCredit time.Duration
	// GrantMargin is the fraction added to every grant (re-fetches after a
	// seek, chunks received twice); GrantSlack is a flat extra per grant.
	GrantMargin float64
	GrantSlack  int64
	// MaxBudget caps the unused grant budget of a peer, in bytes.
	MaxBudget int64
	// IgnoreGrants turns off the grant budgets: peer and uploaded bytes are
	// then only bounded by MaxByteRate.
	IgnoreGrants bool
	// MaxEvents caps each event counter (stalls, bad chunks, emergency
	// fetches) per report.
	MaxEvents int64
	// MaxStartupSamples caps the start latency samples taken per report.
	MaxStartupSamples int
}

// Defaults of Limits.
const (
	DefaultMinInterval       = time.Second
	DefaultMaxByteRate       = 8 << 20 // 64 Mbit/s: well above audio, bounded for a liar
	DefaultMaxCredit         = 30 * time.Second
	DefaultGrantMargin       = 0.10
	DefaultGrantSlack        = 256 << 10
	DefaultMaxBudget         = 1 << 30
	DefaultMaxEvents         = 64
	DefaultMaxStartupSamples = 16
	// maxReportValue is the largest counter value a report may carry
	// (signaling.MaxStatsValue); more makes the report invalid.
	maxReportValue = 1 << 40
	// maxStartupMS is the largest plausible start latency: one hour.
	maxStartupMS = 3600e3
	// maxReportSamples is the most start samples a report may carry
	// (signaling.MaxStartupSamples); more makes the report invalid.
	maxReportSamples = 64
)

// DefaultLimits returns the limits a zero Limits stands for.
func DefaultLimits() Limits {
	return Limits{}.withDefaults()
}

func (l Limits) withDefaults() Limits {
	if l.MinInterval <= 0 {
		l.MinInterval = DefaultMinInterval
	}
	if l.MaxByteRate <= 0 {
		l.MaxByteRate = DefaultMaxByteRate
	}
	if l.MaxCredit <= 0 {
		l.MaxCredit = DefaultMaxCredit
	}
	if l.GrantMargin <= 0 {
		l.GrantMargin = DefaultGrantMargin
	}
	if l.GrantSlack <= 0 {
		l.GrantSlack = DefaultGrantSlack
	}
	if l.MaxBudget <= 0 {
		l.MaxBudget = DefaultMaxBudget
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = DefaultMaxEvents
	}
	if l.MaxStartupSamples <= 0 {
		l.MaxStartupSamples = DefaultMaxStartupSamples
	}
	return l
}

// PeerAccount validates the stats reports of one peer before they reach the
// metrics, so that a lying peer cannot inflate the offload:
//
//   - a report with a negative or absurd value is ignored (invalid);
//   - a report sooner than MinInterval after the previous accepted one is
//     ignored (rate_limited);
//   - each byte counter is cut to MaxByteRate × the time since the previous
//     accepted report (at most MaxCredit);
//   - peer bytes are cut to the download budget and uploaded bytes to the
//     upload budget (GrantDownload, GrantUpload): the sizes of the tracks
//     the peer played or was paired for as leecher, and of those it was
//     paired for as seeder or its partners played, plus a margin;
//   - event counters and start samples are capped per report.
//
// A report cut down anywhere counts as clamped. The hub keeps one account per
// connected peer (not registered anywhere: no per-peer series) and calls
// Report for each stats message. Methods are safe for concurrent use.
type PeerAccount struct {
	m   *Metrics
	lim Limits

	mu       sync.Mutex
	last     time.Time // when the previous report was accepted (or the account opened)
	download int64     // unused download budget, bytes
	upload   int64     // unused upload budget, bytes
}

// NewPeerAccount opens the account of a peer that connected at now, with
// limits lim (zero fields take their defaults).
func (m *Metrics) NewPeerAccount(now time.Time, lim Limits) *PeerAccount {
	return &PeerAccount{m: m, lim: lim.withDefaults(), last: now}
}

// GrantDownload allows the peer to report up to trackSize bytes (plus the
// margin) more of peer bytes. Call it when the hub pairs the peer as leecher
// for a track of trackSize bytes, or when the peer starts playing one.
func (a *PeerAccount) GrantDownload(trackSize int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.download = a.grant(a.download, trackSize)
}

// GrantUpload allows the peer to report up to trackSize bytes (plus the
// margin) more of uploaded bytes. Call it when the hub pairs the peer as
// seeder for a track of trackSize bytes, or when a peer paired with it
// starts playing one (it may serve it over their existing pair).
func (a *PeerAccount) GrantUpload(trackSize int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.upload = a.grant(a.upload, trackSize)
}

func (a *PeerAccount) grant(budget, size int64) int64 {
	if size <= 0 {
		return budget
	}
	size = min(size, a.lim.MaxBudget)
	add := size + int64(float64(size)*a.lim.GrantMargin) + a.lim.GrantSlack
	return min(budget+add, a.lim.MaxBudget)
}

// Report validates one stats report received at now, adds what it accepts to
// the metrics and returns the result: ReportAccepted, ReportClamped,
// ReportRateLimited or ReportInvalid (also counted in
// ztream_peer_stats_reports_total).
func (a *PeerAccount) Report(now time.Time, r PeerReport) string {
	res := a.report(now, r)
	a.m.reports.WithLabelValues(res).Inc()
	return res
}

func (a *PeerAccount) report(now time.Time, r PeerReport) string {
	if !valid(r) {
		return ReportInvalid
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	elapsed := now.Sub(a.last)
	if elapsed < a.lim.MinInterval {
		return ReportRateLimited
	}
	a.last = now
	credit := min(elapsed, a.lim.MaxCredit)
	rateCap := int64(credit.Seconds() * float64(a.lim.MaxByteRate))
	clamped := false
	cut := func(v, limit int64) int64 {
		if v > limit {
			clamped = true
			return limit
		}
		return v
	}

	peer := cut(r.PeerBytes, rateCap)
	up := cut(r.UploadedBytes, rateCap)
	if !a.lim.IgnoreGrants {
		peer = cut(peer, a.download)
		a.download -= peer
		up = cut(up, a.upload)
		a.upload -= up
	}
	relay := cut(r.RelayBytes, peer) // a part of the p2p bytes accepted
	cache := cut(r.CacheBytes, rateCap)
	stalls := cut(r.Stalls, a.lim.MaxEvents)
	bad := cut(r.BadChunks, a.lim.MaxEvents)
	emergency := cut(r.EmergencyFetches, a.lim.MaxEvents)
	starts := r.StartupMS
	if len(starts) > a.lim.MaxStartupSamples {
		clamped = true
		starts = starts[:a.lim.MaxStartupSamples]
	}

	m := a.m
	m.DeliveredBytes.WithLabelValues(SourceP2P).Add(float64(peer))
	m.relayed.Add(float64(relay))
	m.DeliveredBytes.WithLabelValues(SourceCache).Add(float64(cache))
	m.uploaded.Add(float64(up))
	m.stalls.Add(float64(stalls))
	m.hashFailures.Add(float64(bad))
	m.emergency.Add(float64(emergency))
	for _, ms := range starts {
		m.startLatency.Observe(ms / 1000)
	}
	if clamped {
		return ReportClamped
	}
	return ReportAccepted
}

// valid reports whether every value of r is in range.
func valid(r PeerReport) bool {
	for _, v := range []int64{r.HubBytes, r.PeerBytes, r.RelayBytes, r.CacheBytes, r.UploadedBytes, r.BadChunks, r.Stalls, r.EmergencyFetches} {
		if v < 0 || v > maxReportValue {
			return false
		}
	}
	if len(r.StartupMS) > maxReportSamples {
		return false
	}
	for _, ms := range r.StartupMS {
		if math.IsNaN(ms) || ms < 0 || ms > maxStartupMS {
			return false
		}
	}
	return true
}
