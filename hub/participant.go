package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/signaling"
	"github.com/ztream/ztream/store"
	"github.com/ztream/ztream/tracker"
)

// maxQueuedCandidates bounds the ICE candidates kept before the answer.
const maxQueuedCandidates = 64

// participant owns one peer: its WebSocket (a reader — the goroutine of
// ServeHTTP — and a writer fed by a bounded queue), its PeerConnection with
// the hub and the chunk sender of that PeerConnection's DataChannel.
type participant struct {
	h      *Hub
	conn   *websocket.Conn
	remote string
	log    *slog.Logger

	ctx    context.Context // canceled when the participant is torn down
	cancel context.CancelFunc

	sendq      *sendQueue
	closing    chan struct{}
	closeOnce  sync.Once
	closeCode  websocket.StatusCode
	closeText  string
	writerDone chan struct{}

	// Set by the handshake before the participant is registered (and
	// visible to other goroutines), read-only afterwards. log is only for
	// the ServeHTTP goroutine and those it starts after the handshake.
	id          string
	uploadCap   int
	peerMetrics PeerMetrics

	// Guarded by h.mu.
	lookups map[string]int64 // track → size, for pending lookups

	// Hub PeerConnection. remoteSet and queued belong to the read loop;
	// sigMu makes the offer go out before any trickled candidate.
	pc        *webrtc.PeerConnection
	sender    *chunkSender
	sigMu     sync.Mutex
	offerSent bool
	early     []webrtc.ICECandidateInit
	remoteSet bool
	queued    []webrtc.ICECandidateInit
	connected atomic.Bool
	// dc is the hub DataChannel, for Shutdown's drain check.
	dc atomic.Pointer[webrtc.DataChannel]
	// lastActive is when the peer last sent a WebSocket or DataChannel
	// message (UnixNano).
	lastActive atomic.Int64

	// Background goroutines (the chunk sender), waited for at the end.
	bgMu     sync.Mutex
	bgClosed bool
	bg       sync.WaitGroup
}

// renewTURN sends the peer new TURN credentials at half of their
// lifetime, until the participant ends.
func (p *participant) renewTURN() {
	t := time.NewTicker(p.h.cfg.TURNCredentialTTL / 2)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case now := <-t.C:
			p.send(signaling.ICEServers{ICEServers: p.h.iceServersFor(p.id, now)})
		}
	}
}

// spawn runs f in a goroutine that serve waits for, unless serve is ending.
func (p *participant) spawn(f func()) {
	p.bgMu.Lock()
	defer p.bgMu.Unlock()
	if p.bgClosed {
		return
	}
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		f()
	}()
}

// newParticipant makes the participant of conn; ipKey (clientip.Key) names
// its client in the store calls made for it (store.WithRequester).
func newParticipant(h *Hub, conn *websocket.Conn, remote, ipKey string) *participant {
	ctx, cancel := context.WithCancel(store.WithRequester(h.ctx, ipKey))
	p := &participant{
		h:          h,
		conn:       conn,
		remote:     remote,
		log:        h.log.With("remote", remote),
		ctx:        ctx,
		cancel:     cancel,
		sendq:      newSendQueue(h.cfg.SendQueue),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		lookups:    make(map[string]int64),
	}
	p.touch()
	return p
}

// touch records a sign of life from the peer.
func (p *participant) touch() { p.lastActive.Store(time.Now().UnixNano()) }

// checkIdle pings the peer if it was quiet for half of every, and closes
// it if it was quiet for limit (the hub's idle sweep calls it).
func (p *participant) checkIdle(now time.Time, every, limit time.Duration) {
	quiet := now.Sub(time.Unix(0, p.lastActive.Load()))
	switch {
	case quiet >= limit:
		p.log.Debug("peer idle, closing", "quiet", quiet)
		p.h.metrics.SignalingRejected("idle_timeout")
		p.fail(websocket.StatusPolicyViolation, "idle_timeout")
	case quiet >= every/2:
		p.send(signaling.Ping{})
	}
}

// serve runs the connection to its end.
func (p *participant) serve() {
	go p.writeLoop()
	defer func() {
		p.fail(websocket.StatusNormalClosure, "")
		<-p.writerDone
		p.cancel()
	}()

	hello, ok := p.readHello()
	if !ok {
		return
	}
	p.id = newPeerID()
	p.log = p.log.With("peer", p.id)
	p.uploadCap = hello.UploadCap
	if p.uploadCap == 0 {
		p.uploadCap = p.h.cfg.UploadCap
	}
	p.peerMetrics = p.h.metrics.OpenPeer(p.id)
	if err := p.h.register(p); err != nil {
		p.peerMetrics.Close()
		if errors.Is(err, errServerFull) {
			p.h.metrics.SignalingRejected(signaling.CodeServerFull)
			p.sendError(signaling.CodeServerFull, "too many peers", signaling.TypeHello)
			p.fail(websocket.StatusTryAgainLater, "server full")
		} else {
			p.fail(websocket.StatusGoingAway, "hub closed")
		}
		return
	}
	p.h.metrics.PeerConnected()
	defer func() {
		p.h.unregister(p)
		p.cancel()
		p.bgMu.Lock()
		p.bgClosed = true
		p.bgMu.Unlock()
		p.bg.Wait()
		if p.pc != nil {
			if err := p.pc.Close(); err != nil {
				p.log.Debug("close peer connection", "err", err)
			}
		}
		p.peerMetrics.Close()
		p.h.metrics.PeerDisconnected()
	}()
	p.log.Debug("peer joined", "cached", len(hello.Cached), "upload_cap", p.uploadCap)
	// The tracker knows the peer's cache before welcome goes out: a peer
	// that has its welcome can be found by any lookup that follows.
	p.hold(hello.Cached)
	p.send(signaling.Welcome{PeerID: p.id, ICEServers: p.h.iceServersFor(p.id, time.Now()), UploadCap: p.uploadCap,
		ICETransportPolicy: p.h.cfg.PeerICETransportPolicy})
	if p.h.usesTURNSecret() {
		p.spawn(p.renewTURN)
	}
	if err := p.startPeerConnection(); err != nil {
		p.log.Warn("hub peer connection setup failed", "err", err)
		p.sendError(signaling.CodeInternal, "peer connection setup failed", "")
		p.fail(websocket.StatusInternalError, "peer connection setup failed")
		return
	}
	p.readLoop()
}

// readHello reads the first message; on failure it has arranged the close.
func (p *participant) readHello() (signaling.Hello, bool) {
	// Not a Read deadline: coder/websocket would drop the connection
	// without a close frame. fail sends close 1008, which ends the Read.
	timer := time.AfterFunc(p.h.cfg.HelloTimeout, func() {
		p.h.metrics.SignalingRejected("hello_timeout")
		p.fail(websocket.StatusPolicyViolation, "hello_timeout")
	})
	typ, data, err := p.conn.Read(p.ctx)
	if !timer.Stop() {
		return signaling.Hello{}, false
	}
	if err != nil {
		if errors.Is(err, websocket.ErrMessageTooBig) {
			p.h.metrics.SignalingRejected("too_large")
		}
		return signaling.Hello{}, false
	}
	if typ != websocket.MessageText {
		p.h.metrics.SignalingRejected("binary")
		p.fail(websocket.StatusUnsupportedData, "text messages only")
		return signaling.Hello{}, false
	}
	m, err := signaling.Decode(data)
	if err != nil {
		p.h.metrics.SignalingRejected(signaling.CodeBadMessage)
		p.sendError(signaling.CodeBadMessage, err.Error(), "")
		p.fail(websocket.StatusPolicyViolation, "bad hello")
		return signaling.Hello{}, false
	}
	hello, ok := m.(signaling.Hello)
	if !ok {
		p.h.metrics.SignalingRejected(signaling.CodeHelloRequired)
		p.sendError(signaling.CodeHelloRequired, "first message must be hello", m.MessageType())
		p.fail(websocket.StatusPolicyViolation, "hello required")
		return signaling.Hello{}, false
	}
	if hello.Version != signaling.Version {
		p.h.metrics.SignalingRejected(signaling.CodeBadVersion)
		p.sendError(signaling.CodeBadVersion, fmt.Sprintf("version %d unsupported, want %d", hello.Version, signaling.Version), signaling.TypeHello)
		p.fail(websocket.StatusPolicyViolation, "unsupported version")
		return signaling.Hello{}, false
	}
	return hello, true
}

// readLoop handles messages until the connection ends. Every message costs
// a token of the connection's rate limiter; refusals cost a token of a
// second, small bucket, and a connection that empties it is closed.
func (p *participant) readLoop() {
	cfg := p.h.cfg
	limiter := rate.NewLimiter(rate.Limit(cfg.MessageRate), cfg.MessageBurst)
	strikes := rate.NewLimiter(1, max(1, cfg.MessageBurst/4))
	for {
		typ, data, err := p.conn.Read(p.ctx)
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				p.h.metrics.SignalingRejected("too_large")
			}
			p.log.Debug("websocket read ended", "err", err)
			return
		}
		p.touch()
		if typ != websocket.MessageText {
			p.h.metrics.SignalingRejected("binary")
			p.fail(websocket.StatusUnsupportedData, "text messages only")
			return
		}
		if !limiter.Allow() {
			p.h.metrics.SignalingRejected(signaling.CodeRateLimited)
			if !strikes.Allow() {
				p.log.Debug("peer keeps exceeding the message rate, closing")
				p.fail(websocket.StatusPolicyViolation, "rate_limited")
				return
			}
			p.sendError(signaling.CodeRateLimited, fmt.Sprintf("more than %g messages/s", cfg.MessageRate), "")
			continue
		}
		m, err := signaling.Decode(data)
		if err != nil {
			p.h.metrics.SignalingRejected(signaling.CodeBadMessage)
			p.sendError(signaling.CodeBadMessage, err.Error(), "")
			continue
		}
		p.handle(m)
	}
}

func (p *participant) handle(m signaling.Message) {
	switch m := m.(type) {
	case signaling.Signal:
		if m.PairID == "" && (m.To == "" || m.To == signaling.HubID) {
			p.handleHubSignal(m)
		} else {
			p.h.relay(p, m)
		}
	case signaling.Lookup:
		p.handleLookup(m)
	case signaling.Holding:
		p.holding(m)
	case signaling.UploadReply:
		if p.h.asks != nil && isRemoteAsk(m.LookupID) {
			p.h.asks.answer(p.id, m.LookupID, m.OK)
		} else {
			p.h.tracker.Reply(p.id, m.LookupID, m.OK)
		}
	case signaling.Unpair:
		p.h.unpair(p, m.PairID)
	case signaling.UploadDone:
		p.h.uploadDone(p, m.PairID)
	case signaling.Completed:
		p.hold([]string{m.Track})
	case signaling.Announce:
		p.hold(m.Tracks)
	case signaling.Stats:
		p.peerMetrics.Report(m)
	case signaling.Report:
		p.h.report(p, m)
	case signaling.Pong:
		// A sign of life; readLoop recorded it.
	default:
		p.h.metrics.SignalingRejected(signaling.CodeBadMessage)
		p.sendError(signaling.CodeBadMessage, "unexpected message type "+m.MessageType(), m.MessageType())
	}
}

// hold records tracks the peer holds. Their ids have track id syntax
// (signaling.Decode checks it); whether they exist is not checked, as an
// unknown id only costs a bounded tracker entry: lookups are for tracks in
// the store.
func (p *participant) hold(tracks []string) {
	if len(tracks) == 0 {
		return
	}
	if _, err := p.h.tracker.Hold(p.id, tracks...); err != nil {
		p.log.Debug("tracker hold", "err", err)
	}
	for _, t := range tracks {
		p.publishHolding(t)
	}
}

// publishHolding tells the other hubs, if any, what the tracker records of
// the peer's holding of track.
func (p *participant) publishHolding(track string) {
	c := p.h.cluster
	if c == nil {
		return
	}
	have, complete, ok := p.h.tracker.Holding(p.id, track)
	switch {
	case !ok:
		c.Unhold(p.id, track)
	case complete:
		c.Hold(p.id, p.uploadCap, track, 0, nil)
	default:
		shape, err := p.h.shapes.get(p.ctx, track)
		if err != nil {
			return
		}
		c.Hold(p.id, p.uploadCap, track, shape.chunks, have)
	}
}

// holding records which chunks of a track the peer holds. The bitfield's
// syntax was checked by signaling.Decode; its length must match the track's
// manifest, and the track must exist. A refused holding gets error
// bad_message (or unknown_track) and changes nothing.
func (p *participant) holding(m signaling.Holding) {
	shape, err := p.h.shapes.get(p.ctx, m.Track)
	if err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			p.h.metrics.SignalingRejected(signaling.CodeUnknownTrack)
			p.sendError(signaling.CodeUnknownTrack, "holding of "+m.Track+": unknown track", signaling.TypeHolding)
		case errors.Is(err, store.ErrLimited): // the peer's share of the store's work (package origin)
			p.log.Debug("holding: store", "track", m.Track, "err", err)
		default:
			p.log.Warn("holding: store", "track", m.Track, "err", err)
		}
		return
	}
	if shape.chunks != m.Chunks {
		p.h.metrics.SignalingRejected(signaling.CodeBadMessage)
		p.sendError(signaling.CodeBadMessage, fmt.Sprintf("holding of %s: %d chunks, the track has %d", m.Track, m.Chunks, shape.chunks), signaling.TypeHolding)
		return
	}
	bits, err := m.Bits()
	if err == nil {
		_, err = p.h.tracker.HoldPartial(p.id, m.Track, bits, m.Chunks)
	}
	if err != nil {
		p.log.Debug("tracker holding", "err", err)
	}
	p.publishHolding(m.Track)
}

func (p *participant) handleLookup(m signaling.Lookup) {
	track := m.Track
	shape, err := p.h.shapes.get(p.ctx, track)
	size := shape.size
	if err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			p.sendError(signaling.CodeUnknownTrack, "lookup of "+track+": unknown track", signaling.TypeLookup)
		case errors.Is(err, store.ErrLimited):
			p.h.metrics.SignalingRejected(signaling.CodeRateLimited)
			p.sendError(signaling.CodeRateLimited, "lookup of "+track+": "+err.Error(), signaling.TypeLookup)
		default:
			p.log.Warn("lookup: store", "track", track, "err", err)
			p.sendError(signaling.CodeInternal, "lookup of "+track+": track store unavailable", signaling.TypeLookup)
		}
		return
	}
	h := p.h
	h.mu.Lock()
	code := ""
	switch {
	case len(p.lookups) >= maxPendingLookups:
		code = signaling.CodeTooManyLookups
	case h.pairs.full(p.id):
		code = signaling.CodeTooManyPairs
	default:
		if _, dup := p.lookups[track]; dup {
			code = signaling.CodeDuplicateLookup
		} else {
			p.lookups[track] = size
		}
	}
	h.mu.Unlock()
	if code != "" {
		h.metrics.SignalingRejected(code)
		p.sendError(code, "lookup of "+track+" refused", signaling.TypeLookup)
		return
	}
	q := tracker.Query{Want: m.Want, From: m.From, Partial: m.Partial}
	q.Exclude = h.pairs.partnersOf(p.id)
	if _, err := h.tracker.LookupQuery(p.id, track, q); err != nil {
		h.mu.Lock()
		delete(p.lookups, track)
		h.mu.Unlock()
		code := signaling.CodeInternal
		if errors.Is(err, tracker.ErrTooManyLookups) {
			code = signaling.CodeTooManyLookups
		} else if errors.Is(err, tracker.ErrDuplicateLookup) {
			code = signaling.CodeDuplicateLookup
		}
		p.sendError(code, err.Error(), signaling.TypeLookup)
	}
}

// takeLookup removes the pending lookup of track and returns the track size.
// h.mu must be held.
func (p *participant) takeLookup(track string) int64 {
	size := p.lookups[track]
	delete(p.lookups, track)
	return size
}

// send queues m for the writer. A full queue means the peer does not read:
// the connection is dropped. It reports whether m was queued.
func (p *participant) send(m signaling.Message) bool {
	b, err := signaling.Encode(m)
	if err != nil {
		p.log.Error("encode message", "type", m.MessageType(), "err", err)
		return false
	}
	select {
	case <-p.closing:
		return false
	default:
	}
	if p.sendq.push(b) {
		return true
	}
	// The peer is megabytes behind: a close frame would queue behind them,
	// so cut the connection at once.
	p.h.metrics.SignalingRejected("slow_consumer")
	p.fail(websocket.StatusPolicyViolation, "slow_consumer")
	_ = p.conn.CloseNow()
	return false
}

func (p *participant) sendError(code, msg, ref string) {
	if len(msg) > 200 {
		msg = msg[:200]
	}
	p.send(signaling.Error{Code: code, Message: msg, Ref: ref})
}

// fail starts closing the connection with code and reason (first call wins);
// the writer flushes what is queued, then closes.
func (p *participant) fail(code websocket.StatusCode, reason string) {
	p.closeOnce.Do(func() {
		p.closeCode = code
		p.closeText = reason
		close(p.closing)
	})
}

func (p *participant) writeLoop() {
	defer close(p.writerDone)
	for {
		if b, ok := p.sendq.pop(); ok {
			if err := p.write(b); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					// Not reading for WriteTimeout: a slow consumer too.
					p.h.metrics.SignalingRejected("slow_consumer")
				}
				p.h.log.Debug("websocket write failed", "remote", p.remote, "err", err)
				p.fail(websocket.StatusInternalError, "write failed")
				_ = p.conn.CloseNow()
				return
			}
			continue
		}
		select {
		case <-p.sendq.ready:
		case <-p.closing:
			for {
				b, ok := p.sendq.pop()
				if !ok || p.write(b) != nil {
					break
				}
			}
			if err := p.conn.Close(p.closeCode, p.closeText); err != nil {
				p.h.log.Debug("websocket close", "remote", p.remote, "err", err)
			}
			return
		}
	}
}

func (p *participant) write(b []byte) error {
	ctx, cancel := context.WithTimeout(p.h.ctx, p.h.cfg.WriteTimeout)
	defer cancel()
	if err := p.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// startPeerConnection creates the hub PeerConnection, its "chunks"
// DataChannel and the offer, and sends the offer.
func (p *participant) startPeerConnection() error {
	pc, err := p.h.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return fmt.Errorf("new peer connection: %w", err)
	}
	p.pc = pc
	ordered := true
	dc, err := pc.CreateDataChannel(chunkproto.DataChannelLabel, &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		return fmt.Errorf("create data channel: %w", err)
	}
	p.sender = newChunkSender(p, p.h.senv, dc)

	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		p.sigMu.Lock()
		defer p.sigMu.Unlock()
		if !p.offerSent {
			p.early = append(p.early, init)
			return
		}
		p.send(signaling.Signal{From: signaling.HubID, Candidate: &init})
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		p.log.Debug("hub peer connection state", "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateConnected:
			p.connected.Store(true)
		case webrtc.PeerConnectionStateFailed:
			p.fail(websocket.StatusInternalError, "peer connection failed")
		}
	})
	timer := time.AfterFunc(p.h.cfg.ConnectTimeout, func() {
		if !p.connected.Load() {
			p.log.Debug("hub peer connection did not connect in time")
			p.fail(websocket.StatusInternalError, "peer connection timeout")
		}
	})
	context.AfterFunc(p.ctx, func() { timer.Stop() })

	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	p.sigMu.Lock()
	defer p.sigMu.Unlock()
	if err := pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("set local description: %w", err)
	}
	p.send(signaling.Signal{From: signaling.HubID, SDP: &offer})
	p.offerSent = true
	for i := range p.early {
		p.send(signaling.Signal{From: signaling.HubID, Candidate: &p.early[i]})
	}
	p.early = nil
	return nil
}

// handleHubSignal applies the peer's answer or candidate to the hub PeerConnection.
func (p *participant) handleHubSignal(s signaling.Signal) {
	if s.SDP != nil {
		if s.SDP.Type != webrtc.SDPTypeAnswer || p.remoteSet {
			p.sendError(signaling.CodeNegotiation, "the hub offers; send one answer", signaling.TypeSignal)
			return
		}
		if err := p.pc.SetRemoteDescription(*s.SDP); err != nil {
			p.sendError(signaling.CodeNegotiation, "answer rejected: "+err.Error(), signaling.TypeSignal)
			return
		}
		p.remoteSet = true
		for _, c := range p.queued {
			p.addCandidate(c)
		}
		p.queued = nil
		return
	}
	if !p.remoteSet {
		if len(p.queued) >= maxQueuedCandidates {
			p.sendError(signaling.CodeNegotiation, "too many candidates before the answer", signaling.TypeSignal)
			return
		}
		p.queued = append(p.queued, *s.Candidate)
		return
	}
	p.addCandidate(*s.Candidate)
}

func (p *participant) addCandidate(c webrtc.ICECandidateInit) {
	if err := p.pc.AddICECandidate(c); err != nil {
		p.sendError(signaling.CodeNegotiation, "candidate rejected: "+err.Error(), signaling.TypeSignal)
	}
}
