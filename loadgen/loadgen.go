// Package loadgen runs simulated Ztream listeners (package peer) against a
// hub and reports what they measured: how much audio came from the server,
// from other peers and from caches, start and lookup latencies, stalls and
// integrity failures.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/peer"
)

// MaxTracks bounds the catalog a run loads manifests for.
const MaxTracks = 1000

// Config configures a load run. Server is required.
type Config struct {
	// Server is the hub's base URL (http://host:port), or the
	// comma-separated base URLs of several hubs of one cluster: peer i
	// connects to hub i mod n first and fails over to the next ones.
	Server string
	// Peers is how many simulated peers run (default 16).
	Peers int
	// Duration is how long peers keep starting playbacks (default 60 s);
	// playbacks under way then finish (within Drain).
	Duration time.Duration
	// Ramp spreads the peers' joins evenly over this time (default
	// min(Duration/4, 30 s)).
	Ramp time.Duration
	// Drain bounds the wait for playbacks under way after Duration
	// (default: the longest track at Speed, plus 30 s).
	Drain time.Duration
	// Speed is the playback speed factor (default 10).
	Speed float64
	// ZipfS is the Zipf exponent of track popularity, > 1 (default 1.2).
	ZipfS float64
	// Seed seeds every random choice (default 1).
	Seed uint64
	// DisableP2P makes peers fetch everything from the server.
	DisableP2P bool
	// UploadCap, MaxPeerConns and CacheBytes are passed to every peer (0 =
	// peer defaults).
	UploadCap    int
	MaxPeerConns int
	CacheBytes   int64
	// Loopback gathers loopback ICE candidates (default: when Server's host is
	// a loopback address). With the server on loopback too, the simulated
	// peers gather on the loopback interfaces only: they all run on this
	// machine, and every other address would add a socket and candidate
	// pairs to check to each of their PeerConnections.
	Loopback *bool
	// Progress, when set, receives a progress line every ProgressEvery (5 s).
	Progress      io.Writer
	ProgressEvery time.Duration
	// Logger receives the peers' logs (default: discard).
	Logger *slog.Logger
	// HTTPClient fetches the catalog (default: 10 s timeout).
	HTTPClient *http.Client
	// CorruptPeers is how many peers misbehave when seeding (spread evenly
	// over the join order). The k-th of them uses Faults[k % len(Faults)].
	CorruptPeers int
	// Faults are the fault modes of the corrupt peers (default
	// peer.FaultModes: bad_bytes, wrong_seq, oversize, silent in turn).
	Faults []peer.FaultMode
	// Churn is the probability (0..1) that a peer leaves after a playback:
	// it closes (WebSocket and PeerConnections, cutting its uploads) and
	// rejoins at once as a new peer keeping its cache.
	Churn float64
	// FlashCrowd makes every peer play one track once, the same one for
	// all (Track, or the catalog's most popular under Seed), joining within
	// Ramp: a flash crowd on a track nobody held before.
	FlashCrowd bool
	// Track is the flash crowd's track id (default: picked by Seed).
	Track string
	// Shards > 1 runs only the peers i with i % Shards == Shard (joining
	// at the times and with the seeds they have in the whole run), and the
	// report carries the raw results (Report.Shard) for Merge: a run split
	// over several processes (`ztream load --procs`).
	Shard, Shards int
}

func (c Config) withDefaults() (Config, error) {
	if len(Servers(c.Server)) == 0 {
		return c, errors.New("loadgen: no server URL")
	}
	if c.Peers <= 0 {
		c.Peers = 16
	}
	if c.Duration <= 0 {
		c.Duration = 60 * time.Second
	}
	if c.Ramp <= 0 {
		c.Ramp = min(c.Duration/4, 30*time.Second)
	}
	if c.Speed <= 0 {
		c.Speed = 10
	}
	if c.ZipfS == 0 {
		c.ZipfS = 1.2
	}
	if c.ZipfS <= 1 {
		return c, fmt.Errorf("loadgen: zipf exponent %v must be > 1", c.ZipfS)
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Loopback == nil {
		lb := !slices.ContainsFunc(Servers(c.Server), func(s string) bool { return !isLoopbackURL(s) })
		c.Loopback = &lb
	}
	if c.CorruptPeers < 0 || c.CorruptPeers > c.Peers {
		return c, fmt.Errorf("loadgen: %d corrupt peers out of %d", c.CorruptPeers, c.Peers)
	}
	if len(c.Faults) == 0 {
		c.Faults = peer.FaultModes
	}
	for _, f := range c.Faults {
		if f == peer.FaultNone {
			return c, errors.New("loadgen: fault mode none among the corrupt peers' faults")
		}
	}
	if !(c.Churn >= 0 && c.Churn <= 1) {
		return c, fmt.Errorf("loadgen: churn %v outside 0..1", c.Churn)
	}
	return c, nil
}

// loopbackInterfaces returns the names of the machine's loopback interfaces
// (nil if it cannot tell: then every interface is used).
func loopbackInterfaces() []string {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []string
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 && i.Flags&net.FlagUp != 0 {
			out = append(out, i.Name)
		}
	}
	return out
}

func isLoopbackURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Percentiles summarizes a latency distribution in milliseconds.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Report is the outcome of a run.
type Report struct {
	Peers       int `json:"peers"`
	PeersFailed int `json:"peers_failed"`
	// Hubs is how many hubs the peers were spread over (Config.Server).
	Hubs int `json:"hubs"`
	// CrossHubPairs counts pairs whose two peers sat on different hubs, as
	// the hubs alive at the end counted them (0 without their /metrics).
	CrossHubPairs int64 `json:"cross_hub_pairs"`
	// HubFailovers counts peers' reconnections to another hub than the one
	// they lost.
	HubFailovers int64   `json:"hub_failovers"`
	Tracks       int     `json:"tracks"`
	Speed        float64 `json:"speed"`
	P2P          bool    `json:"p2p"`
	WallSeconds  float64 `json:"wall_seconds"`
	// OffloadRatio is p2p / (p2p + server) bytes.
	OffloadRatio float64 `json:"offload_ratio"`
	// OffloadCeiling is the best offload possible for the playbacks made:
	// 1 − (bytes of the distinct tracks played) / (server + p2p bytes), the
	// server sending each track once.
	OffloadCeiling float64 `json:"offload_ceiling"`
	// ServerCopies is server bytes ÷ bytes of the distinct tracks played
	// (not from the cache): how many copies of the library the server sent.
	ServerCopies   float64 `json:"server_copies"`
	DistinctTracks int     `json:"distinct_tracks"`
	// SourcesPerPlayback is the distribution of the peers that delivered
	// at least one chunk, per playback not from the cache.
	SourcesPerPlayback Percentiles `json:"sources_per_playback"`
	// StartFromPeerShare is the share of playbacks not from the cache whose
	// first chunk came from a peer.
	StartFromPeerShare float64 `json:"start_from_peer_share"`
	FlashCrowd         bool    `json:"flash_crowd,omitempty"`
	// Procs is how many processes ran the simulated peers (1 unless split).
	Procs int `json:"procs"`
	// Shard holds the raw results of one process of a split run.
	Shard       *Shard `json:"shard,omitempty"`
	ServerBytes int64  `json:"server_bytes"`
	// ServerBytesByRule splits ServerBytes by the rule of the peer
	// algorithm that asked the hub (PROTOCOL.md §8.3).
	ServerBytesByRule peer.HubRuleBytes `json:"server_bytes_by_rule"`
	// DuplicateBytes counts the bytes of chunks received when present
	// already, from the server and from peers.
	DuplicateBytes    DuplicateBytes `json:"duplicate_bytes"`
	P2PBytes          int64          `json:"p2p_bytes"`
	CacheBytes        int64          `json:"cache_bytes"`
	UploadedBytes     int64          `json:"uploaded_bytes"`
	Playbacks         int            `json:"playbacks"`
	PlaybacksComplete int            `json:"playbacks_complete"`
	PlaybacksCached   int            `json:"playbacks_cached"`
	PlaybackErrors    int            `json:"playback_errors"`
	Stalls            int            `json:"stalls"`
	StalledMS         float64        `json:"stalled_ms"`
	HashFailures      int            `json:"hash_failures"`
	CorruptAccepted   int            `json:"corrupt_accepted"`
	// StartupMS covers playbacks that were not cached; StartupAllMS all.
	StartupMS    Percentiles `json:"startup_ms"`
	StartupAllMS Percentiles `json:"startup_all_ms"`
	// LookupMS: asking for a seeder → getting one; ConnectMS: tracker answer
	// → peer DataChannel open.
	LookupMS  Percentiles `json:"lookup_ms"`
	ConnectMS Percentiles `json:"connect_ms"`
	// Pairs counts the peer↔peer connections the simulated peers set up.
	Pairs PairCounts `json:"pairs"`
	// PeerConnsPeak is the most peer↔peer PeerConnections (open or
	// connecting) at once over the simulated peers (both sides count one),
	// sampled at every progress tick; a split run sums each process's peak.
	PeerConnsPeak int64 `json:"peer_conns_peak"`
	// FaultsInjected and FaultsDetected describe the hostile part of a run.
	FaultsInjected FaultsInjected `json:"faults_injected"`
	FaultsDetected FaultsDetected `json:"faults_detected"`
}

// FaultsInjected counts the faults a run injected.
type FaultsInjected struct {
	// CorruptPeers is how many peers misbehaved when seeding; Modes counts
	// them by fault mode.
	CorruptPeers int            `json:"corrupt_peers"`
	Modes        map[string]int `json:"modes,omitempty"`
	// FaultyChunks counts the chunks they served wrongly (a silent seeder
	// counts every chunk it was asked for).
	FaultyChunks int64 `json:"faulty_chunks"`
	// ChurnLeaves counts peers that left (and rejoined) after a playback.
	ChurnLeaves int `json:"churn_leaves"`
	// RejoinFailures counts rejoins that could not connect.
	RejoinFailures int `json:"rejoin_failures"`
}

// FaultsDetected counts what the peers detected, summed over every peer.
type FaultsDetected struct {
	HashFailures int64 `json:"hash_failures"`
	BadMessages  int64 `json:"bad_messages"`
	Timeouts     int64 `json:"timeouts"`
	ReportsSent  int64 `json:"reports_sent"`
	Reconnects   int64 `json:"reconnects"`
	// Hub is what the hub counted during the run (from its /metrics);
	// nil when the page could not be read.
	Hub *HubReports `json:"hub,omitempty"`
}

// HubReports are the hub's counts of the reports it got during a run.
type HubReports struct {
	// ReportsAccepted and ReportsRejected count report messages the hub
	// took (the reporter had been paired with that seeder) or refused.
	ReportsAccepted int64 `json:"reports_accepted"`
	ReportsRejected int64 `json:"reports_rejected"`
	// SeedersDropped counts (seeder, track) couples the tracker dropped
	// after reports from enough distinct peers.
	SeedersDropped int64 `json:"seeders_dropped"`
	// CrossHubPairs counts the pairs whose two peers sat on different hubs
	// (each hub counts those it brokered with another hub's seeder).
	CrossHubPairs int64 `json:"cross_hub_pairs"`
}

// PairCounts counts peer↔peer pairs, summed over every peer (both sides
// of a pair count it).
type PairCounts struct {
	// Opened pairs got their DataChannel open; Failed were closed before,
	// split by why in FailedBy (each side counts its own reason: a leecher's
	// timeout is the seeder's remote end).
	Opened   int64             `json:"opened"`
	Failed   int64             `json:"failed"`
	FailedBy peer.PairFailures `json:"failed_by"`
}

// DuplicateBytes counts chunk bytes received twice.
type DuplicateBytes struct {
	Server int64 `json:"server"`
	P2P    int64 `json:"p2p"`
}

// Shard is the raw outcome of one process of a split run, for Merge.
type Shard struct {
	Results  []ShardResult  `json:"results"`
	Totals   PeerTotals     `json:"totals"`
	Failed   int            `json:"failed"`
	Injected FaultsInjected `json:"injected"`
	// Sizes are the byte sizes of the tracks played.
	Sizes map[string]int64 `json:"sizes"`
}

// ShardResult is one playback of a shard.
type ShardResult struct {
	Result peer.PlaybackResult `json:"result"`
	Err    string              `json:"err,omitempty"`
}

// PeerTotals sums the peers' counters (peer.Stats) over a run.
type PeerTotals struct {
	Uploaded, HashFailures, BadMessages, Timeouts, Reports, Reconnects, FaultsSent int64
	Failovers                                                                      int64
	PairsOpened, PairsFailed                                                       int64
	PairFailures                                                                   peer.PairFailures
	// PeerConns: the peers' PeerConnections when the totals were taken;
	// PeerConnsPeak: the most of them at once (Run keeps it; see
	// Report.PeerConnsPeak).
	PeerConns, PeerConnsPeak int64
}

// add adds o to t.
func (t *PeerTotals) add(o PeerTotals) {
	t.Uploaded += o.Uploaded
	t.HashFailures += o.HashFailures
	t.BadMessages += o.BadMessages
	t.Timeouts += o.Timeouts
	t.Reports += o.Reports
	t.Reconnects += o.Reconnects
	t.Failovers += o.Failovers
	t.FaultsSent += o.FaultsSent
	t.PairsOpened += o.PairsOpened
	t.PairsFailed += o.PairsFailed
	t.PairFailures.Add(o.PairFailures)
	t.PeerConns += o.PeerConns
	t.PeerConnsPeak += o.PeerConnsPeak
}

func totalsOf(peers []*peer.Peer) PeerTotals {
	var t PeerTotals
	for _, p := range peers {
		st := p.Stats()
		t.add(PeerTotals{Uploaded: st.UploadedBytes, HashFailures: st.HashFailures, BadMessages: st.BadMessages,
			Timeouts: st.Timeouts, Reports: st.ReportsSent, Reconnects: st.Reconnects, Failovers: st.Failovers, FaultsSent: st.FaultsSent,
			PairsOpened: st.PairsOpened, PairsFailed: st.PairsFailed, PairFailures: st.PairFailures,
			PeerConns: st.PeerConns})
	}
	return t
}

// Merge combines the reports of the processes of a split run (each with
// its Shard) into the report of the whole run; hub is the hub's count of
// reports during the run (nil when unknown).
func Merge(cfg Config, shards []Report, hub *HubReports) (Report, error) {
	var (
		results []result
		tot     PeerTotals
		inj     FaultsInjected
		failed  int
		wall    float64
	)
	sizes := make(manifests)
	for k, r := range shards {
		if r.Shard == nil {
			return Report{}, fmt.Errorf("loadgen: merge: report %d has no raw results", k)
		}
		for _, x := range r.Shard.Results {
			var err error
			if x.Err != "" {
				err = errors.New(x.Err)
			}
			results = append(results, result{x.Result, err})
		}
		tot.add(r.Shard.Totals)
		si := r.Shard.Injected
		inj.CorruptPeers += si.CorruptPeers
		inj.ChurnLeaves += si.ChurnLeaves
		inj.RejoinFailures += si.RejoinFailures
		for m, n := range si.Modes {
			if inj.Modes == nil {
				inj.Modes = make(map[string]int)
			}
			inj.Modes[m] += n
		}
		failed += r.Shard.Failed
		wall = max(wall, r.WallSeconds)
		for id, n := range r.Shard.Sizes {
			sizes[id] = &media.Manifest{ID: id, Size: n}
		}
	}
	rep := summarize(results, tot, sizes)
	inj.FaultyChunks = tot.FaultsSent
	rep.FaultsInjected = inj
	rep.FaultsDetected.Hub = hub
	if hub != nil {
		rep.CrossHubPairs = hub.CrossHubPairs
	}
	rep.Peers = cfg.Peers
	rep.Hubs = len(Servers(cfg.Server))
	rep.PeersFailed = failed
	if len(shards) > 0 {
		rep.Tracks, rep.Speed, rep.P2P, rep.FlashCrowd = shards[0].Tracks, shards[0].Speed, shards[0].P2P, shards[0].FlashCrowd
	}
	rep.Procs = len(shards)
	rep.WallSeconds = wall
	return rep, nil
}

// HubReading is one reading of the hubs' counters (HubCounters).
type HubReading map[string]hubCounters

// HubCounters reads the counters of the hubs of server (Config.Server: one
// base URL or several) from their /metrics; it fails when none answers.
func HubCounters(ctx context.Context, client *http.Client, server string) (HubReading, error) {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return hubsCounters(ctx, client, Servers(server))
}

// HubDelta returns what the hubs counted between two readings.
func HubDelta(before, after HubReading) HubReports { return hubsDelta(before, after) }

// Servers splits Config.Server into its hubs' base URLs.
func Servers(server string) []string {
	var out []string
	for _, s := range strings.Split(server, ",") {
		if s = strings.TrimSuffix(strings.TrimSpace(s), "/"); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// manifests is a fixed map of manifests; it implements peer.ManifestSource.
type manifests map[string]*media.Manifest

func (m manifests) Manifest(_ context.Context, id string) (*media.Manifest, error) {
	if v, ok := m[id]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("manifest %s: not in the catalog", id)
}

// result is one playback as recorded by the run.
type result struct {
	res peer.PlaybackResult
	err error
}

// Run starts cfg.Peers simulated peers with staggered joins; each plays
// tracks picked by Zipf popularity until cfg.Duration has passed, then the
// playbacks under way finish and the report is computed. It fails when the
// catalog cannot be loaded or no peer could connect.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	servers := Servers(cfg.Server)
	base := servers[0]
	mans, order, err := loadCatalog(ctx, cfg.HTTPClient, base)
	if err != nil {
		return Report{}, err
	}
	longest := 0.0
	for _, m := range mans {
		longest = max(longest, peer.NewTimeline(m).TotalMS())
	}
	if cfg.Drain <= 0 {
		cfg.Drain = time.Duration(longest/cfg.Speed*float64(time.Millisecond)) + 30*time.Second
	}
	// Popularity: a seeded shuffle of the catalog, rank 0 the most popular.
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	if cfg.FlashCrowd {
		if cfg.Track == "" {
			cfg.Track = order[0]
		}
		if mans[cfg.Track] == nil {
			return Report{}, fmt.Errorf("loadgen: flash crowd track %s is not in the catalog", cfg.Track)
		}
	}

	// The hub's report counters before the run (a hub without /metrics
	// leaves FaultsDetected.Hub out).
	hubBefore, hubErr := hubsCounters(ctx, cfg.HTTPClient, servers)
	if hubErr != nil {
		cfg.Logger.Debug("hub metrics unavailable", "err", hubErr)
	}

	var iceInterfaces []string
	if *cfg.Loopback && !slices.ContainsFunc(servers, func(s string) bool { return !isLoopbackURL(s) }) {
		iceInterfaces = loopbackInterfaces()
	}

	start := time.Now()
	stopStarting := start.Add(cfg.Duration)
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration+cfg.Drain+30*time.Second)
	defer cancel()

	var (
		mu      sync.Mutex
		results []result
		peers   []*peer.Peer // every peer started, churned ones included
		failed  int
		inj     FaultsInjected
	)
	var wg sync.WaitGroup
	var playing sync.WaitGroup // peers still playing
	mine := 0                  // peers run by this process
	for i := 0; i < cfg.Peers; i++ {
		if cfg.Shards > 1 && i%cfg.Shards != cfg.Shard {
			continue
		}
		mine++
		wg.Add(1)
		playing.Add(1)
		go func(i int) {
			defer wg.Done()
			defer playing.Done()
			delay := time.Duration(0)
			if cfg.Peers > 1 {
				delay = cfg.Ramp * time.Duration(i) / time.Duration(cfg.Peers)
			}
			select {
			case <-time.After(delay):
			case <-runCtx.Done():
				return
			}
			hubs := append(slices.Clone(servers[i%len(servers):]), servers[:i%len(servers)]...)
			pcfg := peer.Config{
				HubURLs: hubs, Manifests: mans, UploadCap: cfg.UploadCap, MaxPeerConns: cfg.MaxPeerConns, CacheBytes: cfg.CacheBytes,
				Speed: cfg.Speed, Logger: cfg.Logger.With("sim", i), DisableP2P: cfg.DisableP2P,
				ICELoopback: *cfg.Loopback, ICEInterfaces: iceInterfaces,
			}
			if k := corruptIndex(i, cfg.Peers, cfg.CorruptPeers); k >= 0 {
				pcfg.Fault = cfg.Faults[k%len(cfg.Faults)]
				mu.Lock()
				inj.CorruptPeers++
				if inj.Modes == nil {
					inj.Modes = make(map[string]int)
				}
				inj.Modes[pcfg.Fault.String()]++
				mu.Unlock()
			}
			p, err := peer.Dial(runCtx, pcfg)
			if err != nil {
				cfg.Logger.Warn("peer could not connect", "sim", i, "err", err)
				mu.Lock()
				failed++
				mu.Unlock()
				return
			}
			mu.Lock()
			peers = append(peers, p)
			mu.Unlock()
			prng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))
			churn := rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1<<32))
			zipf := rand.NewZipf(prng, cfg.ZipfS, 1, uint64(len(order)-1))
			for played := 0; time.Now().Before(stopStarting) && runCtx.Err() == nil; played++ {
				id := order[zipf.Uint64()]
				if cfg.FlashCrowd {
					if played > 0 {
						break
					}
					id = cfg.Track
				}
				res, err := p.Play(runCtx, id)
				mu.Lock()
				results = append(results, result{res, err})
				mu.Unlock()
				if err != nil {
					cfg.Logger.Warn("playback failed", "sim", i, "track", id, "err", err)
					if p.Err() != nil {
						return // the peer is gone
					}
				}
				if cfg.Churn > 0 && churn.Float64() < cfg.Churn && time.Now().Before(stopStarting) {
					// Leave (cutting uploads under way) and rejoin as a new
					// peer with the same cache.
					p.Close()
					pcfg.Cache = p.Cache()
					np, err := peer.Dial(runCtx, pcfg)
					mu.Lock()
					inj.ChurnLeaves++
					if err != nil {
						inj.RejoinFailures++
					} else {
						peers = append(peers, np)
					}
					mu.Unlock()
					if err != nil {
						cfg.Logger.Warn("peer could not rejoin", "sim", i, "err", err)
						return
					}
					p = np
				}
			}
		}(i)
	}
	// Progress, until every peer has stopped playing.
	allDone := make(chan struct{})
	go func() {
		playing.Wait()
		close(allDone)
	}()
	tick := time.NewTicker(cfg.ProgressEvery)
	defer tick.Stop()
	var peak int64 // peer PeerConnections at once
wait:
	for {
		select {
		case <-allDone:
			break wait
		case <-tick.C:
			mu.Lock()
			tot := totalsOf(peers)
			mu.Unlock()
			peak = max(peak, tot.PeerConns)
			if cfg.Progress != nil {
				mu.Lock()
				r := summarize(results, tot, mans)
				online := len(peers) - inj.ChurnLeaves + inj.RejoinFailures
				mu.Unlock()
				fmt.Fprintf(cfg.Progress, "load: %5.0fs peers %d/%d playbacks %d (%d complete) offload %.3f stalls %d hash_failures %d peer_conns %d\n",
					time.Since(start).Seconds(), online, cfg.Peers, r.Playbacks, r.PlaybacksComplete, r.OffloadRatio, r.Stalls, r.HashFailures, tot.PeerConns)
			}
		}
	}
	wg.Wait()
	mu.Lock()
	tot := totalsOf(peers)
	tot.PeerConnsPeak = max(peak, tot.PeerConns)
	rep := summarize(results, tot, mans)
	ps := peers
	injected := inj
	all := results
	mu.Unlock()
	// Close after the report: uploads end with the peers.
	var cw sync.WaitGroup
	for _, p := range ps {
		cw.Add(1)
		go func() {
			defer cw.Done()
			p.Close()
		}()
	}
	cw.Wait()
	// Counters again after Close: the last of them are final now.
	final := summarize(nil, totalsOf(ps), mans)
	rep.UploadedBytes = final.UploadedBytes
	rep.FaultsDetected = final.FaultsDetected
	if hubErr == nil {
		if after, err := hubsCounters(ctx, cfg.HTTPClient, servers); err == nil {
			d := hubsDelta(hubBefore, after)
			rep.FaultsDetected.Hub = &d
			rep.CrossHubPairs = d.CrossHubPairs
		}
	}
	injected.FaultyChunks = final.FaultsInjected.FaultyChunks
	rep.FaultsInjected = injected
	rep.Peers = cfg.Peers
	rep.Hubs = len(servers)
	rep.PeersFailed = failed
	rep.Tracks = len(order)
	rep.Speed = cfg.Speed
	rep.P2P = !cfg.DisableP2P
	rep.FlashCrowd = cfg.FlashCrowd
	rep.Procs = 1
	rep.WallSeconds = time.Since(start).Seconds()
	if cfg.Shards > 1 {
		shTot := totalsOf(ps)
		shTot.PeerConnsPeak = rep.PeerConnsPeak
		sh := &Shard{Totals: shTot, Failed: failed, Injected: injected, Sizes: make(map[string]int64)}
		for _, x := range all {
			r := ShardResult{Result: x.res}
			if x.err != nil {
				r.Err = x.err.Error()
			}
			sh.Results = append(sh.Results, r)
			if m := mans[x.res.Track]; m != nil {
				sh.Sizes[m.ID] = m.Size
			}
		}
		rep.Shard = sh
	}
	if failed == mine {
		return rep, fmt.Errorf("loadgen: none of the %d peers could connect to %s", cfg.Peers, base)
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("loadgen: %w", err)
	}
	return rep, nil
}

// corruptIndex returns k ≥ 0 when peer i of n is the k-th of the corrupt
// ones (spread evenly over the join order), else -1.
func corruptIndex(i, n, corrupt int) int {
	if corrupt <= 0 || n <= 0 {
		return -1
	}
	// Peer i is corrupt when the multiples of n/corrupt cross it.
	if (i*corrupt)%n < corrupt {
		return i * corrupt / n
	}
	return -1
}

// summarize aggregates playback results and the peers' upload counters.
func summarize(results []result, tot PeerTotals, mans manifests) Report {
	var r Report
	var startup, startupAll, lookup, connect, sources []float64
	distinct := make(map[string]bool)
	fetched := 0
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, x := range results {
		res := x.res
		r.Playbacks++
		if x.err != nil {
			r.PlaybackErrors++
		}
		if res.Complete {
			r.PlaybacksComplete++
		}
		if res.FromCache {
			r.PlaybacksCached++
		} else if res.StartLatency > 0 {
			fetched++
			distinct[res.Track] = true
			sources = append(sources, float64(res.Sources))
			if res.StartFromPeer {
				r.StartFromPeerShare++
			}
		}
		r.ServerBytes += res.ServerBytes
		r.ServerBytesByRule.Add(res.HubBytesBy)
		r.DuplicateBytes.Server += res.DuplicateServerBytes
		r.DuplicateBytes.P2P += res.DuplicateP2PBytes
		r.P2PBytes += res.P2PBytes
		r.CacheBytes += res.CacheBytes
		r.Stalls += res.Stalls
		r.StalledMS += ms(res.StalledTime)
		r.HashFailures += res.HashFailures
		r.CorruptAccepted += res.CorruptAccepted
		if res.StartLatency > 0 {
			startupAll = append(startupAll, ms(res.StartLatency))
			if !res.FromCache {
				startup = append(startup, ms(res.StartLatency))
			}
		}
		if res.LookupLatency > 0 {
			lookup = append(lookup, ms(res.LookupLatency))
		}
		if res.ConnectLatency > 0 {
			connect = append(connect, ms(res.ConnectLatency))
		}
	}
	r.UploadedBytes = tot.Uploaded
	r.FaultsDetected.HashFailures = tot.HashFailures
	r.FaultsDetected.BadMessages = tot.BadMessages
	r.FaultsDetected.Timeouts = tot.Timeouts
	r.FaultsDetected.ReportsSent = tot.Reports
	r.FaultsDetected.Reconnects = tot.Reconnects
	r.HubFailovers = tot.Failovers
	r.FaultsInjected.FaultyChunks = tot.FaultsSent
	r.Pairs = PairCounts{Opened: tot.PairsOpened, Failed: tot.PairsFailed, FailedBy: tot.PairFailures}
	r.PeerConnsPeak = tot.PeerConnsPeak
	var distinctBytes int64
	for id := range distinct {
		if m := mans[id]; m != nil {
			distinctBytes += m.Size
		}
	}
	r.DistinctTracks = len(distinct)
	if t := r.P2PBytes + r.ServerBytes; t > 0 {
		r.OffloadRatio = float64(r.P2PBytes) / float64(t)
		r.OffloadCeiling = max(0, 1-float64(distinctBytes)/float64(t))
	}
	if distinctBytes > 0 {
		r.ServerCopies = float64(r.ServerBytes) / float64(distinctBytes)
	}
	if fetched > 0 {
		r.StartFromPeerShare /= float64(fetched)
	}
	r.SourcesPerPlayback = percentiles(sources)
	r.StartupMS = percentiles(startup)
	r.StartupAllMS = percentiles(startupAll)
	r.LookupMS = percentiles(lookup)
	r.ConnectMS = percentiles(connect)
	return r
}

// percentiles returns nearest-rank percentiles of v (which it sorts).
func percentiles(v []float64) Percentiles {
	if len(v) == 0 {
		return Percentiles{}
	}
	slices.Sort(v)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(v)))) - 1
		return round2(v[min(max(i, 0), len(v)-1)])
	}
	return Percentiles{N: len(v), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: round2(v[len(v)-1])}
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// loadCatalog fetches the track list and every manifest (at most MaxTracks).
func loadCatalog(ctx context.Context, c *http.Client, base string) (manifests, []string, error) {
	var list []media.Summary
	if err := getJSON(ctx, c, base+"/api/tracks", &list); err != nil {
		return nil, nil, fmt.Errorf("loadgen: catalog: %w", err)
	}
	if len(list) == 0 {
		return nil, nil, fmt.Errorf("loadgen: the catalog of %s is empty", base)
	}
	if len(list) > MaxTracks {
		list = list[:MaxTracks]
	}
	mans := make(manifests, len(list))
	order := make([]string, 0, len(list))
	for _, s := range list {
		var m media.Manifest
		if err := getJSON(ctx, c, base+"/api/tracks/"+url.PathEscape(s.ID), &m); err != nil {
			return nil, nil, fmt.Errorf("loadgen: manifest: %w", err)
		}
		if m.ID != s.ID || len(m.Chunks) == 0 {
			return nil, nil, fmt.Errorf("loadgen: manifest of %s is malformed", s.ID)
		}
		mans[m.ID] = &m
		order = append(order, m.ID)
	}
	return mans, order, nil
}

func getJSON(ctx context.Context, c *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %s", u, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// WriteTable prints r as a human-readable table.
func WriteTable(w io.Writer, r Report) error {
	mb := func(b int64) string { return fmt.Sprintf("%.2f MB", float64(b)/1e6) }
	pct := func(p Percentiles) string {
		if p.N == 0 {
			return "-"
		}
		return fmt.Sprintf("p50 %.1f  p95 %.1f  p99 %.1f  max %.1f  (n=%d)", p.P50, p.P95, p.P99, p.Max, p.N)
	}
	rows := [][2]string{
		{"peers", fmt.Sprintf("%d (%d failed to connect)", r.Peers, r.PeersFailed)},
		{"tracks", fmt.Sprint(r.Tracks)},
		{"speed", fmt.Sprintf("%gx", r.Speed)},
		{"p2p", fmt.Sprint(r.P2P)},
		{"wall time", fmt.Sprintf("%.1f s", r.WallSeconds)},
		{"offload ratio", fmt.Sprintf("%.3f (ceiling %.3f)", r.OffloadRatio, r.OffloadCeiling)},
		{"server copies", fmt.Sprintf("%.2f of %d distinct tracks played", r.ServerCopies, r.DistinctTracks)},
		{"sources/playback", pct(r.SourcesPerPlayback)},
		{"start from peer", fmt.Sprintf("%.3f of playbacks not cached", r.StartFromPeerShare)},
		{"server bytes", mb(r.ServerBytes)},
		{"  by rule", fmt.Sprintf("emergency %s, first copies %s, orphans %s", mb(r.ServerBytesByRule.Emergency),
			mb(r.ServerBytesByRule.FirstCopy), mb(r.ServerBytesByRule.Orphan))},
		{"p2p bytes", mb(r.P2PBytes)},
		{"duplicate bytes", fmt.Sprintf("server %s, p2p %s", mb(r.DuplicateBytes.Server), mb(r.DuplicateBytes.P2P))},
		{"cache bytes", mb(r.CacheBytes)},
		{"uploaded bytes", mb(r.UploadedBytes)},
		{"playbacks", fmt.Sprintf("%d (%d complete, %d cached, %d errors)", r.Playbacks, r.PlaybacksComplete, r.PlaybacksCached, r.PlaybackErrors)},
		{"stalls", fmt.Sprintf("%d (%.0f ms)", r.Stalls, r.StalledMS)},
		{"hash failures", fmt.Sprint(r.HashFailures)},
		{"corrupt accepted", fmt.Sprint(r.CorruptAccepted)},
		{"startup ms", pct(r.StartupMS)},
		{"startup ms (all)", pct(r.StartupAllMS)},
		{"lookup ms", pct(r.LookupMS)},
		{"connect ms", pct(r.ConnectMS)},
		{"peer pairs", pairsRow(r.Pairs)},
		{"peer conns", fmt.Sprintf("peak %d at once, open or connecting (%.1f per peer; each side counts one)", r.PeerConnsPeak, float64(r.PeerConnsPeak)/float64(max(r.Peers, 1)))},
		{"faults injected", fmt.Sprintf("%d corrupt peers %v, %d faulty chunks, %d churn leaves (%d rejoins failed)",
			r.FaultsInjected.CorruptPeers, r.FaultsInjected.Modes, r.FaultsInjected.FaultyChunks, r.FaultsInjected.ChurnLeaves, r.FaultsInjected.RejoinFailures)},
		{"faults detected", fmt.Sprintf("%d hash failures, %d bad messages, %d timeouts, %d reports, %d reconnects",
			r.FaultsDetected.HashFailures, r.FaultsDetected.BadMessages, r.FaultsDetected.Timeouts, r.FaultsDetected.ReportsSent, r.FaultsDetected.Reconnects)},
	}
	if r.Hubs > 1 {
		rows = append(rows, [2]string{"hubs", fmt.Sprintf("%d; %d cross-hub pairs, %d failovers to another hub", r.Hubs, r.CrossHubPairs, r.HubFailovers)})
	}
	if h := r.FaultsDetected.Hub; h != nil {
		rows = append(rows, [2]string{"hub reports", fmt.Sprintf("%d accepted, %d refused, %d seeders dropped for a track",
			h.ReportsAccepted, h.ReportsRejected, h.SeedersDropped)})
	}
	for _, row := range rows {
		if _, err := fmt.Fprintf(w, "%-18s %s\n", row[0], row[1]); err != nil {
			return err
		}
	}
	return nil
}

// pairsRow says how many pairs opened and failed, and the share that opened.
func pairsRow(p PairCounts) string {
	if t := p.Opened + p.Failed; t > 0 {
		out := fmt.Sprintf("%d opened, %d failed (%.1f %% opened)", p.Opened, p.Failed, 100*float64(p.Opened)/float64(t))
		if p.Failed > 0 {
			f := p.FailedBy
			out += fmt.Sprintf("; failed: %d timeout, %d ICE/DTLS, %d refused, %d trimmed, %d ended by the other side, %d abandoned",
				f.Timeout, f.Failed, f.Refused, f.Trimmed, f.Remote, f.Abandoned)
		}
		return out
	}
	return "none"
}
