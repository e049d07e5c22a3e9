package peer

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/signaling"
)

// maxQueuedCandidates bounds the ICE candidates kept before the remote description.
const maxQueuedCandidates = 64

// hubSignal handles an SDP offer or ICE candidate from the hub of link l.
func (p *Peer) hubSignal(l *link, m signaling.Signal) {
	if m.Candidate != nil {
		p.mu.Lock()
		pc, ready := l.pc, l.remoteSet
		if !ready {
			if len(l.cands) < maxQueuedCandidates {
				l.cands = append(l.cands, *m.Candidate)
			}
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if err := pc.AddICECandidate(*m.Candidate); err != nil {
			p.log.Debug("hub candidate", "err", err)
		}
		return
	}
	if m.SDP.Type != webrtc.SDPTypeOffer {
		return
	}
	if err := p.answerHub(l, *m.SDP); err != nil {
		p.log.Warn("hub offer", "err", err)
		l.ws.CloseNow() // the supervisor reconnects
	}
}

func (p *Peer) answerHub(l *link, offer webrtc.SessionDescription) error {
	p.mu.Lock()
	if l.pc != nil {
		p.mu.Unlock()
		return fmt.Errorf("hub renegotiation is not supported")
	}
	pc, err := p.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("hub PeerConnection: %w", err)
	}
	l.pc = pc
	p.mu.Unlock()
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		if err := p.sendOn(l, signaling.Signal{To: signaling.HubID, Candidate: &init}); err != nil {
			p.log.Debug("send hub candidate", "err", err)
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			// The hub connection is unusable: end the link; the supervisor
			// reconnects (or stops the peer).
			l.ws.CloseNow()
		}
	})
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() != chunkproto.DataChannelLabel {
			dc.Close()
			return
		}
		ep := newEndpoint(p, dc, signaling.HubID, nil)
		dc.OnOpen(func() {
			p.mu.Lock()
			first := l.ep == nil
			if first {
				l.ep = ep
			}
			p.mu.Unlock()
			if first {
				l.readyOnce.Do(func() { close(l.ready) })
			}
		})
	})
	if err := pc.SetRemoteDescription(offer); err != nil {
		return fmt.Errorf("hub offer: %w", err)
	}
	p.mu.Lock()
	l.remoteSet = true
	cands := l.cands
	l.cands = nil
	p.mu.Unlock()
	for _, c := range cands {
		if err := pc.AddICECandidate(c); err != nil {
			p.log.Debug("hub candidate", "err", err)
		}
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("hub answer: %w", err)
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("hub answer: %w", err)
	}
	return p.sendOn(l, signaling.Signal{To: signaling.HubID, SDP: &answer})
}

// hub returns the current hub endpoint, or nil while the hub is away.
func (p *Peer) hub() *endpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link == nil {
		return nil
	}
	return p.link.ep
}

// pair is a PeerConnection with another peer, brokered by the hub.
type pair struct {
	p      *Peer
	id     string
	remote string
	track  string
	role   string
	pc     *webrtc.PeerConnection

	open      chan struct{} // closed when the DataChannel opens
	closed    chan struct{}
	closeOnce sync.Once

	mu        sync.Mutex
	ep        *endpoint
	cands     []webrtc.ICECandidateInit
	remoteSet bool
	lastUsed  time.Time
	// relayed: the connection runs through a TURN relay (set when the
	// DataChannel opens).
	relayed atomic.Bool
	// why the pair was closed (a pairEnd), set before closed is.
	why atomic.Int32
}

// viaRelay reports whether pc's selected candidate pair uses a TURN relay
// on either side.
func viaRelay(pc *webrtc.PeerConnection) bool {
	sctp := pc.SCTP()
	if sctp == nil || sctp.Transport() == nil || sctp.Transport().ICETransport() == nil {
		return false
	}
	cp, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || cp == nil || cp.Local == nil || cp.Remote == nil {
		return false
	}
	return cp.Local.Typ == webrtc.ICECandidateTypeRelay || cp.Remote.Typ == webrtc.ICECandidateTypeRelay
}

func (pr *pair) endpoint() *endpoint {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.ep
}

func (pr *pair) isClosed() bool {
	select {
	case <-pr.closed:
		return true
	default:
		return false
	}
}

func (pr *pair) touch() {
	pr.mu.Lock()
	pr.lastUsed = time.Now()
	pr.mu.Unlock()
}

// close tears the pair down locally (no message to the hub); why is
// counted if the pair never opened.
func (pr *pair) close(why pairEnd) {
	pr.closeOnce.Do(func() {
		select {
		case <-pr.open:
		default:
			pr.p.stats.countPairFailure(why)
		}
		pr.why.Store(int32(why))
		close(pr.closed)
		pr.p.forgetPair(pr)
		if ep := pr.endpoint(); ep != nil {
			ep.shutdown()
		}
		go pr.pc.Close() // may block on DTLS/SCTP teardown
	})
}

// forgetPair removes a closed pair from the peer's pairs and its upload
// slot: the hub stops counting a pair at unpair.
func (p *Peer) forgetPair(pr *pair) {
	p.mu.Lock()
	if p.pairs[pr.id] == pr {
		delete(p.pairs, pr.id)
	}
	p.mu.Unlock()
	p.slots.forgetPair(pr.remote, pr.id)
}

// unpair ends a pair: tells the hub and closes it locally.
func (p *Peer) unpair(pairID string, why pairEnd) {
	p.mu.Lock()
	pr := p.pairs[pairID]
	p.mu.Unlock()
	if err := p.send(signaling.Unpair{PairID: pairID}); err != nil {
		p.log.Debug("unpair", "err", err)
	}
	if pr != nil {
		pr.close(why)
	}
}

// onPaired creates the PeerConnection of a new pair. The leecher offers and
// creates the DataChannel; the seeder waits for the offer.
func (p *Peer) onPaired(l *link, m signaling.Paired) {
	limit := p.cfg.MaxPeerConns + p.cfg.UploadCap
	p.mu.Lock()
	n := len(p.pairs)
	p.mu.Unlock()
	if n >= limit {
		p.trimPairs()
		p.mu.Lock()
		n = len(p.pairs)
		p.mu.Unlock()
		if n >= limit {
			p.log.Debug("too many peer connections; refusing a pair", "pair", m.PairID)
			p.stats.countPairFailure(endRefused) // never in p.pairs: unpair cannot count it
			p.unpair(m.PairID, endRefused)
			return
		}
	}
	pc, err := p.api.NewPeerConnection(webrtc.Configuration{ICEServers: l.iceServers, ICETransportPolicy: l.icePolicy})
	if err != nil {
		p.log.Warn("pair PeerConnection", "err", err)
		p.stats.countPairFailure(endRefused)
		p.unpair(m.PairID, endRefused)
		return
	}
	pr := &pair{p: p, id: m.PairID, remote: m.Peer, track: m.Track, role: m.Role, pc: pc,
		open: make(chan struct{}), closed: make(chan struct{}), lastUsed: time.Now()}
	p.mu.Lock()
	p.pairs[m.PairID] = pr
	p.mu.Unlock()
	if m.Role == signaling.RoleSeeder {
		// The hub counted this upload: hold the slot until upload_done/unpair.
		p.acquireSlot(m.Peer, m.PairID, true)
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		if err := p.send(signaling.Signal{To: pr.remote, PairID: pr.id, Candidate: &init}); err != nil {
			p.log.Debug("send pair candidate", "err", err)
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed {
			p.unpair(pr.id, endFailed)
		}
	})
	attach := func(dc *webrtc.DataChannel) {
		ep := newEndpoint(p, dc, pr.remote, pr)
		dc.OnOpen(func() {
			pr.relayed.Store(viaRelay(pc))
			p.stats.pairsOpened.Add(1)
			pr.mu.Lock()
			pr.ep = ep
			pr.mu.Unlock()
			close(pr.open)
		})
		dc.OnClose(func() { pr.close(endFailed) })
	}
	if m.Role == signaling.RoleLeecher {
		ordered := true
		dc, err := pc.CreateDataChannel(chunkproto.DataChannelLabel, &webrtc.DataChannelInit{Ordered: &ordered})
		if err != nil {
			p.log.Warn("pair DataChannel", "err", err)
			p.unpair(pr.id, endRefused)
			return
		}
		attach(dc)
		offer, err := pc.CreateOffer(nil)
		if err == nil {
			err = pc.SetLocalDescription(offer)
		}
		if err != nil {
			p.log.Warn("pair offer", "err", err)
			p.unpair(pr.id, endRefused)
			return
		}
		if err := p.send(signaling.Signal{To: pr.remote, PairID: pr.id, SDP: &offer}); err != nil {
			p.log.Debug("send offer", "err", err)
		}
		return
	}
	var once sync.Once
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() != chunkproto.DataChannelLabel {
			dc.Close()
			return
		}
		once.Do(func() { attach(dc) })
	})
}

// pairSignal handles an SDP or candidate relayed from the other peer of a pair.
func (p *Peer) pairSignal(m signaling.Signal) {
	p.mu.Lock()
	pr := p.pairs[m.PairID]
	p.mu.Unlock()
	if pr == nil || m.From != pr.remote {
		return
	}
	if m.Candidate != nil {
		pr.mu.Lock()
		if !pr.remoteSet {
			if len(pr.cands) < maxQueuedCandidates {
				pr.cands = append(pr.cands, *m.Candidate)
			}
			pr.mu.Unlock()
			return
		}
		pr.mu.Unlock()
		if err := pr.pc.AddICECandidate(*m.Candidate); err != nil {
			p.log.Debug("pair candidate", "err", err)
		}
		return
	}
	sdp := *m.SDP
	switch {
	case sdp.Type == webrtc.SDPTypeOffer && pr.role == signaling.RoleSeeder:
	case sdp.Type == webrtc.SDPTypeAnswer && pr.role == signaling.RoleLeecher:
	default:
		return
	}
	if err := pr.pc.SetRemoteDescription(sdp); err != nil {
		p.log.Debug("pair remote description", "err", err)
		p.unpair(pr.id, endRefused)
		return
	}
	pr.mu.Lock()
	pr.remoteSet = true
	cands := pr.cands
	pr.cands = nil
	pr.mu.Unlock()
	for _, c := range cands {
		if err := pr.pc.AddICECandidate(c); err != nil {
			p.log.Debug("pair candidate", "err", err)
		}
	}
	if sdp.Type != webrtc.SDPTypeOffer {
		return
	}
	answer, err := pr.pc.CreateAnswer(nil)
	if err == nil {
		err = pr.pc.SetLocalDescription(answer)
	}
	if err != nil {
		p.log.Debug("pair answer", "err", err)
		p.unpair(pr.id, endRefused)
		return
	}
	if err := p.send(signaling.Signal{To: pr.remote, PairID: pr.id, SDP: &answer}); err != nil {
		p.log.Debug("send answer", "err", err)
	}
}

// pairCount returns how many pairs the peer has, open or connecting.
func (p *Peer) pairCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pairs)
}

// openPairs returns the pairs whose DataChannel is open, most recently used first.
func (p *Peer) openPairs() []*pair {
	p.mu.Lock()
	out := make([]*pair, 0, len(p.pairs))
	for _, pr := range p.pairs {
		if pr.endpoint() != nil && !pr.isClosed() {
			out = append(out, pr)
		}
	}
	p.mu.Unlock()
	return out
}

// trimPairs closes the least recently used idle pairs above MaxPeerConns.
func (p *Peer) trimPairs() {
	p.mu.Lock()
	var idle []*pair
	for _, pr := range p.pairs {
		ep := pr.endpoint()
		if p.slots.holds(pr.remote) {
			continue
		}
		if ep != nil && (ep.servingCount() > 0 || ep.requestCount() > 0) {
			continue
		}
		idle = append(idle, pr)
	}
	excess := len(p.pairs) - p.cfg.MaxPeerConns
	p.mu.Unlock()
	if excess <= 0 {
		return
	}
	// Oldest first.
	for i := 1; i < len(idle); i++ {
		for j := i; j > 0 && idle[j].lastUsedAt().Before(idle[j-1].lastUsedAt()); j-- {
			idle[j], idle[j-1] = idle[j-1], idle[j]
		}
	}
	for i := 0; i < excess && i < len(idle); i++ {
		p.unpair(idle[i].id, endTrimmed)
	}
}

func (pr *pair) lastUsedAt() time.Time {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.lastUsed
}
