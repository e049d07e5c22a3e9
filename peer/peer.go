// Package peer is Ztream's reference peer in Go: it speaks the protocol of
// docs/PROTOCOL.md like a browser does (WebSocket to the hub, a Pion
// PeerConnection with the hub, PeerConnections with other peers through the
// tracker), plays tracks on a simulated clock, verifies every peer chunk
// against the manifest, keeps completed tracks in an LRU cache and seeds
// them. The load generator runs many of them.
package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/signaling"
)

// ManifestSource gives the manifest of a track. store.Store satisfies it.
type ManifestSource interface {
	Manifest(ctx context.Context, id string) (*media.Manifest, error)
}

// Config configures a Peer. Only HubURL is required.
type Config struct {
	// HubURL is the hub's base URL (http://host:port); the WebSocket is at
	// /ws. A ws:// or wss:// URL is used as is.
	HubURL string
	// Manifests gives track manifests; nil means GET HubURL/api/tracks/{id}.
	Manifests ManifestSource
	// HTTPClient is used for manifests; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// UploadCap is how many leechers the peer serves at once (default 4,
	// at most signaling.MaxUploadCap).
	UploadCap int
	// CacheBytes bounds the cache of completed tracks (default 256 MiB).
	CacheBytes int64
	// Speed is the playback speed factor (default 1): a load run plays
	// faster than real time.
	Speed float64
	// Logger receives the peer's logs (default: discard).
	Logger *slog.Logger
	// Corrupt makes the peer serve corrupted chunks when seeding (tests).
	Corrupt bool
	// DisableP2P makes the peer fetch everything from the hub: it never
	// asks peers nor the tracker for seeders.
	DisableP2P bool
	// ICELoopback gathers loopback ICE candidates (tests and local load runs).
	ICELoopback bool
	// ICEInterfaces, when set, restricts ICE gathering to these interfaces.
	ICEInterfaces []string
	// Sched are the scheduler windows.
	Sched SchedConfig
	// SourceTimeoutMS: a range in flight with no chunk for this long (media
	// ms, default 2000) is stalled. The real-time floor is 50 ms.
	SourceTimeoutMS float64
	// MaxPeerConns bounds the peer's PeerConnections with other peers
	// (default 16); idle ones are closed first.
	MaxPeerConns int
	// MaxLookups bounds tracker lookups per playback (default 4).
	MaxLookups int
	// StatsInterval is how often stats are sent to the hub (default 5 s;
	// negative disables).
	StatsInterval time.Duration
	// ConnectTimeout bounds Dial and peer↔peer connection setup (default 10 s).
	ConnectTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.UploadCap <= 0 {
		c.UploadCap = signaling.DefaultUploadCap
	}
	c.UploadCap = min(c.UploadCap, signaling.MaxUploadCap)
	if c.CacheBytes <= 0 {
		c.CacheBytes = 256 << 20
	}
	if c.Speed <= 0 {
		c.Speed = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	c.Sched = c.Sched.withDefaults()
	if c.SourceTimeoutMS <= 0 {
		c.SourceTimeoutMS = 2000
	}
	if c.MaxPeerConns <= 0 {
		c.MaxPeerConns = 16
	}
	if c.MaxLookups <= 0 {
		c.MaxLookups = 4
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = 5 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	return c
}

// realFor converts media milliseconds to real time at the configured speed.
func (c Config) realFor(mediaMS float64) time.Duration {
	return time.Duration(mediaMS / c.Speed * float64(time.Millisecond))
}

// Stats are a peer's counters since it was created.
type Stats struct {
	ServerBytes     int64 // chunk bytes received from the hub
	P2PBytes        int64 // chunk bytes received from peers (verified or not)
	CacheBytes      int64 // bytes played from the local cache
	UploadedBytes   int64 // chunk bytes sent to peers
	Playbacks       int64 // Play calls that started
	Complete        int64 // playbacks that played the whole track
	Stalls          int64
	StalledTime     time.Duration
	HashFailures    int64 // peer chunks failing the SHA-256 check (dropped)
	CorruptAccepted int64 // chunks kept whose bytes differ from the manifest
	UploadsRefused  int64 // can_upload / have / request refused for the cap
}

type counters struct {
	serverBytes, p2pBytes, cacheBytes, uploaded atomic.Int64
	playbacks, complete, stalls, stalledNS      atomic.Int64
	hashFailures, corruptAccepted, refused      atomic.Int64
}

// Peer is one simulated listener. Create it with Dial; its methods are safe
// for concurrent use.
type Peer struct {
	cfg   Config
	log   *slog.Logger
	api   *webrtc.API
	ws    *websocket.Conn
	cache *Cache
	mans  ManifestSource

	id         string
	iceServers []webrtc.ICEServer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stats  counters

	hubReady chan struct{} // closed when the hub DataChannel opens
	done     chan struct{} // closed when the WebSocket loop ends

	mu         sync.Mutex
	err        error // why the peer stopped
	hubPC      *webrtc.PeerConnection
	hubEP      *endpoint
	hubCands   []webrtc.ICECandidateInit
	hubRemote  bool
	pairs      map[string]*pair
	lookups    map[string]chan signaling.LookupResult
	slots      map[string]*slot // upload slots by remote peer id
	playing    map[string]bool
	startupBuf []float64
	lastStats  Stats
}

// slot is an upload slot held by one remote peer.
type slot struct {
	pairID string // the pair that brought it, "" for a direct have/request
	last   time.Time
}

// Dial connects to the hub, completes the handshake and waits until the hub
// DataChannel is open.
func Dial(ctx context.Context, cfg Config) (*Peer, error) {
	cfg = cfg.withDefaults()
	wsURL, err := wsURLOf(cfg.HubURL)
	if err != nil {
		return nil, err
	}
	api, err := newAPI(cfg)
	if err != nil {
		return nil, err
	}
	p := &Peer{
		cfg:      cfg,
		log:      cfg.Logger,
		api:      api,
		cache:    NewCache(cfg.CacheBytes),
		mans:     cfg.Manifests,
		hubReady: make(chan struct{}),
		done:     make(chan struct{}),
		pairs:    make(map[string]*pair),
		lookups:  make(map[string]chan signaling.LookupResult),
		slots:    make(map[string]*slot),
		playing:  make(map[string]bool),
	}
	if p.mans == nil {
		p.mans = httpManifests{base: strings.TrimSuffix(cfg.HubURL, "/"), client: cfg.HTTPClient}
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, wsURL, nil)
	if err != nil {
		return nil, fmt.Errorf("dial hub %s: %w", wsURL, err)
	}
	ws.SetReadLimit(signaling.MaxMessageSize)
	p.ws = ws
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if err := p.handshake(dctx); err != nil {
		p.cancel()
		ws.CloseNow()
		return nil, err
	}
	p.log = p.log.With("peer", p.id)
	p.wg.Add(1)
	go p.readLoop()
	select {
	case <-p.hubReady:
	case <-p.done:
		err := p.Err()
		p.Close()
		return nil, fmt.Errorf("hub connection ended before its DataChannel opened: %w", err)
	case <-dctx.Done():
		p.Close()
		return nil, fmt.Errorf("waiting for the hub DataChannel: %w", dctx.Err())
	}
	if cfg.StatsInterval > 0 {
		p.wg.Add(1)
		go p.statsLoop()
	}
	p.wg.Add(1)
	go p.janitor()
	return p, nil
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

func newAPI(cfg Config) (*webrtc.API, error) {
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(cfg.ICELoopback)
	if len(cfg.ICEInterfaces) > 0 {
		allowed := append([]string(nil), cfg.ICEInterfaces...)
		se.SetInterfaceFilter(func(name string) bool {
			for _, a := range allowed {
				if a == name {
					return true
				}
			}
			return false
		})
	}
	return webrtc.NewAPI(
		webrtc.WithSettingEngine(se),
		webrtc.WithMediaEngine(&webrtc.MediaEngine{}),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}),
	), nil
}

// handshake sends hello and reads welcome.
func (p *Peer) handshake(ctx context.Context) error {
	if err := p.sendCtx(ctx, signaling.Hello{Version: signaling.Version, UploadCap: p.cfg.UploadCap}); err != nil {
		return err
	}
	for {
		_, data, err := p.ws.Read(ctx)
		if err != nil {
			return fmt.Errorf("read welcome: %w", err)
		}
		msg, err := signaling.Decode(data)
		if err != nil {
			return fmt.Errorf("read welcome: %w", err)
		}
		switch m := msg.(type) {
		case signaling.Welcome:
			p.id = m.PeerID
			p.iceServers = m.ICEServers
			return nil
		case signaling.Error:
			return fmt.Errorf("hub refused hello: %s: %s", m.Code, m.Message)
		}
	}
}

// ID returns the id the hub assigned.
func (p *Peer) ID() string { return p.id }

// Cache returns the peer's cache of complete tracks.
func (p *Peer) Cache() *Cache { return p.cache }

// Err returns why the peer stopped, or nil while it runs.
func (p *Peer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Done is closed when the peer's hub connection has ended.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Stats returns the peer's counters.
func (p *Peer) Stats() Stats {
	s := &p.stats
	return Stats{
		ServerBytes: s.serverBytes.Load(), P2PBytes: s.p2pBytes.Load(), CacheBytes: s.cacheBytes.Load(),
		UploadedBytes: s.uploaded.Load(), Playbacks: s.playbacks.Load(), Complete: s.complete.Load(),
		Stalls: s.stalls.Load(), StalledTime: time.Duration(s.stalledNS.Load()),
		HashFailures: s.hashFailures.Load(), CorruptAccepted: s.corruptAccepted.Load(), UploadsRefused: s.refused.Load(),
	}
}

// Close disconnects from the hub and every peer and waits for the peer's
// goroutines. It is safe to call twice.
func (p *Peer) Close() error {
	p.ws.Close(websocket.StatusNormalClosure, "bye")
	p.stop(errors.New("closed"))
	p.wg.Wait()
	p.mu.Lock()
	pairs := make([]*pair, 0, len(p.pairs))
	for _, pr := range p.pairs {
		pairs = append(pairs, pr)
	}
	hubPC := p.hubPC
	p.mu.Unlock()
	for _, pr := range pairs {
		pr.close()
	}
	if hubPC != nil {
		hubPC.Close()
	}
	return nil
}

// stop records why the peer stops and cancels its context.
func (p *Peer) stop(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	p.cancel()
}

// send writes one message to the hub.
func (p *Peer) send(m signaling.Message) error {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	return p.sendCtx(ctx, m)
}

func (p *Peer) sendCtx(ctx context.Context, m signaling.Message) error {
	data, err := signaling.Encode(m)
	if err != nil {
		return err
	}
	if err := p.ws.Write(ctx, websocket.MessageText, data); err != nil {
		return fmt.Errorf("send %s: %w", m.MessageType(), err)
	}
	return nil
}

// readLoop handles the hub's messages until the WebSocket ends.
func (p *Peer) readLoop() {
	defer p.wg.Done()
	defer close(p.done)
	for {
		_, data, err := p.ws.Read(p.ctx)
		if err != nil {
			p.stop(fmt.Errorf("hub WebSocket: %w", err))
			p.failLookups()
			return
		}
		msg, err := signaling.Decode(data)
		if err != nil {
			p.log.Debug("ignoring hub message", "err", err)
			continue
		}
		p.handle(msg)
	}
}

func (p *Peer) handle(msg signaling.Message) {
	switch m := msg.(type) {
	case signaling.Signal:
		if m.PairID == "" {
			p.hubSignal(m)
		} else {
			p.pairSignal(m)
		}
	case signaling.CanUpload:
		ok := p.canUpload(m.Track, "")
		if !ok {
			p.stats.refused.Add(1)
		}
		if err := p.send(signaling.UploadReply{LookupID: m.LookupID, OK: ok}); err != nil {
			p.log.Debug("upload_reply", "err", err)
		}
	case signaling.Paired:
		p.onPaired(m)
	case signaling.LookupResult:
		p.mu.Lock()
		ch := p.lookups[m.Track]
		delete(p.lookups, m.Track)
		p.mu.Unlock()
		if ch != nil {
			ch <- m // buffered, one result per lookup
		} else if m.PairID != "" {
			p.unpair(m.PairID) // nobody waits any more
		}
	case signaling.Unpair:
		p.mu.Lock()
		pr := p.pairs[m.PairID]
		p.mu.Unlock()
		if pr != nil {
			pr.close()
		}
	case signaling.Error:
		p.log.Debug("hub error", "code", m.Code, "message", m.Message, "ref", m.Ref)
	}
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

// lookup asks the tracker for a seeder of track.
func (p *Peer) lookup(ctx context.Context, track string) (signaling.LookupResult, error) {
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
	if err := p.send(signaling.Lookup{Track: track}); err != nil {
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

// canUpload reports whether the peer would upload track to remote now: it
// holds the whole track and remote holds a slot or one is free.
func (p *Peer) canUpload(track, remote string) bool {
	if _, ok := p.cache.Peek(track); !ok {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.slots[remote]; ok && remote != "" {
		return true
	}
	return len(p.slots) < p.cfg.UploadCap
}

// acquireSlot gives remote an upload slot if it has none and one is free.
// force takes one even over the cap (the hub paired us: it counted it).
func (p *Peer) acquireSlot(remote, pairID string, force bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.slots[remote]; ok {
		s.last = time.Now()
		if pairID != "" && s.pairID == "" {
			s.pairID = pairID
		}
		return true
	}
	if !force && len(p.slots) >= p.cfg.UploadCap {
		return false
	}
	p.slots[remote] = &slot{pairID: pairID, last: time.Now()}
	return true
}

// touchSlot marks remote's slot as used now.
func (p *Peer) touchSlot(remote string) {
	p.mu.Lock()
	if s, ok := p.slots[remote]; ok {
		s.last = time.Now()
	}
	p.mu.Unlock()
}

// releaseSlot frees remote's slot and tells the hub when a pair brought it.
func (p *Peer) releaseSlot(remote string) {
	p.mu.Lock()
	s, ok := p.slots[remote]
	delete(p.slots, remote)
	pr := p.pairs[s.pairIDOrEmpty()]
	p.mu.Unlock()
	if ok && s.pairID != "" && pr != nil && !pr.isClosed() {
		if err := p.send(signaling.UploadDone{PairID: s.pairID}); err != nil {
			p.log.Debug("upload_done", "err", err)
		}
	}
}

func (s *slot) pairIDOrEmpty() string {
	if s == nil {
		return ""
	}
	return s.pairID
}

// slotIdle is how long an upload slot stays without requests.
func (p *Peer) slotIdle() time.Duration {
	return max(p.cfg.realFor(30_000), 500*time.Millisecond)
}

// janitor frees idle upload slots and closes surplus idle peer connections.
func (p *Peer) janitor() {
	defer p.wg.Done()
	t := time.NewTicker(max(p.slotIdle()/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var idle []string
		p.mu.Lock()
		for remote, s := range p.slots {
			if now.Sub(s.last) > p.slotIdle() && !p.servingTo(remote) {
				idle = append(idle, remote)
			}
		}
		p.mu.Unlock()
		for _, r := range idle {
			p.releaseSlot(r)
		}
		p.trimPairs()
	}
}

// servingTo reports whether a range is being served to remote. p.mu is held.
func (p *Peer) servingTo(remote string) bool {
	for _, pr := range p.pairs {
		if pr.remote == remote && pr.endpoint() != nil && pr.endpoint().servingCount() > 0 {
			return true
		}
	}
	return false
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
		p.flushStats()
	}
}

func (p *Peer) flushStats() {
	cur := p.Stats()
	p.mu.Lock()
	prev := p.lastStats
	p.lastStats = cur
	startup := p.startupBuf
	p.startupBuf = nil
	p.mu.Unlock()
	msg := signaling.Stats{
		HubBytes: cur.ServerBytes - prev.ServerBytes, PeerBytes: cur.P2PBytes - prev.P2PBytes,
		CacheBytes: cur.CacheBytes - prev.CacheBytes, UploadedBytes: cur.UploadedBytes - prev.UploadedBytes,
		BadChunks: cur.HashFailures - prev.HashFailures, Stalls: cur.Stalls - prev.Stalls, StartupMS: startup,
	}
	if msg.HubBytes == 0 && msg.PeerBytes == 0 && msg.CacheBytes == 0 && msg.UploadedBytes == 0 && len(startup) == 0 {
		return
	}
	if err := p.send(msg); err != nil {
		p.log.Debug("stats", "err", err)
	}
}

func (p *Peer) noteStartup(d time.Duration) {
	p.mu.Lock()
	if len(p.startupBuf) < signaling.MaxStartupSamples {
		p.startupBuf = append(p.startupBuf, min(float64(d)/float64(time.Millisecond), 3600e3))
	}
	p.mu.Unlock()
}

// httpManifests fetches manifests from the hub's HTTP API.
type httpManifests struct {
	base   string
	client *http.Client
}

func (h httpManifests) Manifest(ctx context.Context, id string) (*media.Manifest, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/api/tracks/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", id, err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("manifest %s: HTTP %s", id, resp.Status)
	}
	var m media.Manifest
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", id, err)
	}
	return &m, nil
}
