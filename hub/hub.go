// Package hub is Ztream's realtime server: it accepts each peer's WebSocket
// control connection (GET /ws), negotiates one Pion PeerConnection per peer
// whose "chunks" DataChannel streams track chunks from the store with
// backpressure, runs the tracker that pairs leechers with seeders, and relays
// signaling strictly between paired peers. docs/PROTOCOL.md describes the
// wire protocol; package signaling and chunkproto hold its messages.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/cluster"
	"github.com/ztream/ztream/firstcopy"
	"github.com/ztream/ztream/internal/clientip"
	"github.com/ztream/ztream/internal/pionlog"
	"github.com/ztream/ztream/signaling"
	"github.com/ztream/ztream/store"
	"github.com/ztream/ztream/tracker"
)

// maxPendingLookups bounds the lookups one peer has in progress.
const maxPendingLookups = 4

// closeGrace is how long Close waits for peers to finish their close handshake.
const closeGrace = 3 * time.Second

// ErrClosed is returned by operations on a closed Hub.
var ErrClosed = errors.New("hub: closed")

// Hub serves peers. Create it with New, mount it (it is an http.Handler for
// the /ws route) and Close it on shutdown.
type Hub struct {
	cfg     Config
	st      store.Store
	log     *slog.Logger
	metrics Metrics
	api     *webrtc.API
	mux     ice.UDPMux
	// tcpLn and tcpMux accept ICE over TCP (nil without Config.TCPPort).
	tcpLn   net.Listener
	tcpMux  ice.TCPMux
	tracker *tracker.Tracker
	shapes  *shapeCache
	copies  *firstcopy.Copies
	// senv is what the chunk senders use of the hub (built once in New).
	senv senderEnv

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// draining is set by Shutdown: no new connections, no new ranges.
	draining atomic.Bool
	// activeRanges counts the chunk ranges in flight over all peers.
	activeRanges atomic.Int64

	mu     sync.Mutex
	closed bool
	conns  map[*participant]struct{} // every open connection, before hello too
	perIP  map[string]int            // open connections by client address key
	open   int                       // accepted requests on /ws not yet finished
	peers  map[string]*participant

	// catalogDue is set while a catalog message waits for catalogTimer;
	// catalogSent is when the last one went (CatalogChanged).
	catalogDue   bool
	catalogSent  time.Time
	catalogTimer *time.Timer
	// pairs owns the pairs; it has its own lock, taken after mu when both
	// are (a pair is made or a peer's pairs removed with its entry in peers).
	pairs *pairTable

	// cluster joins the other hubs (nil: this hub is alone); asks holds the
	// can_upload asks other hubs relayed to this hub's peers; crossing
	// counts the goroutines finishing lookups with another hub's seeders.
	cluster  *cluster.Cluster
	asks     *remoteAsks
	crossing sync.WaitGroup
	// sweeping is the idle sweep's goroutine.
	sweeping sync.WaitGroup
}

// sweepIdle pings the quiet peers and closes the silent ones, every
// Config.PingInterval until the hub closes: one goroutine and one timer for
// all peers, not one per peer.
func (h *Hub) sweepIdle() {
	defer h.sweeping.Done()
	every, limit := h.cfg.PingInterval, h.cfg.IdleTimeout
	tick := time.NewTicker(every)
	defer tick.Stop()
	var peers []*participant
	for {
		select {
		case <-h.ctx.Done():
			return
		case now := <-tick.C:
			h.mu.Lock()
			peers = peers[:0]
			for _, p := range h.peers {
				peers = append(peers, p)
			}
			h.mu.Unlock()
			for _, p := range peers {
				p.checkIdle(now, every, limit)
			}
			clear(peers)
		}
	}
}

// New returns a hub serving chunks from st. With cfg.UDPPort set it binds
// that UDP port (on every local address) for all PeerConnections.
func New(cfg Config, st store.Store) (*Hub, error) {
	cfg = cfg.withDefaults()
	if cfg.UDPPort < 0 || cfg.UDPPort > 65535 {
		return nil, fmt.Errorf("hub: udp port %d out of range", cfg.UDPPort)
	}
	if cfg.TCPPort < -1 || cfg.TCPPort > 65535 {
		return nil, fmt.Errorf("hub: tcp port %d out of range", cfg.TCPPort)
	}
	if cfg.Net != nil && (cfg.UDPPort != 0 || cfg.TCPPort != 0) {
		return nil, errors.New("hub: a virtual network (Net) excludes the udp and tcp ports")
	}
	h := &Hub{
		cfg:     cfg,
		st:      st,
		log:     cfg.Logger,
		metrics: cfg.Metrics,
		conns:   make(map[*participant]struct{}),
		perIP:   make(map[string]int),
		peers:   make(map[string]*participant),
		pairs:   newPairTable(cfg.MaxPairs, newPairPrefix()),
	}
	se := webrtc.SettingEngine{LoggerFactory: pionlog.Factory{Log: cfg.Logger}}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// One network for every PeerConnection: without it each ICE agent makes
	// its own, with its own copy of the host's interfaces (13 KiB a peer).
	network := cfg.Net
	if network == nil {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, fmt.Errorf("hub: network interfaces: %w", err)
		}
		network = n
	}
	se.SetNet(network)
	// ICE lite (RFC 8445 §2.5): the hub only answers its peers' checks and
	// sends none of its own (Config.ICELite).
	se.SetLite(cfg.ICELite)
	// No keepalive checks of the hub's own once a pair is selected: the
	// peer's checks (the Go peer every 2 s, browsers' consent checks every
	// 2.5–5 s) keep the path open and tell the hub the peer is there, and
	// the hub answers them. Pion pings every 2 s otherwise, whatever the
	// traffic: −20 % idle CPU per peer (docs/BENCHMARKS.md).
	se.SetICETimeouts(iceDisconnectedTimeout, iceFailedTimeout, 0)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.TCPPort != 0 {
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", max(cfg.TCPPort, 0)))
		if err != nil {
			return nil, fmt.Errorf("hub: ice-tcp listener on port %d: %w", cfg.TCPPort, err)
		}
		h.tcpLn = ln
		h.tcpMux = webrtc.NewICETCPMux(pionlog.Factory{Log: cfg.Logger}.NewLogger("tcpmux"), ln, iceTCPReadBuffer)
		se.SetICETCPMux(h.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	se.SetSCTPMaxMessageSize(chunkproto.MaxMessageSize)
	// Detached channels: the chunk sender reads with its own small buffer
	// (Pion's callback API keeps a 64 KiB one per channel).
	se.DetachDataChannels()
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	if cfg.IPFilter != nil {
		se.SetIPFilter(cfg.IPFilter)
	}
	if len(cfg.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("hub: public ips %v: %w", cfg.PublicIPs, err)
		}
	}
	if cfg.UDPPort != 0 {
		opts := []ice.UDPMuxFromPortOption{
			ice.UDPMuxFromPortWithReadBufferSize(cfg.UDPBufferBytes),
			ice.UDPMuxFromPortWithWriteBufferSize(cfg.UDPBufferBytes),
			ice.UDPMuxFromPortWithLogger(pionlog.Factory{Log: cfg.Logger}.NewLogger("udpmux")),
		}
		if cfg.IncludeLoopback {
			opts = append(opts, ice.UDPMuxFromPortWithLoopback())
		}
		if cfg.IPFilter != nil {
			opts = append(opts, ice.UDPMuxFromPortWithIPFilter(cfg.IPFilter))
		}
		mux, err := ice.NewMultiUDPMuxFromPort(cfg.UDPPort, opts...)
		if err != nil {
			if h.tcpMux != nil {
				_ = h.tcpMux.Close()
			}
			return nil, fmt.Errorf("hub: udp mux on port %d: %w", cfg.UDPPort, err)
		}
		h.mux = mux
		se.SetICEUDPMux(mux)
	}
	h.api = webrtc.NewAPI(
		webrtc.WithSettingEngine(se),
		webrtc.WithMediaEngine(&webrtc.MediaEngine{}),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}),
	)
	h.tracker = tracker.New(tracker.Config{
		HoldersPerTrack:   cfg.HoldersPerTrack,
		MaxTracksPerPeer:  signaling.MaxCachedTracks,
		MaxPartialPerPeer: cfg.MaxPartialTracks,
		MaxChunks:         signaling.MaxChunks,
		MaxPendingPerPeer: maxPendingLookups,
		MaxWant:           signaling.MaxLookupWant,
		LookupTimeout:     cfg.LookupTimeout,
	}, asker{h}, h.onLookupResult)
	h.shapes = newShapeCache(st, cfg.StoreTimeout)
	h.copies = firstcopy.New(cfg.FirstCopyTTL, cfg.FirstCopyStripe)
	h.senv = senderEnv{
		cfg: &h.cfg, metrics: h.metrics, st: st, shapes: h.shapes, copies: h.copies,
		activeRanges: &h.activeRanges, draining: &h.draining,
		connected: h.connected, partnersOf: h.partnersOf,
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	if cfg.Cluster != nil {
		h.cluster = cfg.Cluster
		h.asks = newRemoteAsks(cfg.LookupTimeout)
		if err := cfg.Cluster.Start(clusterNode{h}); err != nil {
			h.cancel()
			h.tracker.Close()
			_ = h.closeMuxes()
			return nil, fmt.Errorf("hub: %w", err)
		}
	}
	h.sweeping.Add(1)
	go h.sweepIdle()
	return h, nil
}

// newPairPrefix returns a random pair id prefix for one hub run.
func newPairPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "x-" + hex.EncodeToString(b[:]) + "-"
}

// iceTCPReadBuffer is the ICE-TCP mux's read buffer per connection, in
// packets (Pion's examples use 8).
const iceTCPReadBuffer = 8

// The hub's ICE timeouts: a peer's path is disconnected after 15 s without
// a packet from it (its consent checks come every 2–6 s) and failed 15 s
// later, when the hub drops the peer (docs/PROTOCOL.md §3).
const (
	iceDisconnectedTimeout = 15 * time.Second
	iceFailedTimeout       = 15 * time.Second
)

// TCPAddr returns the address of the hub's ICE-TCP listener (nil without
// Config.TCPPort).
func (h *Hub) TCPAddr() net.Addr {
	if h.tcpLn == nil {
		return nil
	}
	return h.tcpLn.Addr()
}

// UDPAddrs returns the addresses of the hub's UDP mux (nil without one).
func (h *Hub) UDPAddrs() []net.Addr {
	if h.mux == nil {
		return nil
	}
	return h.mux.GetListenAddresses()
}

// Peers returns the number of peers past the handshake.
func (h *Hub) Peers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.peers)
}

// ServeHTTP accepts one peer's WebSocket and serves it until it disconnects
// or the hub closes. Mount it on GET /ws, outside compression and timeout
// middleware. A hub that is shutting down answers 503, a client address
// over Config.MaxPeersPerIP 429, and a foreign Origin 403.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	remote := h.cfg.ClientIP.Addr(r)
	ipKey := clientip.Key(remote)
	h.mu.Lock()
	switch {
	case h.closed || h.draining.Load():
		h.mu.Unlock()
		http.Error(w, "hub shutting down", http.StatusServiceUnavailable)
		return
	case h.open >= 2*h.cfg.MaxPeers:
		h.mu.Unlock()
		h.metrics.SignalingRejected(signaling.CodeServerFull)
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	case h.cfg.MaxPeersPerIP > 0 && h.perIP[ipKey] >= h.cfg.MaxPeersPerIP:
		h.mu.Unlock()
		h.metrics.SignalingRejected("too_many_connections")
		http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
		return
	}
	h.open++
	h.perIP[ipKey]++
	h.wg.Add(1)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.open--
		if h.perIP[ipKey]--; h.perIP[ipKey] <= 0 {
			delete(h.perIP, ipKey)
		}
		h.mu.Unlock()
		h.wg.Done()
	}()

	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.cfg.OriginPatterns})
	if err != nil {
		h.metrics.SignalingRejected("bad_handshake")
		h.log.Debug("websocket accept failed", "remote", remote, "err", err)
		return
	}
	conn.SetReadLimit(signaling.MaxMessageSize)
	p := newParticipant(h, conn, remote, ipKey)
	h.mu.Lock()
	h.conns[p] = struct{}{}
	closed := h.closed
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.conns, p)
		h.mu.Unlock()
	}()
	if closed {
		p.fail(websocket.StatusGoingAway, "hub shutting down")
	}
	p.serve()
}

// drainPoll is how often Shutdown checks whether the ranges in flight are done.
const drainPoll = 20 * time.Millisecond

// Shutdown shuts the hub down gracefully: it refuses new connections (503)
// and new chunk requests (DataChannel error unavailable), lets the ranges in
// flight finish and their bytes reach the peers until ctx ends, then closes
// like Close (every peer gets close status 1001). It returns an error
// wrapping ctx.Err() if ranges had to be cut.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.draining.Store(true)
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	var err error
	for !h.drained() {
		select {
		case <-tick.C:
			continue
		case <-ctx.Done():
			err = fmt.Errorf("hub: shutdown cut %d chunk ranges: %w", h.activeRanges.Load(), ctx.Err())
		}
		break
	}
	if cerr := h.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// drained reports whether no range is in flight and every hub DataChannel
// has delivered what it queued.
func (h *Hub) drained() bool {
	if h.activeRanges.Load() > 0 {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for p := range h.conns {
		if dc := p.dc.Load(); dc != nil && dc.ReadyState() == webrtc.DataChannelStateOpen && dc.BufferedAmount() > 0 {
			return false
		}
	}
	return true
}

// Close disconnects every peer (close status 1001), waits for their
// goroutines and releases the UDP mux. Ranges in flight are cut (see
// Shutdown). It is safe to call twice.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	if h.catalogTimer != nil {
		h.catalogTimer.Stop()
	}
	conns := make([]*participant, 0, len(h.conns))
	for p := range h.conns {
		conns = append(conns, p)
	}
	h.mu.Unlock()
	for _, p := range conns {
		p.fail(websocket.StatusGoingAway, "hub shutting down")
	}
	// Give the close handshakes a moment, then cut whatever is left.
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeGrace):
		h.cancel()
		<-done
	}
	h.cancel()
	h.sweeping.Wait()
	h.crossing.Wait()
	var errs []error
	if h.cluster != nil {
		if err := h.cluster.Close(); err != nil {
			errs = append(errs, fmt.Errorf("hub: leave the cluster: %w", err))
		}
		h.asks.close()
	}
	h.tracker.Close()
	return errors.Join(append(errs, h.closeMuxes())...)
}

// closeMuxes releases the UDP and ICE-TCP muxes.
func (h *Hub) closeMuxes() error {
	var errs []error
	if h.mux != nil {
		if err := h.mux.Close(); err != nil {
			errs = append(errs, fmt.Errorf("hub: close udp mux: %w", err))
		}
	}
	if h.tcpMux != nil {
		if err := h.tcpMux.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("hub: close ice-tcp mux: %w", err))
		}
	}
	return errors.Join(errs...)
}

// register adds a peer after its hello; it fails when the hub is full or closed.
func (h *Hub) register(p *participant) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.draining.Load() {
		return ErrClosed
	}
	if len(h.peers) >= h.cfg.MaxPeers {
		return errServerFull
	}
	if err := h.tracker.Join(p.id, p.uploadCap); err != nil {
		return fmt.Errorf("hub: register %s: %w", p.id, err)
	}
	h.peers[p.id] = p
	return nil
}

var errServerFull = errors.New("hub: server full")

// unregister removes a departed peer: its pairs end (the other sides get
// unpair peer_left, through their hub when it is another), the tracker and
// the cluster forget it.
func (h *Hub) unregister(p *participant) {
	h.mu.Lock()
	if h.peers[p.id] != p {
		h.mu.Unlock()
		return
	}
	delete(h.peers, p.id)
	ended := h.pairs.removePeer(p.id)
	h.mu.Unlock()
	for _, pr := range ended {
		if pr.uploading && pr.seeder != p.id {
			h.tracker.ReleaseUpload(pr.seeder)
		}
		h.tellOther(pr, p.id, signaling.ReasonPeerLeft)
	}
	h.tracker.Leave(p.id)
	if h.cluster != nil {
		h.cluster.Leave(p.id)
	}
}

// tellOther tells the member of pr other than by that by ended it.
func (h *Hub) tellOther(pr *pair, by, reason string) {
	other := pr.other(by)
	if other == pr.remote {
		h.cluster.Send(pr.hub, cluster.Message{Kind: cluster.KindUnpair, Pair: pr.id, Peer: by, Reason: reason})
		return
	}
	if o := h.peer(other); o != nil {
		o.send(signaling.Unpair{PairID: pr.id, Reason: reason})
	}
}

// peer returns the connected peer id, or nil.
func (h *Hub) peer(id string) *participant {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peers[id]
}

// relay forwards a peer↔peer signal from p to its pair partner (through
// the partner's hub when it is another), or refuses it.
func (h *Hub) relay(p *participant, s signaling.Signal) {
	pr, outcome := h.pairs.relay(s.PairID, p.id, s.To, "")
	if outcome == relayLimited {
		h.metrics.SignalingRejected(signaling.CodeRateLimited)
		p.sendError(signaling.CodeRateLimited, fmt.Sprintf("pair %q relayed %d signals already", s.PairID, signaling.MaxPairSignals), signaling.TypeSignal)
		return
	}
	s.From = p.id
	if outcome == relayOK && s.To == pr.remote {
		data, err := signaling.Encode(s)
		if err == nil {
			h.cluster.Send(pr.hub, cluster.Message{Kind: cluster.KindSignal, Pair: pr.id, Peer: p.id, To: s.To, Signal: data})
			return
		}
	}
	var to *participant
	if outcome == relayOK {
		to = h.peer(s.To)
	}
	if to == nil {
		h.metrics.SignalingRejected(signaling.CodeNotPaired)
		p.sendError(signaling.CodeNotPaired, fmt.Sprintf("no pair %q between you and %q", s.PairID, s.To), signaling.TypeSignal)
		return
	}
	to.send(s)
}

// unpair ends pair id at the request of member p.
func (h *Hub) unpair(p *participant, id string) {
	pr, release, ok := h.pairs.remove(id, p.id, "")
	if !ok {
		p.sendError(signaling.CodeUnknownPair, fmt.Sprintf("no pair %q of yours", id), signaling.TypeUnpair)
		return
	}
	if release {
		h.tracker.ReleaseUpload(pr.seeder)
	}
	h.tellOther(pr, p.id, signaling.ReasonRequested)
}

// uploadDone frees the upload slot of pair id; only its seeder may do so.
// The leecher's hub, when it is another, frees its count too.
func (h *Hub) uploadDone(p *participant, id string) {
	pr, release, ok := h.pairs.uploadDone(id, p.id, "")
	if !ok {
		p.sendError(signaling.CodeUnknownPair, fmt.Sprintf("no pair %q where you seed", id), signaling.TypeUploadDone)
		return
	}
	if release {
		h.tracker.ReleaseUpload(p.id)
		if pr.remote != "" {
			h.cluster.Send(pr.hub, cluster.Message{Kind: cluster.KindUploadDone, Pair: pr.id, Seeder: p.id})
		}
	}
}

// report handles a peer's report of a misbehaving seeder. It counts only
// when the hub paired the two within recentPartnerWindow (for any track and
// in either role: peers reuse a pair's DataChannel for other tracks);
// otherwise the reporter gets error not_paired. For an accepted report the
// tracker stops offering the seeder to the reporter for the track (and to
// everyone, once enough peers agree). A seeder on another hub has a hash
// mismatch or bad message reported to its hub too, which counts the
// reports of all hubs' peers and, when it drops the seeder, tells the
// cluster. The pair itself is the reporter's to end (unpair), as it does
// when it abandons the seeder.
func (h *Hub) report(p *participant, r signaling.Report) {
	seederHub, known := h.pairs.pairedWith(p.id, r.Peer)
	h.metrics.SeederReported(r.Reason, known)
	if !known {
		h.metrics.SignalingRejected(signaling.CodeNotPaired)
		p.sendError(signaling.CodeNotPaired, fmt.Sprintf("no recent pair with %q", r.Peer), signaling.TypeReport)
		return
	}
	dropped, err := h.tracker.Report(p.id, r.Peer, r.Track, r.Reason)
	if err != nil {
		p.log.Debug("tracker report", "err", err)
		return
	}
	p.log.Info("seeder reported", "seeder", r.Peer, "track", r.Track, "reason", r.Reason, "dropped", dropped)
	if dropped {
		h.metrics.SeederDropped()
	}
	if seederHub != "" && (r.Reason == signaling.ReportHashMismatch || r.Reason == signaling.ReportBadMessage) {
		h.cluster.Send(seederHub, cluster.Message{Kind: cluster.KindReport, Peer: p.id, Seeder: r.Peer, Track: r.Track, Reason: r.Reason})
	} else if s := h.peer(r.Peer); dropped && s != nil {
		s.publishHolding(r.Track) // the other hubs drop it too
	}
}

// remoteReport counts a report relayed by hub from one of its peers
// against this hub's seeder, if that hub paired the two.
func (h *Hub) remoteReport(m cluster.Message) {
	s := h.peer(m.Seeder)
	if s == nil {
		return
	}
	if hub, ok := h.pairs.pairedWith(m.Seeder, m.Peer); !ok || hub != m.From {
		h.metrics.SignalingRejected(signaling.CodeNotPaired)
		return
	}
	dropped := h.tracker.Accuse(m.Peer, m.Seeder, m.Track, m.Reason)
	s.log.Info("seeder reported by a peer of another hub", "reporter", m.Peer, "hub", m.From, "track", m.Track, "reason", m.Reason, "dropped", dropped)
	if dropped {
		h.metrics.SeederDropped()
		s.publishHolding(m.Track)
	}
}

// connected reports whether peer id is connected.
func (h *Hub) connected(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peers[id] != nil
}

// partnersOf returns the connected peers p is in a pair with now.
func (h *Hub) partnersOf(p *participant) []*participant {
	ids := h.pairs.partnersOf(p.id)
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*participant
	for _, id := range ids {
		if o := h.peers[id]; o != nil {
			out = append(out, o)
		}
	}
	return out
}

// onLookupResult turns a tracker result into lookup_result and, on success,
// one pair per seeder with its two paired messages. A lookup with seeders
// of other hubs finishes in a goroutine: their hubs are asked to pair them.
func (h *Hub) onLookupResult(res tracker.Result) {
	if h.cluster != nil {
		for _, id := range res.Seeders {
			if h.peer(id) == nil {
				if !h.goCrossing(func() { h.finishLookup(res) }) {
					h.cancelLookup(res)
				}
				return
			}
		}
	}
	h.finishLookup(res)
}

// goCrossing runs f in a goroutine Close waits for, unless the hub is closed.
func (h *Hub) goCrossing(f func()) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.crossing.Add(1)
	go func() {
		defer h.crossing.Done()
		f()
	}()
	return true
}

// cancelLookup ends a lookup whose requester is gone.
func (h *Hub) cancelLookup(res tracker.Result) {
	for _, s := range res.Seeders {
		h.tracker.ReleaseUpload(s)
	}
	h.metrics.SeederLookup("canceled", res.Elapsed)
}

// finishLookup makes the pairs of a lookup result and answers the requester.
func (h *Hub) finishLookup(res tracker.Result) {
	h.mu.Lock()
	req := h.peers[res.Requester]
	if req == nil {
		h.mu.Unlock()
		h.cancelLookup(res)
		return
	}
	size := req.takeLookup(res.Track)
	var pairs, remote []*pair
	var refused []string
	// Under h.mu, so that neither peer unregisters between the check and
	// the pair (unregister removes a peer's pairs under h.mu too).
	for _, id := range res.Seeders {
		var pr *pair
		ok := false
		if seed := h.peers[id]; seed != nil {
			pr, ok = h.pairs.add(res.Track, id, req.id, "", "")
		} else if hub, known := h.remoteHubOf(id); known {
			pr, ok = h.pairs.add(res.Track, id, req.id, id, hub)
		}
		if !ok {
			refused = append(refused, id)
			continue
		}
		pairs = append(pairs, pr)
		if pr.remote != "" {
			remote = append(remote, pr)
		}
	}
	h.mu.Unlock()
	// The seeders' hubs pair their seeders (each takes an upload slot and
	// sends its seeder paired) before the requester hears of the pairs.
	paired := make([]bool, len(remote))
	var wg sync.WaitGroup
	for i, pr := range remote {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paired[i] = h.cluster.PairWith(pr.hub, cluster.Message{Pair: pr.id, Lookup: res.LookupID, Track: pr.track, Seeder: pr.seeder, Requester: pr.leecher})
		}()
	}
	wg.Wait()
	for i, pr := range remote {
		if paired[i] {
			h.metrics.CrossHubPair()
			continue
		}
		if _, _, removed := h.pairs.remove(pr.id, req.id, ""); removed {
			refused = append(refused, pr.seeder)
		}
		pairs = slices.DeleteFunc(pairs, func(p *pair) bool { return p == pr })
		// The seeder's hub may have made its half after all (an answer
		// lost or late): it ends it. Messages to a hub arrive in order.
		h.cluster.Send(pr.hub, cluster.Message{Kind: cluster.KindUnpair, Pair: pr.id, Peer: req.id, Reason: signaling.ReasonPeerLeft})
	}
	// A pair that ended meanwhile (a side left, its hub died) is not
	// announced.
	pairs = slices.DeleteFunc(pairs, func(p *pair) bool { return !h.pairs.exists(p.id) })
	for _, id := range refused {
		h.tracker.ReleaseUpload(id)
		h.metrics.PairFailed()
	}
	switch {
	case len(pairs) == 0 && len(res.Seeders) > 0:
		h.metrics.SeederLookup(signaling.ReasonAllRefused, res.Elapsed)
		req.send(signaling.LookupResult{Track: res.Track, Reason: signaling.ReasonAllRefused})
		return
	case len(pairs) == 0:
		h.metrics.SeederLookup(res.Reason, res.Elapsed)
		req.send(signaling.LookupResult{Track: res.Track, Reason: res.Reason})
		return
	}
	h.metrics.SeederLookup("found", res.Elapsed)
	req.peerMetrics.GrantDownload(size)
	result := signaling.LookupResult{Track: res.Track, PeerID: pairs[0].seeder, PairID: pairs[0].id}
	for _, pr := range pairs {
		h.metrics.PairBrokered()
		if pr.remote == "" {
			if seed := h.peer(pr.seeder); seed != nil {
				seed.peerMetrics.GrantUpload(size)
				seed.send(signaling.Paired{PairID: pr.id, Peer: req.id, Track: pr.track, Role: signaling.RoleSeeder})
			}
		}
		req.send(signaling.Paired{PairID: pr.id, Peer: pr.seeder, Track: pr.track, Role: signaling.RoleLeecher})
		result.Peers = append(result.Peers, signaling.LookupPeer{PeerID: pr.seeder, PairID: pr.id})
	}
	req.send(result)
}

// remoteHubOf returns the hub of another hub's peer (false without a
// cluster or for an unknown peer).
func (h *Hub) remoteHubOf(peer string) (string, bool) {
	if h.cluster == nil {
		return "", false
	}
	return h.cluster.HubOf(peer)
}

// asker delivers the tracker's can_upload questions: to this hub's peers
// directly, to another hub's through that hub (in a goroutine: the answer
// comes back as a tracker reply).
type asker struct{ h *Hub }

// AskUpload implements tracker.Asker.
func (a asker) AskUpload(peer, track, lookupID, requester string) bool {
	h := a.h
	h.mu.Lock()
	p := h.peers[peer]
	h.mu.Unlock()
	if p != nil {
		return p.send(signaling.CanUpload{Track: track, LookupID: lookupID})
	}
	hub, ok := h.remoteHubOf(peer)
	if !ok {
		return false
	}
	return h.goCrossing(func() {
		yes := h.cluster.AskUpload(hub, cluster.Message{Lookup: lookupID, Track: track, Seeder: peer, Requester: requester})
		h.tracker.Reply(peer, lookupID, yes)
	})
}

// newPeerID returns a fresh random peer id.
func newPeerID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return "p-" + hex.EncodeToString(b[:])
}
