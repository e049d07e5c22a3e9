// Package hubmetrics connects the hub's Metrics interface to Ztream's
// Prometheus metrics: every hub event goes to the matching *metrics.Metrics
// method, and each peer's stats reports go through a metrics.PeerAccount that
// validates them (rate limit, byte budgets) before they are counted.
package hubmetrics

import (
	"time"

	"github.com/ztream/ztream/cluster"
	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/metrics"
	"github.com/ztream/ztream/signaling"
)

// Adapter is a hub.Metrics backed by *metrics.Metrics.
type Adapter struct {
	*metrics.Metrics
	limits metrics.Limits
	now    func() time.Time
}

var _ hub.Metrics = (*Adapter)(nil)

// New returns the hub.Metrics that records into m, validating peers' stats
// reports with limits lim (zero fields take metrics.DefaultLimits).
func New(m *metrics.Metrics, lim metrics.Limits) *Adapter {
	return &Adapter{Metrics: m, limits: lim, now: time.Now}
}

// OpenPeer implements hub.Metrics: it opens the stats account of one peer.
// The peer id is not used: no metric has a per-peer label.
func (a *Adapter) OpenPeer(string) hub.PeerMetrics {
	return &peer{acct: a.NewPeerAccount(a.now(), a.limits), now: a.now}
}

// peer is the hub.PeerMetrics of one connected peer.
type peer struct {
	acct *metrics.PeerAccount
	now  func() time.Time
}

func (p *peer) GrantDownload(trackSize int64) { p.acct.GrantDownload(trackSize) }

func (p *peer) GrantUpload(trackSize int64) { p.acct.GrantUpload(trackSize) }

// Report validates and counts one stats message; what the account refuses
// is counted in ztream_peer_stats_reports_total and otherwise dropped.
func (p *peer) Report(s signaling.Stats) {
	p.acct.Report(p.now(), Report(s))
}

// Close ends the accounting: the account holds no registered state.
func (p *peer) Close() {}

// Report converts a stats message to the report a metrics.PeerAccount takes.
func Report(s signaling.Stats) metrics.PeerReport {
	return metrics.PeerReport{
		HubBytes:         s.HubBytes,
		PeerBytes:        s.PeerBytes,
		RelayBytes:       s.RelayBytes,
		CacheBytes:       s.CacheBytes,
		UploadedBytes:    s.UploadedBytes,
		BadChunks:        s.BadChunks,
		Stalls:           s.Stalls,
		EmergencyFetches: s.EmergencyFetches,
		StartupMS:        s.StartupMS,
	}
}

// WatchCluster registers on m the hub's id (ztream_hub_info) and, with a
// cluster, the gauges of its membership, read from c at each scrape.
func WatchCluster(m *metrics.Metrics, hubID string, c *cluster.Cluster) {
	m.HubInfo(hubID)
	if c == nil {
		return
	}
	m.WatchCluster(func() metrics.ClusterState {
		s := c.State()
		return metrics.ClusterState{Connected: s.Connected, RTT: s.RTT, Hubs: len(s.Hubs), RemotePeers: s.RemotePeers}
	})
}
