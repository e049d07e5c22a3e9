package metrics

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztream/ztream/origin"
)

// Kinds of origin fetch (label "kind" of ztream_origin_bytes_total and
// ztream_origin_fetch_duration_seconds).
var originKinds = []string{"index", "tags", "track"}

// Results of a request for an origin track (label "result" of
// ztream_origin_cache_requests_total).
var originResults = []string{"hit", "miss", "joined"}

// originBuckets are the fetch latency buckets (seconds): a tag read on a
// LAN to a slow track download.
var originBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// OriginMetrics records what serve --origin does (package origin); it is
// an origin.Metrics.
type OriginMetrics struct {
	bytes       *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	errors      *prometheus.CounterVec
	requests    *prometheus.CounterVec
	cacheBytes  prometheus.Gauge
	cacheTracks prometheus.Gauge
	evictions   prometheus.Counter
	reasons     []string // origin.Reasons: the label values of errors
}

var _ origin.Metrics = (*OriginMetrics)(nil)

// Origin registers the origin metrics in m's registry and returns them.
// Call it once, in origin mode only.
func (m *Metrics) Origin() *OriginMetrics {
	o := &OriginMetrics{
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ztream", Name: "origin_bytes_total",
			Help: "Bytes fetched from the origin, by kind: index, tags (Range requests while cataloguing) or track.",
		}, []string{"kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ztream", Name: "origin_fetch_duration_seconds",
			Help:    "Time of successful origin fetches, by kind: index, tags or track (download only; a transcode follows).",
			Buckets: originBuckets,
		}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ztream", Name: "origin_errors_total",
			Help: "Origin requests that failed, by reason: gone, changed, truncated, too_large, content_type, redirect, status, timeout, busy (too many fetches under way), rate_limited (one client asked for too many tracks not cached), transcode, other.",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ztream", Name: "origin_cache_requests_total",
			Help: "Requests for an origin track, by result: hit (in the cache), miss (fetched from the origin), joined (waited for a fetch under way).",
		}, []string{"result"}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "ztream", Name: "origin_cache_bytes",
			Help: "Audio bytes of the origin tracks held in the cache.",
		}),
		cacheTracks: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "ztream", Name: "origin_cache_tracks",
			Help: "Origin tracks held in the cache.",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ztream", Name: "origin_cache_evictions_total",
			Help: "Origin tracks evicted from the cache (least recently used first, or gone from the origin).",
		}),
	}
	for _, k := range originKinds {
		o.bytes.WithLabelValues(k)
		o.duration.WithLabelValues(k)
	}
	o.reasons = origin.Reasons()
	for _, r := range o.reasons {
		o.errors.WithLabelValues(r)
	}
	for _, r := range originResults {
		o.requests.WithLabelValues(r)
	}
	m.reg.MustRegister(o.bytes, o.duration, o.errors, o.requests, o.cacheBytes, o.cacheTracks, o.evictions)
	return o
}

// OriginFetched counts a successful fetch of n bytes that took d.
func (o *OriginMetrics) OriginFetched(kind string, n int64, d time.Duration) {
	if !slices.Contains(originKinds, kind) {
		kind = "track"
	}
	o.bytes.WithLabelValues(kind).Add(float64(n))
	o.duration.WithLabelValues(kind).Observe(d.Seconds())
}

// OriginError counts a failed origin request.
func (o *OriginMetrics) OriginError(reason string) {
	if !slices.Contains(o.reasons, reason) {
		reason = "other"
	}
	o.errors.WithLabelValues(reason).Inc()
}

// OriginCacheRequest counts a request for an origin track.
func (o *OriginMetrics) OriginCacheRequest(result string) {
	if !slices.Contains(originResults, result) {
		return
	}
	o.requests.WithLabelValues(result).Inc()
}

// OriginCacheSize sets the cache's size.
func (o *OriginMetrics) OriginCacheSize(bytes int64, tracks int) {
	o.cacheBytes.Set(float64(bytes))
	o.cacheTracks.Set(float64(tracks))
}

// OriginEvicted counts a track evicted from the cache.
func (o *OriginMetrics) OriginEvicted() { o.evictions.Inc() }
