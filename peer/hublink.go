package peer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/ztream/ztream/signaling"
)

// The peer's connection to the hub: WebSocket, handshake, reconnection,
// message handling and tracker lookups.

// link is one WebSocket connection to the hub with its PeerConnection.
type link struct {
	ws *websocket.Conn
	id string
	// hub is the base URL of the hub connected to.
	hub string
	// iceServers and icePolicy configure peer↔peer PeerConnections
	// (welcome, then ice_servers renewals); the read loop owns them.
	iceServers []webrtc.ICEServer
	icePolicy  webrtc.ICETransportPolicy
	ready      chan struct{} // closed when the hub DataChannel opens
	done       chan struct{} // closed when the read loop ends
	readyOnce  sync.Once

	// Guarded by Peer.mu.
	pc        *webrtc.PeerConnection
	ep        *endpoint
	cands     []webrtc.ICECandidateInit
	remoteSet bool
}

// errNoHub is returned when a message is sent while the hub is away.
var errNoHub = errors.New("not connected to the hub")

// connect opens a hub connection: WebSocket, hello/welcome, and the hub
// PeerConnection up to its DataChannel opening. The link is current once
// connect returns it.
// dial connects to the hub for Dial: up to DialAttempts times, with the
// reconnection backoff between attempts.
func (p *Peer) dial(ctx context.Context) (*link, error) {
	for attempt := 0; ; attempt++ {
		l, err := p.connect(ctx)
		if err == nil {
			if attempt > 0 {
				p.log.Info("connected to the hub", "peer", l.id, "attempts", attempt+1)
			}
			return l, nil
		}
		if attempt+1 >= p.cfg.DialAttempts || ctx.Err() != nil {
			return nil, fmt.Errorf("connect to the hub (%d attempts): %w", attempt+1, err)
		}
		p.nextHub()
		p.log.Debug("connecting to the hub failed; retrying", "attempt", attempt+1, "err", err)
		t := time.NewTimer(backoff(attempt, p.cfg.ReconnectMin, p.cfg.ReconnectMax, rand.Float64))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("connect to the hub: %w", ctx.Err())
		}
	}
}

// nextHub moves the next connection attempt to the next hub of
// Config.HubURLs.
func (p *Peer) nextHub() { p.hubIndex.Add(1) }

// hubURL returns the hub the next connection attempt goes to.
func (p *Peer) hubURL() string {
	urls := p.cfg.HubURLs
	return urls[int(p.hubIndex.Load()%int64(len(urls)))]
}

func (p *Peer) connect(ctx context.Context) (*link, error) {
	hub := p.hubURL()
	wsURL, err := wsURLOf(hub)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	// HTTPClient: the manifests' client also dials the WebSocket (a hub
	// with a private CA is trusted for both).
	ws, _, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{HTTPClient: p.cfg.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("dial hub %s: %w", wsURL, err)
	}
	ws.SetReadLimit(signaling.MaxMessageSize)
	l := &link{ws: ws, hub: hub, ready: make(chan struct{}), done: make(chan struct{})}
	if err := p.handshake(dctx, l); err != nil {
		ws.CloseNow()
		return nil, err
	}
	p.mu.Lock()
	p.link = l
	p.id = l.id
	p.mu.Unlock()
	p.wg.Add(1)
	go p.readLoop(l)
	select {
	case <-l.ready:
		return l, nil
	case <-l.done:
		err = fmt.Errorf("hub connection ended before its DataChannel opened: %w", p.Err())
	case <-dctx.Done():
		err = fmt.Errorf("waiting for the hub DataChannel: %w", dctx.Err())
	}
	ws.CloseNow()
	<-l.done
	p.teardown(l)
	return nil, err
}

// supervise waits for the current link to end and reconnects, until the
// peer is closed (or for good with NoReconnect).
func (p *Peer) supervise(l *link) {
	defer p.wg.Done()
	defer close(p.done)
	for {
		select {
		case <-l.done:
		case <-p.ctx.Done():
			l.ws.CloseNow()
			<-l.done
		}
		p.teardown(l)
		if p.closing.Load() || p.ctx.Err() != nil {
			p.stop(errors.New("closed"))
			return
		}
		if p.cfg.NoReconnect {
			p.stop(errors.New("hub connection lost"))
			return
		}
		p.log.Info("hub connection lost; reconnecting")
		lost := l.hub
		p.nextHub()
		for attempt := 0; ; attempt++ {
			t := time.NewTimer(backoff(attempt, p.cfg.ReconnectMin, p.cfg.ReconnectMax, rand.Float64))
			select {
			case <-t.C:
			case <-p.ctx.Done():
				t.Stop()
				p.stop(errors.New("closed"))
				return
			}
			nl, err := p.connect(p.ctx)
			if err == nil {
				l = nl
				p.stats.reconnects.Add(1)
				if nl.hub != lost {
					p.stats.failovers.Add(1)
				}
				p.log.Info("reconnected to the hub", "peer", nl.id, "attempts", attempt+1)
				break
			}
			p.log.Debug("reconnect failed", "attempt", attempt+1, "err", err)
			p.nextHub()
		}
	}
}

// backoff returns the wait before reconnection attempt n (0-based):
// min·2ⁿ capped at max, with "equal jitter" (uniformly in [d/2, d]) so that
// peers dropped together do not come back together.
func backoff(n int, lo, hi time.Duration, rnd func() float64) time.Duration {
	d := hi
	if n < 32 {
		if e := lo << n; e > 0 && e < hi {
			d = e
		}
	}
	return d/2 + time.Duration(rnd()*float64(d/2))
}

// teardown ends everything tied to link l: its pairs (the peer ids and pair
// ids were the old hub's), lookups, upload slots and hub PeerConnection.
func (p *Peer) teardown(l *link) {
	l.ws.CloseNow()
	p.mu.Lock()
	if p.link == l {
		p.link = nil
	}
	pairs := make([]*pair, 0, len(p.pairs))
	for _, pr := range p.pairs {
		pairs = append(pairs, pr)
	}
	p.slots.clear()
	pc, ep := l.pc, l.ep
	p.mu.Unlock()
	p.failLookups()
	for _, pr := range pairs {
		pr.close(endAbandoned)
	}
	if ep != nil {
		ep.shutdown()
	}
	if pc != nil {
		pc.Close()
	}
}

func wsURLOf(hub string) (string, error) {
	u, err := url.Parse(hub)
	if err != nil {
		return "", fmt.Errorf("hub URL %q: %w", hub, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
		return u.String(), nil
	default:
		return "", fmt.Errorf("hub URL %q: scheme must be http, https, ws or wss", hub)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/ws"
	return u.String(), nil
}

// handshake sends hello (announcing the cached tracks) and reads welcome.
func (p *Peer) handshake(ctx context.Context, l *link) error {
	cached := p.cache.IDs()
	if len(cached) > signaling.MaxCachedTracks {
		cached = cached[:signaling.MaxCachedTracks]
	}
	if err := p.sendCtx(ctx, l, signaling.Hello{Version: signaling.Version, UploadCap: p.cfg.UploadCap, Cached: cached}); err != nil {
		return err
	}
	for {
		_, data, err := l.ws.Read(ctx)
		if err != nil {
			return fmt.Errorf("read welcome: %w", err)
		}
		msg, err := signaling.Decode(data)
		if err != nil {
			return fmt.Errorf("read welcome: %w", err)
		}
		switch m := msg.(type) {
		case signaling.Welcome:
			l.id = m.PeerID
			l.iceServers = m.ICEServers
			if m.ICETransportPolicy == signaling.ICETransportPolicyRelay {
				l.icePolicy = webrtc.ICETransportPolicyRelay
			}
			return nil
		case signaling.Error:
			return fmt.Errorf("hub refused hello: %s: %s", m.Code, m.Message)
		}
	}
}

// send writes one message to the hub on the current connection.
func (p *Peer) send(m signaling.Message) error {
	p.mu.Lock()
	l := p.link
	p.mu.Unlock()
	if l == nil {
		return fmt.Errorf("send %s: %w", m.MessageType(), errNoHub)
	}
	return p.sendOn(l, m)
}

// sendOn writes one message on link l.
func (p *Peer) sendOn(l *link, m signaling.Message) error {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	return p.sendCtx(ctx, l, m)
}

func (p *Peer) sendCtx(ctx context.Context, l *link, m signaling.Message) error {
	data, err := signaling.Encode(m)
	if err != nil {
		return err
	}
	if err := l.ws.Write(ctx, websocket.MessageText, data); err != nil {
		return fmt.Errorf("send %s: %w", m.MessageType(), err)
	}
	return nil
}

// readLoop handles the messages of link l until its WebSocket ends.
func (p *Peer) readLoop(l *link) {
	defer p.wg.Done()
	defer close(l.done)
	for {
		_, data, err := l.ws.Read(p.ctx)
		if err != nil {
			p.log.Debug("hub WebSocket ended", "peer", l.id, "err", err)
			return
		}
		msg, err := signaling.Decode(data)
		if err != nil {
			p.log.Debug("ignoring hub message", "err", err)
			continue
		}
		p.handle(l, msg)
	}
}

func (p *Peer) handle(l *link, msg signaling.Message) {
	switch m := msg.(type) {
	case signaling.Signal:
		if m.PairID == "" {
			p.hubSignal(l, m)
		} else {
			p.pairSignal(m)
		}
	case signaling.ICEServers:
		l.iceServers = m.ICEServers // renewed TURN credentials, for the next pairs
	case signaling.Catalog:
		// The library changed: this peer shows no catalog.
	case signaling.Ping:
		if err := p.sendOn(l, signaling.Pong{}); err != nil {
			p.log.Debug("pong", "err", err)
		}
	case signaling.CanUpload:
		ok := p.canUpload(m.Track, "")
		if !ok {
			p.stats.refused.Add(1)
		}
		if err := p.sendOn(l, signaling.UploadReply{LookupID: m.LookupID, OK: ok}); err != nil {
			p.log.Debug("upload_reply", "err", err)
		}
	case signaling.Paired:
		p.onPaired(l, m)
	case signaling.LookupResult:
		p.mu.Lock()
		ch := p.lookups[m.Track]
		delete(p.lookups, m.Track)
		p.mu.Unlock()
		if ch != nil {
			ch <- m // buffered, one result per lookup
		} else {
			for _, id := range resultPairs(m) {
				p.unpair(id, endAbandoned) // nobody waits any more
			}
		}
	case signaling.Unpair:
		p.mu.Lock()
		pr := p.pairs[m.PairID]
		p.mu.Unlock()
		if pr != nil {
			pr.close(endRemote)
		}
	case signaling.Error:
		// Also the harmless answer to a report the hub refused (not_paired)
		// or did not know (an older hub: bad_message): the peer has already
		// stopped using the seeder.
		p.log.Debug("hub error", "code", m.Code, "message", m.Message, "ref", m.Ref)
	}
}

// resultPairs returns the pair ids of a lookup result (one-seeder results
// of older hubs name only PairID).
func resultPairs(m signaling.LookupResult) []string {
	if len(m.Peers) == 0 {
		if m.PairID == "" {
			return nil
		}
		return []string{m.PairID}
	}
	ids := make([]string, 0, len(m.Peers))
	for _, lp := range m.Peers {
		ids = append(ids, lp.PairID)
	}
	return ids
}

// failLookups ends every pending lookup.
func (p *Peer) failLookups() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for track, ch := range p.lookups {
		ch <- signaling.LookupResult{Track: track, Reason: signaling.ReasonShutdown}
		delete(p.lookups, track)
	}
}

// lookup asks the tracker for seeders of q.Track.
func (p *Peer) lookup(ctx context.Context, q signaling.Lookup) (signaling.LookupResult, error) {
	track := q.Track
	ch := make(chan signaling.LookupResult, 1)
	p.mu.Lock()
	if _, dup := p.lookups[track]; dup {
		p.mu.Unlock()
		return signaling.LookupResult{}, errors.New("lookup already pending")
	}
	p.lookups[track] = ch
	p.mu.Unlock()
	forget := func() {
		p.mu.Lock()
		if p.lookups[track] == ch {
			delete(p.lookups, track)
		}
		p.mu.Unlock()
	}
	if err := p.send(q); err != nil {
		forget()
		return signaling.LookupResult{}, err
	}
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case r := <-ch:
		return r, nil
	case <-t.C:
		forget()
		return signaling.LookupResult{}, errors.New("lookup: no result within 5s")
	case <-ctx.Done():
		forget()
		return signaling.LookupResult{}, ctx.Err()
	}
}
