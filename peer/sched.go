package peer

// SchedConfig holds the scheduler's windows, in media milliseconds.
type SchedConfig struct {
	// StartMS is how much audio the hub sends at start when no seeder is
	// known (default 10 s).
	StartMS float64
	// EmergencyMS: when less audio than this is buffered ahead of the
	// playhead and the next chunk is not coming, the urgent chunks are fetched
	// from the hub (default 3 s). It is also the start window when a seeder
	// is connected or connected peers are being asked.
	EmergencyMS float64
	// UrgentMS is how far ahead of the playhead an emergency fetch reaches
	// while a seeder is connected (default 5 s).
	UrgentMS float64
	// HubAheadMS is how far ahead of the playhead the hub streams when no
	// seeder is connected (default 10 s); it refills when less than half of
	// it is buffered.
	HubAheadMS float64
	// PeerAheadMS is how far ahead of the playhead the seeder is asked for
	// chunks (default 300 s: in practice the whole track, as fast as the
	// seeder sends).
	PeerAheadMS float64
	// PeerWindow is the most chunks one seeder range asks for (default 16).
	PeerWindow int
	// FirstCopyAheadMS is how far ahead the hub streams when the tracker
	// said nobody holds the track (default 3,600,000: the whole track). The
	// peer then becomes a holder quickly and the server sends each track
	// about once per swarm (p2p-media-loader's server-seeding idea).
	// Negative disables it (HubAheadMS applies).
	FirstCopyAheadMS float64
}

func (c SchedConfig) withDefaults() SchedConfig {
	if c.StartMS <= 0 {
		c.StartMS = 10_000
	}
	if c.EmergencyMS <= 0 {
		c.EmergencyMS = 3_000
	}
	if c.UrgentMS <= 0 {
		c.UrgentMS = 5_000
	}
	if c.HubAheadMS <= 0 {
		c.HubAheadMS = 10_000
	}
	if c.PeerAheadMS <= 0 {
		c.PeerAheadMS = 300_000
	}
	if c.PeerWindow <= 0 {
		c.PeerWindow = 16
	}
	if c.FirstCopyAheadMS == 0 {
		c.FirstCopyAheadMS = 3_600_000
	}
	return c
}

// SourceState is what the scheduler knows of one source's range in flight.
// The range's chunks arrive in order: Next is the next one expected.
type SourceState struct {
	Active bool
	From   int
	To     int
	Next   int
	// Stalled is set when no chunk of the range arrived for longer than the
	// source timeout.
	Stalled bool
}

func (s SourceState) covers(seq int) bool { return s.Active && seq >= s.Next && seq < s.To }

// SchedInput is the state the scheduler decides from.
type SchedInput struct {
	Timeline *Timeline
	Present  []bool
	// PlayheadMS is the playback position (0 before playback starts).
	PlayheadMS float64
	Hub        SourceState
	Seeder     SourceState
	// SeederConnected is true when a verified-good seeder's chunk channel is open.
	SeederConnected bool
	// Probing is true while the first seeder search of the playback is under
	// way (connected peers asked with have, the tracker's answer or the new
	// pair's connection pending): the hub then starts with only the emergency
	// window, and the emergency threshold is halved.
	Probing bool
	// NoHolders is true when the tracker answered that no online peer holds
	// the track: the hub then streams FirstCopyAheadMS ahead.
	NoHolders bool
}

// Range is a half-open chunk range; the zero Range means "no request".
type Range struct {
	From, To int
}

// Empty reports whether r asks for nothing.
func (r Range) Empty() bool { return r.To <= r.From }

// SchedDecision says which new requests to send. A new request to a source
// replaces that source's range in flight.
type SchedDecision struct {
	Hub    Range
	Seeder Range
}

// Schedule decides what to ask whom. It is a pure function of in:
//
//   - nothing asked yet: the hub gets the start window (StartMS, or only
//     EmergencyMS when a seeder is connected or the first search for one is
//     under way);
//   - a connected seeder is asked for up to PeerWindow missing chunks after
//     what the hub covers, up to PeerAheadMS ahead of the playhead, one range
//     at a time (pipelined: the seeder sends the whole range back to back);
//   - when less than EmergencyMS is buffered ahead and the next missing chunk
//     is not covered by the hub nor by a healthy seeder range, the hub gets
//     the urgent chunks (up to UrgentMS ahead, HubAheadMS without seeder)
//     and a stalled seeder range is moved after them;
//   - with no seeder, the hub streams up to HubAheadMS ahead, refilling when
//     less than half of it is buffered (FirstCopyAheadMS when nobody holds
//     the track).
func Schedule(cfg SchedConfig, in SchedInput) SchedDecision {
	cfg = cfg.withDefaults()
	tl := in.Timeline
	n := tl.Len()
	var d SchedDecision
	cur := tl.ChunkAt(in.PlayheadMS)
	next := FirstMissing(in.Present, cur)
	if next >= n {
		return d
	}
	ahead := tl.Start(next) - in.PlayheadMS
	if ahead < 0 {
		ahead = 0
	}
	seederOK := in.SeederConnected && !in.Seeder.Stalled
	hubEnd := 0
	if in.Hub.Active {
		hubEnd = in.Hub.To
	}
	var sr Range
	if seederOK && !in.Seeder.Active {
		sr = seederRange(cfg, in, hubEnd)
	}
	coming := in.Hub.covers(next)
	if in.Playing(next) {
		// At the very start the hub always sends the first chunks.
		coming = coming || (seederOK && in.Seeder.covers(next)) || (!sr.Empty() && sr.From == next)
	}
	threshold := cfg.EmergencyMS
	if in.Probing && in.Playing(next) {
		// A seeder answer is due within milliseconds: wait for it down to
		// half the emergency window.
		threshold = cfg.EmergencyMS / 2
	}
	if ahead < threshold && !coming {
		// Emergency (this includes the very start: nothing is buffered).
		reach := cfg.HubAheadMS
		switch {
		case (in.SeederConnected || in.Probing) && !in.Playing(next):
			reach = cfg.EmergencyMS
		case in.SeederConnected || in.Probing:
			reach = cfg.UrgentMS
		case !in.Playing(next):
			reach = cfg.StartMS
		}
		if reach == cfg.HubAheadMS {
			reach = hubAhead(cfg, in)
		}
		d.Hub = missingRun(tl, in.Present, next, in.PlayheadMS+reach, n)
		if in.SeederConnected && (!in.Seeder.Active || in.Seeder.Stalled) {
			// Go back to the seeder after the urgent chunks; a stalled range
			// is replaced.
			d.Seeder = seederRange(cfg, in, d.Hub.To)
		}
		return d
	}
	if reach := hubAhead(cfg, in); !in.SeederConnected && !in.Probing && !in.Hub.Active && ahead < reach/2 {
		d.Hub = missingRun(tl, in.Present, next, in.PlayheadMS+reach, n)
	}
	d.Seeder = sr
	return d
}

// hubAhead is how far ahead the hub streams without a seeder.
func hubAhead(cfg SchedConfig, in SchedInput) float64 {
	if in.NoHolders && cfg.FirstCopyAheadMS > 0 {
		return cfg.FirstCopyAheadMS
	}
	return cfg.HubAheadMS
}

// Playing reports whether playback is under way: something before chunk
// next is buffered or played (false at the very start).
func (in SchedInput) Playing(next int) bool { return next > 0 || in.PlayheadMS > 0 }

// seederRange returns the next range to ask the seeder for: missing chunks
// from the first one at or after both the playhead's next missing chunk and
// hubEnd, at most PeerWindow of them, starting less than PeerAheadMS ahead.
func seederRange(cfg SchedConfig, in SchedInput, hubEnd int) Range {
	tl := in.Timeline
	n := tl.Len()
	from := FirstMissing(in.Present, max(tl.ChunkAt(in.PlayheadMS), hubEnd))
	if from >= n || tl.Start(from)-in.PlayheadMS >= cfg.PeerAheadMS {
		return Range{}
	}
	to := from
	for to < n && to-from < cfg.PeerWindow && !in.Present[to] {
		to++
	}
	return Range{From: from, To: to}
}

// missingRun returns the run of missing chunks starting at from, ending at the
// first present chunk, at n, or after the chunk that reaches untilMS (at
// least one chunk).
func missingRun(tl *Timeline, present []bool, from int, untilMS float64, n int) Range {
	to := from
	for to < n && !present[to] && (to == from || tl.Start(to) < untilMS) {
		to++
	}
	return Range{From: from, To: to}
}
