package hub

import (
	"time"

	"github.com/ztream/ztream/signaling"
)

// Metrics receives the hub's events. *metrics.Metrics implements every
// method but OpenPeer; an adapter supplies that one. Methods must be safe for
// concurrent use and must not block.
type Metrics interface {
	// PeerConnected counts a peer that completed the handshake.
	PeerConnected()
	// PeerDisconnected is called exactly once per PeerConnected.
	PeerDisconnected()
	// ChunkSent counts one chunk of n payload bytes sent on a DataChannel.
	ChunkSent(n int)
	// PairBrokered counts a pair the tracker created.
	PairBrokered()
	// PairFailed counts a pair that could not be set up (a side left).
	PairFailed()
	// CrossHubPair counts a pair this hub brokered with another hub's
	// seeder (it counts in PairBrokered too).
	CrossHubPair()
	// SeederLookup counts a finished lookup: outcome is "found" or a
	// signaling Reason* value; d is its duration.
	SeederLookup(outcome string, d time.Duration)
	// AddBufferedBytes adds delta to the bytes queued in the hub's
	// DataChannels (summed over peers).
	AddBufferedBytes(delta int64)
	// SignalingRejected counts a refused message, connection or dropped
	// peer: reason is a signaling Code* value (rate_limited for the message
	// rate too) or "too_large", "binary", "slow_consumer", "hello_timeout",
	// "idle_timeout", "too_many_connections" (per-address cap, HTTP 429),
	// "bad_handshake" (WebSocket upgrade refused, e.g. a foreign Origin).
	SignalingRejected(reason string)
	// SeederReported counts a report of a misbehaving seeder: reason is a
	// signaling.Report* value, accepted whether the hub took it.
	SeederReported(reason string, accepted bool)
	// SeederDropped counts a seeder dropped as a holder of a track after
	// reports from enough distinct leechers.
	SeederDropped()
	// FirstCopySkipped counts a first-copy request answered with no chunk:
	// other peers of the swarm received them all recently.
	FirstCopySkipped()
	// OpenPeer starts the accounting of one peer's stats reports.
	OpenPeer(peerID string) PeerMetrics
}

// PeerMetrics accounts the stats reports of one connected peer.
type PeerMetrics interface {
	// GrantDownload is called when the peer is paired as leecher for a
	// track of trackSize bytes, or requests a track from the hub for the
	// first time in its connection (a playback starts); GrantUpload when it
	// is paired as seeder, or a peer it is paired with starts a playback
	// (pairs are reused for other tracks without a lookup).
	GrantDownload(trackSize int64)
	GrantUpload(trackSize int64)
	// Report handles one validated stats message.
	Report(s signaling.Stats)
	// Close ends the accounting (the peer left).
	Close()
}

// NopMetrics is a Metrics that does nothing.
type NopMetrics struct{}

// PeerConnected implements Metrics.
func (NopMetrics) PeerConnected() {}

// PeerDisconnected implements Metrics.
func (NopMetrics) PeerDisconnected() {}

// ChunkSent implements Metrics.
func (NopMetrics) ChunkSent(int) {}

// PairBrokered implements Metrics.
func (NopMetrics) PairBrokered() {}

// CrossHubPair implements Metrics.
func (NopMetrics) CrossHubPair() {}

// PairFailed implements Metrics.
func (NopMetrics) PairFailed() {}

// SeederLookup implements Metrics.
func (NopMetrics) SeederLookup(string, time.Duration) {}

// AddBufferedBytes implements Metrics.
func (NopMetrics) AddBufferedBytes(int64) {}

// SignalingRejected implements Metrics.
func (NopMetrics) SignalingRejected(string) {}

// SeederReported implements Metrics.
func (NopMetrics) SeederReported(string, bool) {}

// SeederDropped implements Metrics.
func (NopMetrics) SeederDropped() {}

// FirstCopySkipped implements Metrics.
func (NopMetrics) FirstCopySkipped() {}

// OpenPeer implements Metrics.
func (NopMetrics) OpenPeer(string) PeerMetrics { return nopPeer{} }

type nopPeer struct{}

func (nopPeer) GrantDownload(int64)    {}
func (nopPeer) GrantUpload(int64)      {}
func (nopPeer) Report(signaling.Stats) {}
func (nopPeer) Close()                 {}
