package sim

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"
)

// trackStat is what the run saw of one track.
type trackStat struct {
	plays    int32 // network plays
	size     int64
	server   int64
	p2p      int64
	coldPlay bool // nobody held it at its first network play
	begun    bool
}

// stats counts what a run did.
type stats struct {
	s *Sim

	networkPlays, cachePlays, complete, cut, churned int
	stalls, stalledPlays                             int
	stalledTime                                      time.Duration
	serverBytes, p2pBytes, cacheBytes                int64
	relayBytes, dupBytes                             int64
	serverBy                                         [3]int64 // by rule
	startsMS                                         []float64
	// peerStartsMS and hubStartsMS are the network plays' starts, by
	// where their first chunk came from.
	peerStartsMS, hubStartsMS []float64

	joins, holds, lookups, asks, pairs, links, linkFails int
	crossHubAsks                                         int
	hubRequests, firstCopySkips, probes                  int
	steps, schedules                                     int

	tracks map[trackID]*trackStat

	peakOnline    int
	peakServerBps float64
	lastSample    time.Duration
	lastServer    int64
	onlineSum     float64
	samples       int
}

func (st *stats) init(s *Sim) {
	st.s = s
	st.tracks = make(map[trackID]*trackStat)
}

func (st *stats) track(t trackID, size int64) *trackStat {
	ts := st.tracks[t]
	if ts == nil {
		ts = &trackStat{size: size}
		st.tracks[t] = ts
	}
	return ts
}

func (st *stats) cachePlay(bytes int64) {
	st.cachePlays++
	st.cacheBytes += bytes
	st.startsMS = append(st.startsMS, 0)
}

func (st *stats) start(ms float64, fromPeer bool) {
	st.startsMS = append(st.startsMS, ms)
	if fromPeer {
		st.peerStartsMS = append(st.peerStartsMS, ms)
	} else {
		st.hubStartsMS = append(st.hubStartsMS, ms)
	}
}

// begun is called when a network play starts: a track is cold if nobody
// held it at its first play.
func (st *stats) begun(p *play) {
	st.networkPlays++
	ts := st.track(p.track, p.s.trackBytes(p.tl.Len()))
	if !ts.begun {
		ts.begun = true
		ts.coldPlay = p.wasCold
	}
}

// ended is called once per network play.
func (st *stats) ended(p *play, complete bool) {
	if complete {
		st.complete++
	} else {
		st.cut++
	}
	if n := p.pb.Stalls(); n > 0 {
		st.stalls += n
		st.stalledPlays++
		st.stalledTime += p.pb.StalledTime()
	}
	ts := st.track(p.track, p.s.trackBytes(p.tl.Len()))
	ts.plays++
	ts.server += p.server
	ts.p2p += p.p2p
}

// sample records the online count and the hub's bandwidth once a minute.
func (st *stats) sample() {
	s := st.s
	now := s.clock.Elapsed()
	online := len(s.byName)
	st.peakOnline = max(st.peakOnline, online)
	st.onlineSum += float64(online)
	st.samples++
	if dt := now - st.lastSample; dt > 0 {
		bps := float64(st.serverBytes-st.lastServer) * 8 / dt.Seconds()
		st.peakServerBps = max(st.peakServerBps, bps)
	}
	st.lastSample = now
	st.lastServer = st.serverBytes
}

// Percentiles are a distribution's quantiles.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

// SwarmRow is the offload of the tracks played N times (N in [Min, Max]).
type SwarmRow struct {
	Min     int     `json:"min_plays"`
	Max     int     `json:"max_plays"`
	Tracks  int     `json:"tracks"`
	Plays   int     `json:"plays"`
	Offload float64 `json:"offload"`
	// Ceiling is the mean over those tracks of 1 − 1/N for a track nobody
	// held at its first play (one server copy is the least there can be)
	// and 1 for one a listener held already.
	Ceiling float64 `json:"ceiling"`
}

// Label names the row's play counts: "1", "2–3", or "≥ 1024" for the last.
func (r SwarmRow) Label() string {
	switch {
	case r.Max >= math.MaxInt32:
		return fmt.Sprintf("≥ %d", r.Min)
	case r.Max != r.Min:
		return fmt.Sprintf("%d–%d", r.Min, r.Max)
	}
	return fmt.Sprint(r.Min)
}

// Report is what a run measured.
type Report struct {
	Scenario      string  `json:"scenario"`
	Seed          uint64  `json:"seed"`
	Listeners     int     `json:"listeners"`
	Hours         float64 `json:"hours"`
	MeanOnline    float64 `json:"mean_online"`
	PeakOnline    int     `json:"peak_online"`
	Plays         int     `json:"plays"`
	CachePlays    int     `json:"cache_plays"`
	NetworkPlays  int     `json:"network_plays"`
	CompletePlays int     `json:"complete_plays"`
	CutPlays      int     `json:"cut_plays"`

	ServerBytes int64   `json:"server_bytes"`
	P2PBytes    int64   `json:"p2p_bytes"`
	CacheBytes  int64   `json:"cache_bytes"`
	RelayBytes  int64   `json:"relay_bytes"`
	DupBytes    int64   `json:"duplicate_bytes"`
	ServerShare float64 `json:"server_share"`
	P2PShare    float64 `json:"p2p_share"`
	CacheShare  float64 `json:"cache_share"`
	// Offload is p2p / (p2p + server): the network bytes peers carried.
	Offload float64 `json:"offload"`
	// OffloadCeiling is 1 − (cold tracks) / (network plays): one server
	// copy per track nobody held when it was first played.
	OffloadCeiling float64    `json:"offload_ceiling"`
	BySwarm        []SwarmRow `json:"by_swarm"`

	StallsPer1000 float64     `json:"stalls_per_1000"`
	StalledShare  float64     `json:"stalled_play_share"`
	StartMS       Percentiles `json:"start_ms"`
	NetStartMS    Percentiles `json:"network_start_ms"`
	StartFromPeer float64     `json:"start_from_peer"`
	// PeerStartMS and HubStartMS split NetStartMS by where the play's first
	// chunk came from.
	PeerStartMS    Percentiles `json:"peer_start_ms"`
	HubStartMS     Percentiles `json:"hub_start_ms"`
	ColdTracks     int         `json:"cold_tracks"`
	ServerCopies   float64     `json:"server_copies_per_cold_track"`
	FirstCopySkips int         `json:"first_copy_skips"`
	// ServerBy splits the server bytes by the rule that asked for them.
	ServerBy ServerBytesBy `json:"server_bytes_by"`

	Tracker TrackerLoad `json:"tracker"`
	Hub     HubLoad     `json:"hub"`

	Events      uint64  `json:"events"`
	Schedules   int     `json:"schedules"`
	WallSeconds float64 `json:"wall_seconds"`
	HeapMB      float64 `json:"heap_mb"`
}

// ServerBytesBy splits the server's bytes by why a peer asked for them
// (docs/PROTOCOL.md §8.3): a chunk due soon, a first copy, or a chunk the
// hub gave another peer that this one has no link to.
type ServerBytesBy struct {
	Emergency int64 `json:"emergency"`
	FirstCopy int64 `json:"first_copy"`
	Orphan    int64 `json:"orphan"`
}

// TrackerLoad is the tracker's work and state.
type TrackerLoad struct {
	OpsPerSec     float64 `json:"ops_per_sec"`
	LookupsPerSec float64 `json:"lookups_per_sec"`
	JoinsPerSec   float64 `json:"joins_per_sec"`
	HoldsPerSec   float64 `json:"holds_per_sec"`
	Pairs         int     `json:"pairs"`
	LinksOpened   int     `json:"links_opened"`
	LinksFailed   int     `json:"links_failed"`
	// Holders is the holder entries kept at the end (its state size).
	Holders     int `json:"holders"`
	TracksKnown int `json:"tracks_known"`
}

// HubLoad projects the hub's work from the bench's measured costs.
type HubLoad struct {
	Hubs          int     `json:"hubs"`
	MeanMbps      float64 `json:"mean_mbps"`
	PeakMbps      float64 `json:"peak_mbps"`
	CoresPerHub   float64 `json:"cores_per_hub"`
	MbpsPerOnline float64 `json:"mbps_per_1000_online"`
	// CrossHubAsks is the share of can_upload questions relayed to
	// another hub (0 with one hub).
	CrossHubAsks float64 `json:"cross_hub_asks"`
}

func pct(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func percentiles(v []float64) Percentiles {
	s := slices.Clone(v)
	slices.Sort(s)
	return Percentiles{P50: pct(s, 0.5), P90: pct(s, 0.9), P99: pct(s, 0.99)}
}

func share(a, total int64) float64 {
	if total == 0 {
		return 0
	}
	return float64(a) / float64(total)
}

func (st *stats) report(wall time.Duration) Report {
	s := st.s
	secs := s.clock.Elapsed().Seconds()
	total := st.serverBytes + st.p2pBytes + st.cacheBytes
	r := Report{
		Scenario: s.sc.Name, Seed: s.sc.Seed, Listeners: s.listeners(), Hours: s.clock.Elapsed().Hours(),
		PeakOnline: st.peakOnline, Plays: st.complete + st.cut + st.cachePlays, CachePlays: st.cachePlays,
		NetworkPlays: st.networkPlays, CompletePlays: st.complete, CutPlays: st.cut,
		ServerBytes: st.serverBytes, P2PBytes: st.p2pBytes, CacheBytes: st.cacheBytes, RelayBytes: st.relayBytes,
		DupBytes:    st.dupBytes,
		ServerShare: share(st.serverBytes, total), P2PShare: share(st.p2pBytes, total), CacheShare: share(st.cacheBytes, total),
		Offload:        share(st.p2pBytes, st.p2pBytes+st.serverBytes),
		StartMS:        percentiles(st.startsMS),
		FirstCopySkips: st.firstCopySkips,
		ServerBy:       ServerBytesBy{Emergency: st.serverBy[ruleEmergency], FirstCopy: st.serverBy[ruleFirstCopy], Orphan: st.serverBy[ruleOrphan]},
		Events:         s.clock.Processed, Schedules: st.schedules,
		WallSeconds: wall.Seconds(),
	}
	if st.samples > 0 {
		r.MeanOnline = st.onlineSum / float64(st.samples)
	}
	var net []float64
	for _, v := range st.startsMS {
		if v > 0 {
			net = append(net, v)
		}
	}
	r.NetStartMS = percentiles(net)
	r.PeerStartMS = percentiles(st.peerStartsMS)
	r.HubStartMS = percentiles(st.hubStartsMS)
	if len(net) > 0 {
		r.StartFromPeer = float64(len(st.peerStartsMS)) / float64(len(net))
	}
	if plays := st.complete + st.cut + st.cachePlays; plays > 0 {
		r.StallsPer1000 = float64(st.stalls) * 1000 / float64(plays)
		r.StalledShare = float64(st.stalledPlays) / float64(plays)
	}
	// Offload by swarm size (network plays per track), and server copies of cold tracks.
	bounds := [][2]int{{1, 1}, {2, 3}, {4, 7}, {8, 15}, {16, 63}, {64, 255}, {256, 1023}, {1024, math.MaxInt32}}
	rows := make([]SwarmRow, len(bounds))
	var ceilSum [8]float64
	var srv, p2p [8]int64
	coldCopies := 0.0
	for _, ts := range st.tracks {
		for i, b := range bounds {
			if int(ts.plays) >= b[0] && int(ts.plays) <= b[1] {
				rows[i].Tracks++
				rows[i].Plays += int(ts.plays)
				// One server copy per track that was cold, none for one held before.
				if ts.coldPlay {
					ceilSum[i] += 1 - 1/float64(ts.plays)
				} else {
					ceilSum[i]++
				}
				srv[i] += ts.server
				p2p[i] += ts.p2p
			}
		}
		if ts.coldPlay {
			r.ColdTracks++
			coldCopies += float64(ts.server) / float64(ts.size)
		}
	}
	for i, b := range bounds {
		rows[i].Min, rows[i].Max = b[0], b[1]
		if rows[i].Tracks > 0 {
			rows[i].Ceiling = ceilSum[i] / float64(rows[i].Tracks)
			rows[i].Offload = share(p2p[i], p2p[i]+srv[i])
			r.BySwarm = append(r.BySwarm, rows[i])
		}
	}
	if n := st.complete + st.cut; n > 0 {
		r.OffloadCeiling = 1 - float64(r.ColdTracks)/float64(n)
	}
	if r.ColdTracks > 0 {
		r.ServerCopies = coldCopies / float64(r.ColdTracks)
	}
	if secs > 0 {
		ops := st.joins + st.holds + st.lookups + st.asks
		r.Tracker = TrackerLoad{
			OpsPerSec: float64(ops) / secs, LookupsPerSec: float64(st.lookups) / secs,
			JoinsPerSec: float64(st.joins) / secs, HoldsPerSec: float64(st.holds) / secs,
		}
		meanBps := float64(st.serverBytes) * 8 / secs
		hubs := float64(s.sc.Hubs)
		c := s.sc.Server
		cores := (float64(st.serverBytes)/1e6*c.CPUSecondsPerMB+float64(st.joins)*c.CPUSecondsPerJoin)/secs + r.MeanOnline*c.IdleCoresPerPeer
		r.Hub = HubLoad{Hubs: s.sc.Hubs, MeanMbps: meanBps / 1e6, PeakMbps: st.peakServerBps / 1e6, CoresPerHub: cores / hubs}
		if st.asks > 0 {
			r.Hub.CrossHubAsks = float64(st.crossHubAsks) / float64(st.asks)
		}
		if r.MeanOnline > 0 {
			r.Hub.MbpsPerOnline = meanBps / 1e6 / r.MeanOnline * 1000
		}
	}
	r.Tracker.Pairs, r.Tracker.LinksOpened, r.Tracker.LinksFailed = st.pairs, st.links, st.linkFails
	r.Tracker.Holders, r.Tracker.TracksKnown = s.tr.Size()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	r.HeapMB = float64(m.HeapAlloc) / 1e6
	return r
}
