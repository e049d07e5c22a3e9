// Package metrics holds Ztream's Prometheus metrics on a private registry,
// served at /metrics, and the validation of the statistics peers report.
//
// Every metric is named ztream_*, uses base units (bytes, seconds) and has
// only labels with a small fixed set of values: never a peer, pair or track
// id. Label values that come from outside (error codes, lookup outcomes) are
// mapped onto the fixed set, with "other" for anything unknown.
//
// The hub calls the methods of *Metrics as things happen; what peers report in
// their periodic stats messages goes through a per-peer PeerAccount first, so
// a peer cannot inflate the peer-to-peer offload the dashboard shows.
package metrics

import (
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Byte sources: where the bytes a listener got came from (label "source" of
// ztream_delivered_bytes_total).
const (
	SourceServer = "server"
	SourceP2P    = "p2p"
	SourceCache  = "cache"
)

// Transports the hub serves chunks over (label "via" of
// ztream_hub_chunks_served_total).
const (
	ViaDataChannel = "datachannel"
	ViaHTTP        = "http"
)

// Seeder lookup outcomes (label "outcome" of ztream_seeder_lookups_total and
// ztream_seeder_lookup_duration_seconds).
const (
	LookupFound    = "found"
	LookupNotFound = "not_found"
	LookupTimeout  = "timeout"
	// LookupCanceled is a lookup ended by the hub shutting down or the
	// requester leaving, which says nothing about seeders.
	LookupCanceled = "canceled"
)

// Store operations (label "op" of ztream_store_read_duration_seconds).
const (
	OpManifest = "manifest"
	OpChunk    = "chunk"
)

// Results of a peer's stats report (label "result" of
// ztream_peer_stats_reports_total).
const (
	// ReportAccepted: every value was taken as reported.
	ReportAccepted = "accepted"
	// ReportClamped: the report was taken, but some values exceeded what the
	// peer could plausibly have done and were cut down.
	ReportClamped = "clamped"
	// ReportRateLimited: the report came too soon after the previous one and
	// was ignored entirely.
	ReportRateLimited = "rate_limited"
	// ReportInvalid: the report had a negative or absurd value and was
	// ignored entirely.
	ReportInvalid = "invalid"
)

// Outcomes of a peer's report of a misbehaving seeder (label "outcome" of
// ztream_peer_reports_total).
const (
	// SeederReportAccepted: the reporter was recently paired with the
	// seeder; the report counts.
	SeederReportAccepted = "accepted"
	// SeederReportRejected: no such recent pair; the report was ignored.
	SeederReportRejected = "rejected"
)

// seederReportReasons is the fixed "reason" label set of
// ztream_peer_reports_total (signaling.Report* values, then other).
var seederReportReasons = []string{"hash_mismatch", "bad_message", "timeout", ReasonOther}

// ReasonOther is the label value for a rejection reason outside the known set.
const ReasonOther = "other"

// rejectReasons is the fixed label set of
// ztream_signaling_rejected_messages_total: the protocol's error codes
// (docs/PROTOCOL.md §6) and the reasons the hub closes or ignores a peer.
var rejectReasons = []string{
	"bad_message", "bad_version", "hello_required", "server_full", "not_paired",
	"unknown_track", "too_many_lookups", "duplicate_lookup", "unknown_pair",
	"negotiation_error", "internal", "too_large", "slow_consumer", "hello_timeout",
	"rate_limited", "too_many_pairs", "binary", "bad_handshake", "too_many_connections",
	"idle_timeout", ReasonOther,
}

// Histogram buckets, in seconds.
var (
	// startBuckets spans what a listener notices: instant (< 100 ms) to broken.
	startBuckets = []float64{0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30}
	// lookupBuckets ends past the default lookup timeout of 1.5 s.
	lookupBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5}
	// storeBuckets spans an embedded store (tens of µs) to a remote one (ms).
	storeBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}
)

// Metrics is the set of Ztream's metrics and their registry. Its methods are
// safe for concurrent use; a nil *Metrics is not valid (use New).
type Metrics struct {
	reg *prometheus.Registry

	// DeliveredBytes counts bytes delivered to listeners, by source.
	DeliveredBytes *prometheus.CounterVec

	peers          prometheus.Gauge
	pairsBrokered  prometheus.Counter
	pairsFailed    prometheus.Counter
	crossHubPairs  prometheus.Counter
	lookups        *prometheus.CounterVec
	lookupDuration *prometheus.HistogramVec
	startLatency   prometheus.Histogram
	stalls         prometheus.Counter
	emergency      prometheus.Counter
	relayed        prometheus.Counter
	hashFailures   prometheus.Counter
	uploaded       prometheus.Counter
	chunksServed   *prometheus.CounterVec
	storeRead      *prometheus.HistogramVec
	buffered       prometheus.Gauge
	rejected       *prometheus.CounterVec
	reports        *prometheus.CounterVec
	seederReports  *prometheus.CounterVec
	seedersDropped prometheus.Counter
	firstCopySkips prometheus.Counter

	known map[string]bool // rejectReasons as a set; read-only after New
}

// New creates the metrics on a new registry, together with the Go runtime and
// process collectors. Every labelled series with a known label value starts
// at zero, so dashboards show 0 rather than "no data".
func New() *Metrics {
	reg := prometheus.NewRegistry()
	const ns = "ztream"
	m := &Metrics{
		reg: reg,
		DeliveredBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "delivered_bytes_total",
			Help: "Bytes of audio delivered to listeners, by source: server (counted by the hub as it sends), p2p and cache (reported by peers, validated).",
		}, []string{"source"}),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "connected_peers",
			Help: "Peers connected to the hub (WebSocket session past the handshake).",
		}),
		pairsBrokered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "p2p_pairs_brokered_total",
			Help: "Peer-to-peer pairs the tracker brokered (seeder and leecher told to connect).",
		}),
		pairsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "p2p_pairs_failed_total",
			Help: "Brokered peer-to-peer pairs that failed (ended before the seeder finished uploading).",
		}),
		crossHubPairs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "cross_hub_pairs_total",
			Help: "Pairs this hub brokered with a seeder connected to another hub (counted in p2p_pairs_brokered_total too).",
		}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "seeder_lookups_total",
			Help: "Seeder lookups by outcome: found, not_found, timeout, canceled.",
		}, []string{"outcome"}),
		lookupDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "seeder_lookup_duration_seconds",
			Help:    "Time from a lookup to its result, by outcome.",
			Buckets: lookupBuckets,
		}, []string{"outcome"}),
		startLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "playback_start_latency_seconds",
			Help:    "Time from pressing play to audible audio, as reported by peers.",
			Buckets: startBuckets,
		}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "playback_stalls_total",
			Help: "Playback stalls (buffer ran dry), as reported by peers.",
		}),
		emergency: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "emergency_fetches_total",
			Help: "Chunks peers fetched from the server because peer-to-peer delivery was too late, as reported by peers.",
		}),
		relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "p2p_relayed_bytes_total",
			Help: "Peer-to-peer chunk bytes that went through a TURN relay (included in delivered_bytes_total{source=\"p2p\"}), as reported by peers.",
		}),
		hashFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "chunk_hash_failures_total",
			Help: "Chunks from other peers that failed the SHA-256 check, as reported by peers.",
		}),
		uploaded: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "peer_uploaded_bytes_total",
			Help: "Chunk bytes peers say they uploaded to other peers (validated like p2p bytes).",
		}),
		chunksServed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "hub_chunks_served_total",
			Help: "Chunks the hub served, by transport: datachannel or http.",
		}, []string{"via"}),
		storeRead: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "store_read_duration_seconds",
			Help:    "Latency of track store reads, by operation: manifest or chunk.",
			Buckets: storeBuckets,
		}, []string{"op"}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "datachannel_buffered_bytes",
			Help: "Bytes queued in the hub's DataChannels and not yet sent, summed over peers.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "signaling_rejected_messages_total",
			Help: "Signaling messages the hub refused, by reason (protocol error code, or other).",
		}, []string{"reason"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "peer_stats_reports_total",
			Help: "Stats reports from peers, by result: accepted, clamped, rate_limited, invalid.",
		}, []string{"result"}),
		seederReports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "peer_reports_total",
			Help: "Reports of misbehaving seeders from the leechers they served, by reason and outcome (accepted, rejected).",
		}, []string{"reason", "outcome"}),
		seedersDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "seeders_dropped_total",
			Help: "Seeders dropped as holders of a track after reports from enough distinct leechers.",
		}),
		firstCopySkips: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "first_copy_skipped_total",
			Help: "First-copy chunk requests answered with no chunk: other peers of the swarm received them all recently.",
		}),
		known: make(map[string]bool, len(rejectReasons)),
	}
	for _, s := range []string{SourceServer, SourceP2P, SourceCache} {
		m.DeliveredBytes.WithLabelValues(s)
	}
	for _, o := range []string{LookupFound, LookupNotFound, LookupTimeout, LookupCanceled} {
		m.lookups.WithLabelValues(o)
		m.lookupDuration.WithLabelValues(o)
	}
	for _, v := range []string{ViaDataChannel, ViaHTTP} {
		m.chunksServed.WithLabelValues(v)
	}
	for _, op := range []string{OpManifest, OpChunk} {
		m.storeRead.WithLabelValues(op)
	}
	for _, r := range rejectReasons {
		m.known[r] = true
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{ReportAccepted, ReportClamped, ReportRateLimited, ReportInvalid} {
		m.reports.WithLabelValues(r)
	}
	for _, r := range seederReportReasons {
		for _, o := range []string{SeederReportAccepted, SeederReportRejected} {
			m.seederReports.WithLabelValues(r, o)
		}
	}
	reg.MustRegister(
		m.DeliveredBytes, m.peers, m.pairsBrokered, m.pairsFailed, m.crossHubPairs, m.lookups,
		m.lookupDuration, m.startLatency, m.stalls, m.emergency, m.relayed, m.hashFailures,
		m.uploaded, m.chunksServed, m.storeRead, m.buffered, m.rejected, m.reports,
		m.seederReports, m.seedersDropped, m.firstCopySkips,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the registry the metrics live in, for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ServerBytes counts one chunk of n bytes served over HTTP (the fallback
// path): n server bytes delivered and one chunk served via http.
func (m *Metrics) ServerBytes(n int) {
	if n > 0 {
		m.DeliveredBytes.WithLabelValues(SourceServer).Add(float64(n))
	}
	m.chunksServed.WithLabelValues(ViaHTTP).Inc()
}

// ChunkSent counts one chunk of n bytes the hub sent on a peer's DataChannel:
// n server bytes delivered and one chunk served via datachannel.
func (m *Metrics) ChunkSent(n int) {
	if n > 0 {
		m.DeliveredBytes.WithLabelValues(SourceServer).Add(float64(n))
	}
	m.chunksServed.WithLabelValues(ViaDataChannel).Inc()
}

// StoreRead observes the latency of one chunk read from the track store.
// Do not call it for reads of a store wrapped by InstrumentStore, which
// observes them already.
func (m *Metrics) StoreRead(d time.Duration) {
	m.storeRead.WithLabelValues(OpChunk).Observe(d.Seconds())
}

// PeerConnected counts a peer that completed the handshake.
func (m *Metrics) PeerConnected() { m.peers.Inc() }

// PeerDisconnected counts a connected peer that left; call it exactly once
// per PeerConnected.
func (m *Metrics) PeerDisconnected() { m.peers.Dec() }

// PairBrokered counts a peer-to-peer pair the tracker created.
func (m *Metrics) PairBrokered() { m.pairsBrokered.Inc() }

// CrossHubPair counts a pair brokered with another hub's seeder.
func (m *Metrics) CrossHubPair() { m.crossHubPairs.Inc() }

// ClusterState is what WatchCluster reads of the hub's cluster membership.
type ClusterState struct {
	Connected   bool
	RTT         time.Duration
	Hubs        int // other hubs alive
	RemotePeers int
}

// HubInfo registers ztream_hub_info{hub_id="..."} 1: the hub's id.
func (m *Metrics) HubInfo(hubID string) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "ztream", Name: "hub_info", Help: "1, labelled with this hub's id (--hub-id).",
		ConstLabels: prometheus.Labels{"hub_id": hubID},
	}, func() float64 { return 1 }))
}

// WatchCluster registers the gauges of the hub's cluster membership, read
// from state at each scrape: NATS connection state and round trip, other
// hubs alive and their peers known here.
func (m *Metrics) WatchCluster(state func() ClusterState) {
	const ns = "ztream"
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Name: "cluster_nats_connected", Help: "1 while the hub is connected to NATS (0: it serves its own peers alone).",
		}, func() float64 {
			if state().Connected {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Name: "cluster_nats_rtt_seconds", Help: "Last measured round trip to the NATS server.",
		}, func() float64 { return state().RTT.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Name: "cluster_hubs", Help: "Other hubs of the cluster alive (heartbeat within the hub timeout).",
		}, func() float64 { return float64(state().Hubs) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Name: "cluster_remote_peers", Help: "Peers of other hubs that hold something, known to this hub's tracker.",
		}, func() float64 { return float64(state().RemotePeers) }),
	)
}

// PairFailed counts a brokered pair that failed.
func (m *Metrics) PairFailed() { m.pairsFailed.Inc() }

// SeederLookup counts a finished lookup and observes its duration. outcome
// is one of the Lookup* constants or a protocol reason: "" and "found" map to
// found, "timeout" to timeout, "shutdown" and "canceled" to canceled, and
// anything else ("no_candidates", "all_refused", ...) to not_found.
func (m *Metrics) SeederLookup(outcome string, d time.Duration) {
	o := LookupOutcome(outcome)
	m.lookups.WithLabelValues(o).Inc()
	m.lookupDuration.WithLabelValues(o).Observe(d.Seconds())
}

// LookupOutcome maps a lookup outcome or protocol reason onto the fixed
// label set (see SeederLookup).
func LookupOutcome(outcome string) string {
	switch outcome {
	case "", LookupFound:
		return LookupFound
	case LookupTimeout:
		return LookupTimeout
	case LookupCanceled, "shutdown":
		return LookupCanceled
	default:
		return LookupNotFound
	}
}

// AddBufferedBytes adds delta (negative to subtract) to the bytes queued in
// the hub's DataChannels. A hub that adds each send's size and subtracts what
// drained (or, on close, whatever is left) keeps the sum over peers.
func (m *Metrics) AddBufferedBytes(delta int64) { m.buffered.Add(float64(delta)) }

// SignalingRejected counts a refused signaling message. reason is a protocol
// error code or one of "too_large", "slow_consumer", "hello_timeout",
// "rate_limited"; anything else counts as "other".
func (m *Metrics) SignalingRejected(reason string) {
	if !m.known[reason] {
		reason = ReasonOther
	}
	m.rejected.WithLabelValues(reason).Inc()
}

// SeederReported counts a leecher's report of a misbehaving seeder. reason is
// a signaling.Report* value (anything else counts as "other"); accepted says
// whether the hub took it (the reporter was recently paired with the seeder).
func (m *Metrics) SeederReported(reason string, accepted bool) {
	if !slices.Contains(seederReportReasons, reason) {
		reason = ReasonOther
	}
	outcome := SeederReportRejected
	if accepted {
		outcome = SeederReportAccepted
	}
	m.seederReports.WithLabelValues(reason, outcome).Inc()
}

// SeederDropped counts a seeder dropped as a holder of a track after reports
// from enough distinct leechers.
func (m *Metrics) SeederDropped() { m.seedersDropped.Inc() }

// FirstCopySkipped counts a first-copy request answered with no chunk.
func (m *Metrics) FirstCopySkipped() { m.firstCopySkips.Inc() }
