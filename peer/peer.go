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
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"

	"github.com/ztream/ztream/internal/pionlog"
	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/signaling"
)

// ManifestSource gives the manifest of a track. store.Store satisfies it.
type ManifestSource interface {
	Manifest(ctx context.Context, id string) (*media.Manifest, error)
}

// Config configures a Peer. Only HubURL (or HubURLs) is required.
type Config struct {
	// HubURL is the hub's base URL (http://host:port); the WebSocket is at
	// /ws. A ws:// or wss:// URL is used as is.
	HubURL string
	// HubURLs lists the base URLs of several hubs of one swarm (a cluster,
	// package cluster): the peer connects to the first, and each failed
	// connection attempt or lost connection moves it to the next in turn.
	// HubURL defaults to its first.
	HubURLs []string
	// Manifests gives track manifests; nil means GET HubURL/api/tracks/{id}.
	Manifests ManifestSource
	// HTTPClient fetches manifests and dials the hub's WebSocket (set its
	// TLS roots for a hub with a private CA); nil means a client with a
	// 10 s timeout.
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
	// Net, when set, is the network the peer's PeerConnections use instead
	// of the host's (tests: a pion/transport vnet behind a NAT). The hub's
	// WebSocket and HTTP still use HTTPClient.
	Net transport.Net
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
	// LookupRetryMS is the media time between tracker lookups while more
	// peers are wanted (default 1000); LookupRetryReal the real time (default
	// 250 ms): the longer applies.
	LookupRetryMS   float64
	LookupRetryReal time.Duration
	// LookupBackoffMaxMS caps the wait (media ms) before the next lookup
	// after peer links of the peer's lookups failed to open in a row:
	// LookupRetryMS doubled per failure after the first (default 30000;
	// PROTOCOL.md §8.2).
	LookupBackoffMaxMS float64
	// MaxSources bounds the peer links one playback takes chunks from at
	// once (default 4, at most 8).
	MaxSources int
	// StartWait is how long (real time) the start of a playback waits for
	// a peer while the first search is under way before the hub sends the
	// first chunk (default 150 ms; PROTOCOL.md §8.2).
	StartWait time.Duration
	// StartRescue is how long (real time) after a playback began its start
	// is late: the hub then sends the first chunk even when a peer range
	// covers it (default 400 ms; PROTOCOL.md §8.3).
	StartRescue time.Duration
	// FirstCopyRetryMS: after a first-copy request came back short (the
	// hub gave those chunks to other peers), no new one for this long (media
	// ms, default 2000).
	FirstCopyRetryMS float64
	// StatsInterval is how often stats are sent to the hub (default 5 s;
	// negative disables).
	StatsInterval time.Duration
	// ICENetworkTypes are the transports ICE may use (default UDP over
	// IPv4). TCP4 alone is a listener whose network blocks UDP: it reaches
	// a hub that accepts ICE over TCP (hub.Config.TCPPort).
	ICENetworkTypes []webrtc.NetworkType
	// ConnectTimeout bounds one attempt of Dial and peer↔peer connection
	// setup (default 10 s).
	ConnectTimeout time.Duration
	// DialAttempts is how many times Dial tries to connect to the hub
	// before it fails (default 3), waiting as between reconnections
	// (ReconnectMin, ReconnectMax): a hub busy with a crowd of joins may
	// drop a handshake, as a browser page retries.
	DialAttempts int
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
	if c.LookupRetryReal <= 0 {
		c.LookupRetryReal = realMS(alg.LookupRetryRealMS)
	}
	if c.LookupBackoffMaxMS <= 0 {
		c.LookupBackoffMaxMS = alg.LookupBackoffMaxMS
	}
	if c.MaxSources <= 0 {
		c.MaxSources = alg.MaxSources
	}
	c.MaxSources = min(c.MaxSources, signaling.MaxLookupWant)
	if c.StartWait <= 0 {
		c.StartWait = realMS(alg.StartWaitRealMS)
	}
	if c.StartRescue <= 0 {
		c.StartRescue = realMS(alg.StartRescueRealMS)
	}
	if c.FirstCopyRetryMS <= 0 {
		c.FirstCopyRetryMS = alg.FirstCopyRetryMS
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = 5 * time.Second
	}
	if c.DialAttempts <= 0 {
		c.DialAttempts = 3
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.Corrupt && c.Fault == FaultNone {
		c.Fault = FaultBadBytes
	}
	if c.HubURL == "" && len(c.HubURLs) > 0 {
		c.HubURL = c.HubURLs[0]
	}
	if len(c.HubURLs) == 0 && c.HubURL != "" {
		c.HubURLs = []string{c.HubURL}
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

// maxDataChannelMessage is the largest DataChannel message the peer accepts.
const maxDataChannelMessage = 256 << 10

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
	playing    map[string]bool
	partials   map[string]*trackData // tracks being downloaded, by id (their sessions own them)
	startupBuf []float64
	lastStats  Stats

	slots   *uploadSlots   // owned: safe for concurrent use
	rep     *reputation    // remote peers caught misbehaving
	backoff *lookupBackoff // lookups held after links failed to open
	// hubIndex picks the hub of Config.HubURLs the next connection
	// attempt goes to.
	hubIndex atomic.Int64
}

// Dial connects to the hub, completes the handshake and waits until the hub
// DataChannel is open. Later losses of the hub connection are repaired in
// the background unless Config.NoReconnect is set.
func Dial(ctx context.Context, cfg Config) (*Peer, error) {
	cfg = cfg.withDefaults()
	for _, u := range cfg.HubURLs {
		if _, err := wsURLOf(u); err != nil {
			return nil, err
		}
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
		slots:    newUploadSlots(cfg.UploadCap, cfg.MaxPeerConns),
		playing:  make(map[string]bool),
		partials: make(map[string]*trackData),
		rep:      newReputation(),
		backoff:  newLookupBackoff(cfg.LookupRetryMS, cfg.LookupBackoffMaxMS, cfg.Speed),
	}
	if p.cache == nil {
		p.cache = NewCache(cfg.CacheBytes)
	}
	if p.mans == nil {
		bases := make([]string, len(cfg.HubURLs))
		for i, u := range cfg.HubURLs {
			bases[i] = strings.TrimSuffix(u, "/")
		}
		p.mans = httpManifests{bases: bases, client: cfg.HTTPClient,
			first: func() int { return int(p.hubIndex.Load() % int64(len(bases))) }}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	l, err := p.dial(ctx)
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

func newAPI(cfg Config) (*webrtc.API, error) {
	se := webrtc.SettingEngine{LoggerFactory: pionlog.Factory{Log: cfg.Logger}}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if cfg.Net != nil {
		se.SetNet(cfg.Net)
	}
	networks := cfg.ICENetworkTypes
	if len(networks) == 0 {
		networks = []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	}
	se.SetNetworkTypes(networks)
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

// isBad reports whether remote was caught misbehaving.
func (p *Peer) isBad(remote string) bool { return p.rep.isBad(remote) }

// markBad remembers remote as bad and reports it to the hub for track, once
// per remote and track; it reports whether a report was sent.
// remember=false only reports (a timeout of a seeder
// that never sent anything in this playback is reported but, being possibly
// just slow, not remembered across playbacks).
func (p *Peer) markBad(remote, track, reason string, remember bool) bool {
	if remote == "" || remote == signaling.HubID || !p.rep.mark(remote, track, remember) {
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

// httpManifests fetches manifests from the hubs' HTTP API: from the hub of
// Config.HubURLs the peer connects to now, then from the others in turn
// (a hub that went away leaves the others able to answer).
type httpManifests struct {
	bases  []string
	first  func() int // the index of the hub to ask first
	client *http.Client
}

func (h httpManifests) Manifest(ctx context.Context, id string) (*media.Manifest, error) {
	var errs []error
	start := h.first()
	for i := range h.bases {
		m, err := h.fetch(ctx, h.bases[(start+i)%len(h.bases)], id)
		if err == nil {
			return m, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (h httpManifests) fetch(ctx context.Context, base, id string) (*media.Manifest, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/tracks/"+url.PathEscape(id), nil)
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
