package peer

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ztream/ztream/signaling"
)

// The peer's counters and the stats messages it sends the hub.

// Stats are a peer's counters since it was created (across reconnections).
type Stats struct {
	ServerBytes     int64 // chunk bytes received from the hub
	P2PBytes        int64 // chunk bytes received from peers (verified or not)
	RelayBytes      int64 // the part of P2PBytes that came through TURN relays
	CacheBytes      int64 // bytes played from the local cache
	UploadedBytes   int64 // chunk bytes sent to peers
	Playbacks       int64 // Play calls that started
	Complete        int64 // playbacks that played the whole track
	Stalls          int64
	StalledTime     time.Duration
	HashFailures    int64 // peer chunks failing the SHA-256 check (dropped)
	CorruptAccepted int64 // chunks kept whose bytes differ from the manifest
	UploadsRefused  int64 // can_upload / have / request refused for the cap
	// BadMessages counts malformed binary messages from peers (oversize
	// or truncated chunks), each abandoning the seeder.
	BadMessages int64
	// Timeouts counts seeders abandoned because they sent nothing within
	// the source timeout.
	Timeouts int64
	// ReportsSent counts `report` messages sent to the hub about bad seeders.
	ReportsSent int64
	// Reconnects counts hub connections re-established after a loss.
	Reconnects int64
	// Failovers counts those re-established with another hub than the one
	// lost (Config.HubURLs).
	Failovers int64
	// FaultsSent counts chunks served wrongly on purpose (Config.Fault).
	FaultsSent int64
	// MessagesDropped counts have and holding messages from peers dropped
	// for exceeding the inbound rate.
	MessagesDropped int64
	// PairsOpened counts peer↔peer pairs whose DataChannel opened;
	// PairsFailed those closed before it did, split by why in PairFailures.
	PairsOpened, PairsFailed int64
	PairFailures             PairFailures
	// PeerConns is a gauge: the peer↔peer PeerConnections now, open or
	// connecting (each costs CPU while idle too: ICE consent checks every
	// 2 s).
	PeerConns int64
}

// PairFailures splits Stats.PairsFailed by why the pair ended before its
// DataChannel opened, as seen by this side of it.
type PairFailures struct {
	// Refused: this peer refused the pair (at its PeerConnection limit) or
	// could not set it up (offer, answer, remote description).
	Refused int64 `json:"refused"`
	// Trimmed: closed while connecting to make room for a newer pair.
	Trimmed int64 `json:"trimmed"`
	// Timeout: the connect timeout passed.
	Timeout int64 `json:"timeout"`
	// Failed: ICE or DTLS failed.
	Failed int64 `json:"failed"`
	// Remote: the other side ended it (unpair from the hub).
	Remote int64 `json:"remote"`
	// Abandoned: nothing needed it any more (the playback ended, the hub
	// link was lost, the peer closed).
	Abandoned int64 `json:"abandoned"`
}

// Add adds o's counts to f.
func (f *PairFailures) Add(o PairFailures) {
	f.Refused += o.Refused
	f.Trimmed += o.Trimmed
	f.Timeout += o.Timeout
	f.Failed += o.Failed
	f.Remote += o.Remote
	f.Abandoned += o.Abandoned
}

// pairEnd is why a pair is closed (counted only if it never opened).
type pairEnd int

const (
	endRefused pairEnd = iota
	endTrimmed
	endTimeout
	endFailed
	endRemote
	endAbandoned
	pairEnds
)

// failedLink reports whether a pair that ended this way counts as a failed
// link in the lookup backoff (PROTOCOL.md §8.2): the connect timeout, ICE
// or DTLS failing, or the other side ending it; not this peer's own choice.
func (e pairEnd) failedLink() bool {
	return e == endTimeout || e == endFailed || e == endRemote
}

type counters struct {
	serverBytes, p2pBytes, cacheBytes, uploaded atomic.Int64
	relayBytes                                  atomic.Int64
	playbacks, complete, stalls, stalledNS      atomic.Int64
	hashFailures, corruptAccepted, refused      atomic.Int64
	badMessages, timeouts, reports, reconnects  atomic.Int64
	failovers                                   atomic.Int64
	faultsSent, dropped                         atomic.Int64
	pairsOpened, pairsFailed                    atomic.Int64
	pairFailures                                [pairEnds]atomic.Int64
}

// countPairFailure counts a pair that ended before it opened.
func (s *counters) countPairFailure(why pairEnd) {
	s.pairsFailed.Add(1)
	s.pairFailures[why].Add(1)
}

// Stats returns the peer's counters.
func (p *Peer) Stats() Stats {
	s := &p.stats
	return Stats{
		ServerBytes: s.serverBytes.Load(), P2PBytes: s.p2pBytes.Load(), RelayBytes: s.relayBytes.Load(), CacheBytes: s.cacheBytes.Load(),
		UploadedBytes: s.uploaded.Load(), Playbacks: s.playbacks.Load(), Complete: s.complete.Load(),
		Stalls: s.stalls.Load(), StalledTime: time.Duration(s.stalledNS.Load()),
		HashFailures: s.hashFailures.Load(), CorruptAccepted: s.corruptAccepted.Load(), UploadsRefused: s.refused.Load(),
		BadMessages: s.badMessages.Load(), Timeouts: s.timeouts.Load(), ReportsSent: s.reports.Load(),
		Reconnects: s.reconnects.Load(), Failovers: s.failovers.Load(), FaultsSent: s.faultsSent.Load(), MessagesDropped: s.dropped.Load(),
		PairsOpened: s.pairsOpened.Load(), PairsFailed: s.pairsFailed.Load(),
		PeerConns: int64(p.pairCount()),
		PairFailures: PairFailures{
			Refused: s.pairFailures[endRefused].Load(), Trimmed: s.pairFailures[endTrimmed].Load(),
			Timeout: s.pairFailures[endTimeout].Load(), Failed: s.pairFailures[endFailed].Load(),
			Remote: s.pairFailures[endRemote].Load(), Abandoned: s.pairFailures[endAbandoned].Load(),
		},
	}
}

// statsLoop sends counter deltas to the hub.
func (p *Peer) statsLoop() {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		p.flushStats(5 * time.Second)
	}
}

// flushStats sends the counters accumulated since the last stats the hub
// received. A failed send (hub away) keeps them for the next one.
func (p *Peer) flushStats(timeout time.Duration) {
	if p.cfg.StatsInterval < 0 {
		return
	}
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	cur := p.Stats()
	p.mu.Lock()
	prev := p.lastStats
	startup := p.startupBuf
	p.mu.Unlock()
	msg := signaling.Stats{
		HubBytes: cur.ServerBytes - prev.ServerBytes, PeerBytes: cur.P2PBytes - prev.P2PBytes, RelayBytes: cur.RelayBytes - prev.RelayBytes,
		CacheBytes: cur.CacheBytes - prev.CacheBytes, UploadedBytes: cur.UploadedBytes - prev.UploadedBytes,
		BadChunks: cur.HashFailures + cur.BadMessages - prev.HashFailures - prev.BadMessages,
		Stalls:    cur.Stalls - prev.Stalls, StartupMS: startup,
	}
	if msg.HubBytes == 0 && msg.PeerBytes == 0 && msg.CacheBytes == 0 && msg.UploadedBytes == 0 &&
		msg.BadChunks == 0 && msg.Stalls == 0 && len(startup) == 0 {
		return
	}
	p.mu.Lock()
	l := p.link
	p.mu.Unlock()
	if l == nil {
		return // kept for the next connection
	}
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	if err := p.sendCtx(ctx, l, msg); err != nil {
		p.log.Debug("stats", "err", err)
		return
	}
	p.mu.Lock()
	p.lastStats = cur
	p.startupBuf = p.startupBuf[len(startup):]
	if len(p.startupBuf) == 0 {
		p.startupBuf = nil
	}
	p.mu.Unlock()
}

func (p *Peer) noteStartup(d time.Duration) {
	p.mu.Lock()
	if len(p.startupBuf) < signaling.MaxStartupSamples {
		p.startupBuf = append(p.startupBuf, min(float64(d)/float64(time.Millisecond), 3600e3))
	}
	p.mu.Unlock()
}
