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
	"math/rand/v2"
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

	"github.com/ztream/ztream/chunkproto"
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
	// Deprecated: use Fault; Corrupt is FaultBadBytes.
	Corrupt bool
	// Fault makes the peer misbehave when seeding (tests and load runs):
	// see FaultMode. The peer still plays and verifies like any other.
	Fault FaultMode
	// Cache, when set, is the peer's cache instead of a new one of
	// CacheBytes: a peer that leaves and rejoins keeps its cache (and
	// announces it in hello).
	Cache *Cache
	// NoReconnect makes the peer stop when its hub connection ends. By
	// default it reconnects, as a new peer (new id, cached tracks announced
	// in hello), with exponential backoff and jitter between ReconnectMin
	// (default 250 ms) and ReconnectMax (default 10 s); playbacks under way
	// continue from their buffer and resume fetching once reconnected.
	NoReconnect  bool
	ReconnectMin time.Duration
	ReconnectMax time.Duration
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
	// SilenceTimeout: a seeder that has sent no chunk at all this long
	// (real time, default 3 s; never less than the source timeout) after
	// it was asked is abandoned and reported to the hub as a timeout.
	// Before that, a stalled seeder is only bypassed (the hub serves the
	// urgent chunks): a slow seeder on a loaded machine is not a faulty one,
	// and the hub stops offering a reported seeder to the reporter.
	SilenceTimeout time.Duration
	// MaxPeerConns bounds the peer's PeerConnections with other peers
	// (default 16); idle ones are closed first.
	MaxPeerConns int
	// MaxLookups bounds tracker lookups per playback (default 64).
	MaxLookups int
	// LookupRetryMS is the media time between tracker lookups while fewer
	// than MaxSources peers serve the track (default 1000).
	LookupRetryMS float64
	// MaxSources bounds the peer links one playback takes chunks from at
	// once (default 4, at most 8).
	MaxSources int
	// StartWait is how long (real time) the start of a playback waits for
	// a peer while the first search is under way before the hub sends the
	// first chunk (default 150 ms; PROTOCOL.md §8.2).
	StartWait time.Duration
	// FirstCopyRetryMS: after a first-copy request came back short (the
	// hub gave those chunks to other peers), no new one for this long (media
	// ms, default 2000).
	FirstCopyRetryMS float64
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
	alg := DefaultAlgorithm()
	realMS := func(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
	if c.SourceTimeoutMS <= 0 {
		c.SourceTimeoutMS = alg.SourceTimeoutMS
	}
	if c.SilenceTimeout <= 0 {
		c.SilenceTimeout = realMS(alg.SilenceRealMS)
	}
	if c.MaxPeerConns <= 0 {
		c.MaxPeerConns = alg.MaxPeerConns
	}
	if c.MaxLookups <= 0 {
		c.MaxLookups = alg.MaxLookups
	}
	if c.LookupRetryMS <= 0 {
		c.LookupRetryMS = alg.LookupRetryMS
	}
	if c.MaxSources <= 0 {
		c.MaxSources = alg.MaxSources
	}
	c.MaxSources = min(c.MaxSources, signaling.MaxLookupWant)
	if c.StartWait <= 0 {
		c.StartWait = realMS(alg.StartWaitRealMS)
	}
	if c.FirstCopyRetryMS <= 0 {
		c.FirstCopyRetryMS = alg.FirstCopyRetryMS
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = 5 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.Corrupt && c.Fault == FaultNone {
		c.Fault = FaultBadBytes
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = 250 * time.Millisecond
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = 10 * time.Second
	}
	c.ReconnectMax = max(c.ReconnectMax, c.ReconnectMin)
	return c
}

// realFor converts media milliseconds to real time at the configured speed.
func (c Config) realFor(mediaMS float64) time.Duration {
	return time.Duration(mediaMS / c.Speed * float64(time.Millisecond))
}

// Stats are a peer's counters since it was created (across reconnections).
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
	// FaultsSent counts chunks served wrongly on purpose (Config.Fault).
	FaultsSent int64
	// MessagesDropped counts have and holding messages from peers dropped
	// for exceeding the inbound rate.
	MessagesDropped int64
}

type counters struct {
	serverBytes, p2pBytes, cacheBytes, uploaded atomic.Int64
	playbacks, complete, stalls, stalledNS      atomic.Int64
	hashFailures, corruptAccepted, refused      atomic.Int64
	badMessages, timeouts, reports, reconnects  atomic.Int64
	faultsSent, dropped                         atomic.Int64
}

// maxDataChannelMessage is the largest DataChannel message the peer accepts.
const maxDataChannelMessage = 256 << 10

// maxBadPeers bounds the remote peers remembered as bad.
const maxBadPeers = 256

// Peer is one simulated listener. Create it with Dial; its methods are safe
// for concurrent use.
type Peer struct {
	cfg   Config
	log   *slog.Logger
	api   *webrtc.API
	cache *Cache
	mans  ManifestSource

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stats   counters
	closing atomic.Bool
	once    sync.Once
	flushMu sync.Mutex // one flushStats at a time

	done chan struct{} // closed when the peer has stopped for good

	mu         sync.Mutex
	err        error // why the peer stopped
	link       *link // current hub connection; nil while disconnected
	id         string
	pairs      map[string]*pair
	lookups    map[string]chan signaling.LookupResult
	slots      map[string]*slot // upload slots by remote peer id
	playing    map[string]bool
	partials   map[string]*trackData // tracks being downloaded, by id (their sessions own them)
	startupBuf []float64
	lastStats  Stats
	// bad remembers remote peers caught misbehaving (bounded, oldest
	// forgotten first) and which of them were reported for which track.
	bad      map[string]bool
	badOrder []string
	reported map[string]bool // remote + "/" + track
}

// link is one WebSocket connection to the hub with its PeerConnection.
type link struct {
	ws         *websocket.Conn
	id         string
	iceServers []webrtc.ICEServer
	ready      chan struct{} // closed when the hub DataChannel opens
	done       chan struct{} // closed when the read loop ends
	readyOnce  sync.Once

	// Guarded by Peer.mu.
	pc        *webrtc.PeerConnection
	ep        *endpoint
	cands     []webrtc.ICECandidateInit
	remoteSet bool
}

// slot is an upload slot held by one remote peer.
type slot struct {
	// pairIDs are the pairs the hub counts against it (none for a slot taken
	// by a direct have/request on an existing connection).
	pairIDs []string
	last    time.Time
}

// errNoHub is returned when a message is sent while the hub is away.
var errNoHub = errors.New("not connected to the hub")

// Dial connects to the hub, completes the handshake and waits until the hub
// DataChannel is open. Later losses of the hub connection are repaired in
// the background unless Config.NoReconnect is set.
func Dial(ctx context.Context, cfg Config) (*Peer, error) {
	cfg = cfg.withDefaults()
	if _, err := wsURLOf(cfg.HubURL); err != nil {
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
		cache:    cfg.Cache,
		mans:     cfg.Manifests,
		done:     make(chan struct{}),
		pairs:    make(map[string]*pair),
		lookups:  make(map[string]chan signaling.LookupResult),
		slots:    make(map[string]*slot),
		playing:  make(map[string]bool),
		partials: make(map[string]*trackData),
		bad:      make(map[string]bool),
		reported: make(map[string]bool),
	}
	if p.cache == nil {
		p.cache = NewCache(cfg.CacheBytes)
	}
	if p.mans == nil {
		p.mans = httpManifests{base: strings.TrimSuffix(cfg.HubURL, "/"), client: cfg.HTTPClient}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	l, err := p.connect(ctx)
	if err != nil {
		p.cancel()
		return nil, err
	}
	p.wg.Add(1)
	go p.supervise(l)
	if cfg.StatsInterval > 0 {
		p.wg.Add(1)
		go p.statsLoop()
	}
	p.wg.Add(1)
	go p.janitor()
	return p, nil
}

// connect opens a hub connection: WebSocket, hello/welcome, and the hub
// PeerConnection up to its DataChannel opening. The link is current once
// connect returns it.
func (p *Peer) connect(ctx context.Context) (*link, error) {
	wsURL, err := wsURLOf(p.cfg.HubURL)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, wsURL, nil)
	if err != nil {
		return nil, fmt.Errorf("dial hub %s: %w", wsURL, err)
	}
	ws.SetReadLimit(signaling.MaxMessageSize)
	l := &link{ws: ws, ready: make(chan struct{}), done: make(chan struct{})}
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
				p.log.Info("reconnected to the hub", "peer", nl.id, "attempts", attempt+1)
				break
			}
			p.log.Debug("reconnect failed", "attempt", attempt+1, "err", err)
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
	clear(p.slots)
	pc, ep := l.pc, l.ep
	p.mu.Unlock()
	p.failLookups()
	for _, pr := range pairs {
		pr.close()
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

func newAPI(cfg Config) (*webrtc.API, error) {
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(cfg.ICELoopback)
	// Bound what one DataChannel message may make us buffer (browsers
	// accept 262,144 bytes; a valid chunk message is at most 65,557).
	se.SetSCTPMaxMessageSize(maxDataChannelMessage)
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
			return nil
		case signaling.Error:
			return fmt.Errorf("hub refused hello: %s: %s", m.Code, m.Message)
		}
	}
}

// ID returns the id the hub assigned on the latest connection.
func (p *Peer) ID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.id
}

// Connected reports whether the peer is connected to the hub now.
func (p *Peer) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.link != nil && p.link.ep != nil
}

// Cache returns the peer's cache of complete tracks.
func (p *Peer) Cache() *Cache { return p.cache }

// Err returns why the peer stopped, or nil while it runs.
func (p *Peer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Done is closed when the peer has stopped for good: closed, or its hub
// connection lost with NoReconnect.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Stats returns the peer's counters.
func (p *Peer) Stats() Stats {
	s := &p.stats
	return Stats{
		ServerBytes: s.serverBytes.Load(), P2PBytes: s.p2pBytes.Load(), CacheBytes: s.cacheBytes.Load(),
		UploadedBytes: s.uploaded.Load(), Playbacks: s.playbacks.Load(), Complete: s.complete.Load(),
		Stalls: s.stalls.Load(), StalledTime: time.Duration(s.stalledNS.Load()),
		HashFailures: s.hashFailures.Load(), CorruptAccepted: s.corruptAccepted.Load(), UploadsRefused: s.refused.Load(),
		BadMessages: s.badMessages.Load(), Timeouts: s.timeouts.Load(), ReportsSent: s.reports.Load(),
		Reconnects: s.reconnects.Load(), FaultsSent: s.faultsSent.Load(), MessagesDropped: s.dropped.Load(),
	}
}

// Close sends the last stats, disconnects from the hub and every peer and
// waits for the peer's goroutines. It is safe to call twice.
func (p *Peer) Close() error {
	p.once.Do(func() {
		p.closing.Store(true)
		p.flushStats(time.Second)
		p.mu.Lock()
		l := p.link
		p.mu.Unlock()
		if l != nil {
			l.ws.Close(websocket.StatusNormalClosure, "bye")
		}
		p.stop(errors.New("closed"))
		p.wg.Wait()
	})
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
				p.unpair(id) // nobody waits any more
			}
		}
	case signaling.Unpair:
		p.mu.Lock()
		pr := p.pairs[m.PairID]
		p.mu.Unlock()
		if pr != nil {
			pr.close()
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

// isBad reports whether remote was caught misbehaving.
func (p *Peer) isBad(remote string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bad[remote]
}

// markBad remembers remote as bad and reports it to the hub for track, once
// per remote and track; it reports whether a report was sent.
// remember=false only reports (a timeout of a seeder
// that never sent anything in this playback is reported but, being possibly
// just slow, not remembered across playbacks).
func (p *Peer) markBad(remote, track, reason string, remember bool) bool {
	if remote == "" || remote == signaling.HubID {
		return false
	}
	key := remote + "/" + track
	p.mu.Lock()
	if remember && !p.bad[remote] {
		if len(p.badOrder) >= maxBadPeers {
			old := p.badOrder[0]
			p.badOrder = p.badOrder[1:]
			delete(p.bad, old)
			for k := range p.reported {
				if strings.HasPrefix(k, old+"/") {
					delete(p.reported, k)
				}
			}
		}
		p.bad[remote] = true
		p.badOrder = append(p.badOrder, remote)
	}
	dup := p.reported[key]
	if !dup && len(p.reported) < 4*maxBadPeers {
		p.reported[key] = true
	}
	p.mu.Unlock()
	if dup {
		return false
	}
	if err := p.send(signaling.Report{Peer: remote, Track: track, Reason: reason}); err != nil {
		p.log.Debug("report", "err", err)
		return false
	}
	p.stats.reports.Add(1)
	return true
}

// Reasons of a report (signaling.Report.Reason).
const (
	ReportHashMismatch = signaling.ReportHashMismatch
	ReportTimeout      = signaling.ReportTimeout
	ReportBadMessage   = signaling.ReportBadMessage
)

// sourceOf returns what the peer holds of track: the cached track, the
// chunks of a download under way, or nil.
func (p *Peer) sourceOf(track string) chunkSource {
	if ct, ok := p.cache.Peek(track); ok {
		return ct
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if td := p.partials[track]; td != nil && td.count() > 0 {
		return td
	}
	return nil
}

// haveReply answers remote's have for track: ok with the whole track, a
// bitfield with part of it, nothing when it holds nothing or has no upload
// slot for remote.
func (p *Peer) haveReply(track, remote string) chunkproto.HaveReply {
	r := chunkproto.HaveReply{Track: track}
	if !p.canUpload(track, remote) {
		p.stats.refused.Add(1)
		return r
	}
	switch src := p.sourceOf(track).(type) {
	case *CachedTrack:
		r.OK = true
	case *trackData:
		h := chunkproto.NewHolding(track, src.flags())
		r.Chunks, r.Have = h.Chunks, h.Have
	}
	return r
}

// canUpload reports whether the peer would upload track to remote now: it
// holds a chunk of the track at least and remote holds a slot or one is free.
func (p *Peer) canUpload(track, remote string) bool {
	if p.sourceOf(track) == nil {
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
	s, ok := p.slots[remote]
	if !ok {
		if !force && len(p.slots) >= p.cfg.UploadCap {
			return false
		}
		s = &slot{}
		p.slots[remote] = s
	}
	s.last = time.Now()
	if pairID != "" && len(s.pairIDs) < p.cfg.MaxPeerConns {
		s.pairIDs = append(s.pairIDs, pairID)
	}
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

// releaseSlot frees remote's slot and tells the hub, for every open pair
// counted against it, that the upload is done.
func (p *Peer) releaseSlot(remote string) {
	p.mu.Lock()
	s, ok := p.slots[remote]
	delete(p.slots, remote)
	var done []string
	if ok {
		for _, id := range s.pairIDs {
			if pr := p.pairs[id]; pr != nil && !pr.isClosed() {
				done = append(done, id)
			}
		}
	}
	p.mu.Unlock()
	for _, id := range done {
		if err := p.send(signaling.UploadDone{PairID: id}); err != nil {
			p.log.Debug("upload_done", "err", err)
		}
	}
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
		HubBytes: cur.ServerBytes - prev.ServerBytes, PeerBytes: cur.P2PBytes - prev.P2PBytes,
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
