package peer

import (
	"math"

	"github.com/ztream/ztream/chunkproto"
)

// The peer algorithm of docs/PROTOCOL.md §8, as a pure function. The browser
// client implements the same function (web/js/swarm.js); both run the shared
// scenario vectors in testdata/peer-algorithm/schedule.json.

// SchedConfig holds the scheduler's windows, in media milliseconds.
type SchedConfig struct {
	// StartMS is how much audio the hub sends at start without P2P
	// (default 10 s).
	StartMS float64 `json:"start_ms"`
	// EmergencyMS: a missing chunk that starts less than this far ahead of
	// the playhead and is not coming from a healthy source is fetched from
	// the hub, with the other uncovered chunks of that zone (default 3 s).
	// It is halved while the first peer search of a playback is under way.
	EmergencyMS float64 `json:"emergency_ms"`
	// RescueMS: while playing, a missing chunk starting less than this far
	// ahead that the hub is not sending goes to the hub even when a peer
	// range covers it: a slow peer must not stall playback (default 0.5 s,
	// less than a chunk: a peer streaming the start is not doubled).
	RescueMS float64 `json:"rescue_ms"`
	// HubAheadMS is how far ahead of the playhead the hub streams without
	// P2P (default 10 s); it refills when less than half of it is buffered.
	HubAheadMS float64 `json:"hub_ahead_ms"`
	// PeerAheadMS is how far ahead of the playhead peers are asked for
	// chunks (default 300 s: in practice the whole track).
	PeerAheadMS float64 `json:"peer_ahead_ms"`
	// InOrderMS: within this far ahead of the playhead, peers are asked for
	// chunks in playback order; beyond it, rarest first (default 10 s).
	InOrderMS float64 `json:"in_order_ms"`
	// PeerWindow is the most chunks one peer range asks for (default 8).
	PeerWindow int `json:"peer_window"`
	// FirstCopyAheadMS is how far ahead of the playhead the hub is asked
	// for first copies: chunks no linked peer holds (default 3,600,000:
	// the whole track). The hub sends each such chunk to one peer of the
	// swarm and skips it for the others (§8.4).
	FirstCopyAheadMS float64 `json:"first_copy_ahead_ms"`
	// FirstCopyChunks is the most chunks one first-copy request names
	// (default 32).
	FirstCopyChunks int `json:"first_copy_chunks"`
}

func (c SchedConfig) withDefaults() SchedConfig {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.StartMS, 10_000)
	def(&c.EmergencyMS, 3_000)
	def(&c.RescueMS, 500)
	def(&c.HubAheadMS, 10_000)
	def(&c.PeerAheadMS, 300_000)
	def(&c.InOrderMS, 10_000)
	def(&c.FirstCopyAheadMS, 3_600_000)
	if c.PeerWindow <= 0 {
		c.PeerWindow = 8
	}
	if c.FirstCopyChunks <= 0 {
		c.FirstCopyChunks = 32
	}
	return c
}

// Algorithm holds the constants of the peer algorithm (PROTOCOL.md §8)
// beyond the scheduler's windows: the Go peer's defaults, served by the hub
// at GET /api/config so that browsers run the same numbers. Times are media
// milliseconds unless the name says real.
type Algorithm struct {
	Sched SchedConfig `json:"sched"`
	// MaxSources bounds the peer links one playback takes chunks from.
	MaxSources int `json:"max_sources"`
	// StartWaitRealMS: how long a start waits for a peer (§8.2).
	StartWaitRealMS float64 `json:"start_wait_real_ms"`
	// StartRescueRealMS: a start that has not happened this long after the
	// playback began is late: its first chunk goes to the hub even when a
	// peer range covers it (SchedInput.StartLate, §8.3 rule 3).
	StartRescueRealMS float64 `json:"start_rescue_real_ms"`
	// SourceTimeoutMS: a range with no chunk for this long is slow.
	SourceTimeoutMS float64 `json:"source_timeout_ms"`
	// SilenceRealMS: a source that sent nothing for this long is abandoned.
	SilenceRealMS float64 `json:"silence_real_ms"`
	// LookupRetryMS, LookupRetryRealMS and MaxLookups pace the tracker
	// lookups of a playback: one at most every LookupRetryMS of media and
	// LookupRetryRealMS of real time, MaxLookups in all.
	LookupRetryMS     float64 `json:"lookup_retry_ms"`
	LookupRetryRealMS float64 `json:"lookup_retry_real_ms"`
	MaxLookups        int     `json:"max_lookups"`
	// LookupBackoffMaxMS caps the wait before a peer's next lookup after
	// peer links of its lookups failed to open (LookupBackoffMS).
	LookupBackoffMaxMS float64 `json:"lookup_backoff_max_ms"`
	// FirstCopyRetryMS is the first-copy hold (§8.4).
	FirstCopyRetryMS float64 `json:"first_copy_retry_ms"`
	// HoldingIntervalRealMS is the shortest time between two holding
	// messages of a track to one destination.
	HoldingIntervalRealMS float64 `json:"holding_interval_real_ms"`
	// MaxPeerConns bounds the PeerConnections kept with other peers.
	MaxPeerConns int `json:"max_peer_conns"`
}

// DefaultAlgorithm returns the algorithm's default constants.
func DefaultAlgorithm() Algorithm {
	return Algorithm{
		Sched:                 SchedConfig{}.withDefaults(),
		MaxSources:            4,
		StartWaitRealMS:       150,
		StartRescueRealMS:     400,
		SourceTimeoutMS:       2000,
		SilenceRealMS:         3000,
		LookupRetryMS:         1000,
		LookupRetryRealMS:     250,
		MaxLookups:            64,
		LookupBackoffMaxMS:    30000,
		FirstCopyRetryMS:      2000,
		HoldingIntervalRealMS: chunkproto.HoldingIntervalMS,
		MaxPeerConns:          16,
	}
}

// LookupBackoffMS is how long (media ms) a peer waits before its next
// tracker lookup, for any track, after fails peer links of its lookups in a
// row failed to open (PROTOCOL.md §8.2): none after 0, else
// LookupRetryMS·2^(fails−1), at most LookupBackoffMaxMS. Pairs that do not
// open (a saturated host, NATs no path crosses) then stop being set up at
// the rate they fail, each setup costing both sides CPU. Media time, as
// LookupRetryMS: a run at 10x holds the same share of a track as one at 1x.
func (a Algorithm) LookupBackoffMS(fails int) float64 {
	if fails <= 0 {
		return 0
	}
	return min(a.LookupRetryMS*math.Pow(2, float64(min(fails, 31)-1)), a.LookupBackoffMaxMS)
}

// SourceState is what the scheduler knows of one source's range in flight.
// The range's chunks arrive in order: Next is the next one expected.
type SourceState struct {
	Active bool
	From   int
	To     int
	Next   int
	// Stalled is set when no chunk of the range arrived for longer than the
	// source timeout; a stalled peer gets no new range.
	Stalled bool
	// FirstCopy marks a hub range asked as first copies.
	FirstCopy bool
}

// healthy reports whether the range is in flight and moving.
func (s SourceState) healthy() bool { return s.Active && !s.Stalled }

// PeerSource is one open, trusted peer link for the track.
//
//nolint:revive // exported stutter: named as web/js's PeerSource, the browser scheduler this one mirrors.
type PeerSource struct {
	State SourceState
	// Has flags the chunks the peer holds; nil means all of them.
	Has []bool
}

func (p PeerSource) has(seq int) bool { return p.Has == nil || (seq < len(p.Has) && p.Has[seq]) }

// SchedInput is the state the scheduler decides from.
type SchedInput struct {
	Timeline *Timeline
	Present  []bool
	// PlayheadMS is the playback position (0 before playback starts;
	// negative for a track that plays later: minus the time until it starts).
	PlayheadMS float64
	Hub        SourceState
	// Peers are the open links to peers that may serve the track, in the
	// caller's order of preference.
	Peers []PeerSource
	// P2P is false when the peer never uses peers (the hub streams
	// everything, HubAheadMS ahead).
	P2P bool
	// Waiting is true while the first peer search of the playback is under
	// way (links asked with have, a tracker lookup or new links pending)
	// and the start deadline has not passed: the hub is not asked for the
	// first chunk yet, and the emergency zone is halved.
	Waiting bool
	// FirstCopyHold is true when a first-copy request came back short
	// recently: the hub gave those chunks to other peers, so no new
	// first-copy request is made until the hold ends.
	FirstCopyHold bool
	// StartLate is true when playback has not started
	// Algorithm.StartRescueRealMS after it began: a peer range covering the
	// first chunk is too slow, and the hub is asked for it (rule 3).
	StartLate bool
	// Scratch, when set, holds buffers Schedule reuses from call to call
	// instead of allocating them. It belongs to one caller: Schedule is
	// not safe to call concurrently with the same Scratch.
	Scratch *SchedScratch
}

// SchedScratch is Schedule's working memory, kept by a caller that
// schedules often (see SchedInput.Scratch). Its zero value is ready.
type SchedScratch struct {
	covered []bool
	holders []int
}

// buffers returns zeroed buffers for n chunks: s's, or new ones when s is
// nil.
func (s *SchedScratch) buffers(n int) (covered []bool, holders []int) {
	if s == nil {
		return make([]bool, n), make([]int, n)
	}
	if cap(s.covered) < n {
		s.covered, s.holders = make([]bool, n), make([]int, n)
	}
	s.covered, s.holders = s.covered[:n], s.holders[:n]
	clear(s.covered)
	clear(s.holders)
	return s.covered, s.holders
}

// Playing reports whether playback is under way: something before chunk
// next is buffered or played (false at the very start).
func (in SchedInput) Playing(next int) bool { return next > 0 || in.PlayheadMS > 0 }

// Range is a half-open chunk range; the zero Range means "no request".
type Range struct {
	From, To int
}

// Empty reports whether r asks for nothing.
func (r Range) Empty() bool { return r.To <= r.From }

// SchedDecision says which new requests to send. A new request to a source
// replaces that source's range of the track in flight.
type SchedDecision struct {
	Hub Range
	// HubFirstCopy marks the hub request as first copies.
	HubFirstCopy bool
	// Peers holds one range per SchedInput.Peers entry (empty: none).
	Peers []Range
}

// Schedule decides what to ask whom. It is a pure function of in; the rules,
// in order (docs/PROTOCOL.md §8.3):
//
//  1. Every chunk in a healthy range in flight is covered.
//  2. Each idle, healthy peer (in order) is asked for up to PeerWindow
//     uncovered missing chunks it holds, starting less than PeerAheadMS
//     ahead: the first such chunk within InOrderMS of the playhead, else
//     the rarest among the linked peers (lowest index on ties), extended
//     while the next chunk is uncovered, missing and held.
//  3. Emergency: when the next missing chunk is uncovered and starts less
//     than EmergencyMS ahead (halved while Waiting), or, while playing or
//     at a late start (StartLate), is not in the hub's range and starts less
//     than RescueMS ahead (a peer range covering it is too slow), the hub gets the run from it of
//     chunks that are uncovered or so close. With P2P the run stops at the end of
//     the emergency zone (at least one chunk); without, it reaches StartMS
//     at start and HubAheadMS while playing. At the very start nothing goes
//     to the hub while Waiting.
//  4. With P2P and the hub idle (and no FirstCopyHold, not Waiting), the
//     hub is asked for first copies: the first run of uncovered missing
//     chunks no linked peer holds, up to FirstCopyChunks, starting less
//     than FirstCopyAheadMS ahead.
//  5. Without P2P and the hub idle, the hub streams HubAheadMS ahead,
//     refilling when less than half of it is buffered.
func Schedule(cfg SchedConfig, in SchedInput) SchedDecision {
	cfg = cfg.withDefaults()
	tl := in.Timeline
	n := tl.Len()
	d := SchedDecision{Peers: make([]Range, len(in.Peers))}
	next := FirstMissing(in.Present, tl.ChunkAt(in.PlayheadMS))
	if next >= n {
		return d
	}
	playing := in.Playing(next)
	covered, holders := in.Scratch.buffers(n)
	cover := func(from, to int) {
		for c := max(from, 0); c < min(to, n); c++ {
			covered[c] = true
		}
	}
	if in.Hub.healthy() {
		cover(in.Hub.Next, in.Hub.To)
	}
	for _, p := range in.Peers {
		if p.State.healthy() {
			cover(p.State.Next, p.State.To)
		}
		if p.State.Stalled {
			continue
		}
		for c := next; c < n; c++ {
			if p.has(c) {
				holders[c]++
			}
		}
	}
	free := func(c int) bool { return !in.Present[c] && !covered[c] }
	// hubOwes: with P2P, the hub's range, even stalled, still has c to
	// send. The hub is slow, it does not lie: asking it again would only
	// queue a second copy behind the first (without P2P, a stalled hub is
	// asked again: there is no other source).
	hubOwes := func(c int) bool { return in.P2P && in.Hub.Active && c >= in.Hub.Next && c < in.Hub.To }
	rescue := func(c int) bool {
		return in.P2P && (playing || in.StartLate) && !in.Present[c] && !hubOwes(c) && tl.Start(c)-in.PlayheadMS < cfg.RescueMS
	}

	// 2. Peers.
	for i, p := range in.Peers {
		if p.State.Active || p.State.Stalled {
			continue
		}
		r := peerRange(cfg, in, p, next, free, holders)
		if !r.Empty() {
			d.Peers[i] = r
			cover(r.From, r.To)
		}
	}

	// 3. Emergency.
	threshold := cfg.EmergencyMS
	if in.Waiting {
		threshold /= 2
	}
	ahead := max(tl.Start(next)-in.PlayheadMS, 0)
	if (free(next) && !hubOwes(next) && ahead < threshold && (playing || !in.Waiting)) || rescue(next) {
		reach := in.PlayheadMS + threshold
		switch {
		case !in.P2P && playing:
			reach = in.PlayheadMS + cfg.HubAheadMS
		case !in.P2P:
			reach = in.PlayheadMS + cfg.StartMS
		case !playing:
			reach = 0 // the first chunk only: peers may serve the rest
		}
		to := next
		for to < n && (free(to) || rescue(to)) && !hubOwes(to) && (to == next || tl.Start(to) < reach) {
			to++
		}
		d.Hub = Range{From: next, To: to}
		return d
	}
	if in.Hub.Active {
		return d
	}

	// 4. First copies.
	if in.P2P {
		if in.Waiting || in.FirstCopyHold {
			return d
		}
		from := -1
		for c := next; c < n && tl.Start(c)-in.PlayheadMS < cfg.FirstCopyAheadMS; c++ {
			if free(c) && holders[c] == 0 {
				from = c
				break
			}
		}
		if from < 0 {
			return d
		}
		to := from
		for to < n && to-from < cfg.FirstCopyChunks && free(to) && holders[to] == 0 {
			to++
		}
		d.Hub, d.HubFirstCopy = Range{From: from, To: to}, true
		return d
	}

	// 5. No P2P: stream ahead.
	if ahead < cfg.HubAheadMS/2 {
		to := next
		for to < n && free(to) && (to == next || tl.Start(to) < in.PlayheadMS+cfg.HubAheadMS) {
			to++
		}
		d.Hub = Range{From: next, To: to}
	}
	return d
}

// peerRange picks the next range for an idle peer (rule 2).
func peerRange(cfg SchedConfig, in SchedInput, p PeerSource, next int, free func(int) bool, holders []int) Range {
	tl := in.Timeline
	n := tl.Len()
	ok := func(c int) bool {
		return free(c) && p.has(c) && tl.Start(c)-in.PlayheadMS < cfg.PeerAheadMS
	}
	from := -1
	for c := next; c < n && tl.Start(c) < in.PlayheadMS+cfg.InOrderMS; c++ {
		if ok(c) {
			from = c
			break
		}
	}
	if from < 0 {
		for c := next; c < n; c++ {
			if ok(c) && (from < 0 || holders[c] < holders[from]) {
				from = c
			}
		}
	}
	if from < 0 {
		return Range{}
	}
	to := from
	for to < n && to-from < cfg.PeerWindow && ok(to) {
		to++
	}
	return Range{From: from, To: to}
}
