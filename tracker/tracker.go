// Package tracker is the hub's peer tracker as pure logic: per track it keeps
// a bounded set of online peers that hold it, completely or in part (a
// bitfield of the chunks they hold), and it answers a lookup by asking the
// best-ranked candidates in parallel (through an Asker) and taking the first
// yeses, within a timeout. It also counts each seeder's active uploads so that
// no seeder is paired beyond its upload cap.
//
// Every map it keeps is bounded by the number of joined peers times a per-peer
// limit, and a lookup costs O(holders kept for the track), independent of the
// number of peers and of pending lookups.
package tracker

import (
	"cmp"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Reasons reported in Result.Reason when no seeder was found (the same
// strings as the signaling package's Reason constants).
const (
	// ReasonNoCandidates: nobody online (but the requester) holds any chunk
	// of the track and can upload: the requester's copy is a first copy.
	ReasonNoCandidates = "no_candidates"
	// ReasonBusy: holders exist, but none can serve the requester now (all
	// at their upload cap, with too many unanswered asks, or reported by the
	// requester). Ask again later; the track is not cold.
	ReasonBusy       = "busy"
	ReasonAllRefused = "all_refused"
	ReasonTimeout    = "timeout"
)

// Reasons of a report (the same strings as the signaling package's Report*
// constants). A timeout is weaker evidence than the others: a slow or
// departing seeder also times out.
const (
	ReportHashMismatch = "hash_mismatch"
	ReportBadMessage   = "bad_message"
	ReportTimeout      = "timeout"
)

// Errors returned by the Tracker.
var (
	ErrUnknownPeer     = errors.New("tracker: unknown peer")
	ErrPeerExists      = errors.New("tracker: peer already joined")
	ErrTooManyLookups  = errors.New("tracker: too many pending lookups")
	ErrDuplicateLookup = errors.New("tracker: lookup for this track already pending")
	ErrClosed          = errors.New("tracker: closed")
	ErrBadBitfield     = errors.New("tracker: bitfield does not match the chunk count")
)

// Asker delivers a can_upload question to a candidate seeder. It must not
// block; it returns false when the question could not be queued, which the
// tracker treats as a no.
type Asker interface {
	AskUpload(peer, track, lookupID, requester string) bool
}

// Result ends one lookup. Seeders is empty when none was found; Reason then
// says why. On success each seeder's active upload count has already been
// incremented: the caller must call ReleaseUpload for each when its upload
// ends (or at once if it cannot pair the two peers).
type Result struct {
	LookupID  string
	Requester string
	Track     string
	// Seeders are the candidates that said yes, in the order they did (at
	// most the lookup's Query.Want).
	Seeders []string
	Reason  string
	// Elapsed is the time from Lookup to the result.
	Elapsed time.Duration
}

// Query refines a lookup. The zero Query asks for one seeder of any chunk.
type Query struct {
	// Want is how many seeders the requester wants at most (0 = 1; capped
	// at Config.MaxWant).
	Want int
	// From is the first chunk the requester needs: partial holders are
	// ranked by how many chunks of [From, From+Span) they hold.
	From int
	// Span is the window that ranks partial holders (0 = 32 chunks).
	Span int
	// Partial accepts partial holders as candidates; without it only
	// complete holders count (clients that cannot use part of a track).
	Partial bool
	// Exclude lists peers not to ask (the requester's current partners: it
	// reaches them on its open links); they count as busy holders.
	Exclude []string
}

// Config bounds the tracker. Zero fields take the defaults shown.
type Config struct {
	// HoldersPerTrack is how many holders (complete or partial) are kept
	// per track (32). When a new holder arrives at a full track, the least
	// useful one is forgotten: the busiest (fewest free upload slots), then
	// the one holding fewest chunks, then the least recent.
	HoldersPerTrack int
	// MaxTracksPerPeer bounds the tracks one peer is listed for as complete
	// holder (256).
	MaxTracksPerPeer int
	// MaxPartialPerPeer bounds the tracks one peer is listed for as partial
	// holder (8); a newer partial track replaces its oldest.
	MaxPartialPerPeer int
	// MaxChunks bounds a partial holder's bitfield (1<<17, media's limit).
	MaxChunks int
	// MaxPendingPerPeer bounds one requester's pending lookups (4).
	MaxPendingPerPeer int
	// MaxOutstandingAsks skips candidates with this many unanswered asks (16).
	MaxOutstandingAsks int
	// AskPerLookup bounds the candidates asked by one lookup (8); they are
	// the best ranked.
	AskPerLookup int
	// MaxWant bounds Query.Want (8).
	MaxWant int
	// GatherWindow is how long a lookup that wants several seeders waits
	// for more yeses after the first one (100 ms).
	GatherWindow time.Duration
	// LookupTimeout ends a lookup nobody said yes to (1.5 s).
	LookupTimeout time.Duration
	// MaxExclusionsPerPeer bounds the (seeder, track) couples one peer's
	// reports exclude from its lookups; the oldest is forgotten first (64).
	MaxExclusionsPerPeer int
	// Clock gives the time and runs the lookup timers (default: the
	// system's; the simulator's runs in virtual time).
	Clock Clock
	// DropAfterReports drops a seeder as holder of a track once this many
	// distinct peers reported it for a hash mismatch or a bad message (2).
	// Timeouts never drop a seeder for everyone: an overloaded machine or a
	// bad network path makes honest seeders time out too (a 200-peer load
	// run on 2 cores had hundreds of them); they only exclude the seeder
	// from the reporter's lookups.
	DropAfterReports int
}

// Clock is the time source of a Tracker: Now, and AfterFunc, which runs f
// once d has passed (on a goroutine of its own, or, in a simulator, from
// its event loop) unless the returned Timer is stopped first.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer of a Clock.
type Timer interface {
	// Stop prevents the timer's function from running; it reports whether
	// it did.
	Stop() bool
}

// systemClock is the Clock of the time package.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.HoldersPerTrack, 32)
	def(&c.MaxTracksPerPeer, 256)
	def(&c.MaxPartialPerPeer, 8)
	def(&c.MaxChunks, 1<<17)
	def(&c.MaxPendingPerPeer, 4)
	def(&c.MaxOutstandingAsks, 16)
	def(&c.AskPerLookup, 8)
	def(&c.MaxWant, 8)
	def(&c.MaxExclusionsPerPeer, 64)
	def(&c.DropAfterReports, 2)
	if c.GatherWindow <= 0 {
		c.GatherWindow = 100 * time.Millisecond
	}
	if c.LookupTimeout <= 0 {
		c.LookupTimeout = 1500 * time.Millisecond
	}
	return c
}

// holder is one entry of a track's holder list: a peer and what it holds
// of the track. The entries are kept in the list itself (not behind a
// pointer): choosing among a track's holders then reads one array.
type holder struct {
	id string
	ps *peerState
	up *uploads // ps.up
	// have is the bitfield of held chunks (bit i of byte i/8, most
	// significant first); nil for a complete holder.
	have  []byte
	count int    // chunks held (partial holders)
	stamp uint64 // tracker clock at the last update: recency
}

func (h *holder) complete() bool { return h.have == nil }

// within counts the held chunks in [from, from+span).
func (h *holder) within(from, span int) int {
	if h.complete() {
		return span
	}
	n := len(h.have) * 8
	end := min(from+span, n)
	c := 0
	for i := max(from, 0); i < end; {
		if i%8 == 0 && i+8 <= end {
			c += bits.OnesCount8(h.have[i/8])
			i += 8
			continue
		}
		if h.have[i/8]&(0x80>>(i%8)) != 0 {
			c++
		}
		i++
	}
	return c
}

// uploads are a peer's upload slots: its cap and those in use (paired and
// not released).
type uploads struct{ cap, active int }

func (u *uploads) free() int { return u.cap - u.active }

type peerState struct {
	// up is in a small record of its own, which the track's holder entries
	// point to: choosing among up to 32 holders reads 32 of these, not 32
	// whole peer states.
	up          *uploads
	outstanding int // can_upload asks not answered
	// holds is the set of tracks this peer is listed for (what it holds
	// of each is its entry in the track's holder list); complete counts
	// its complete ones, partial lists its partial ones, oldest first.
	holds    map[*trackState]struct{}
	complete int
	partial  []*trackState
	// lookups are the pending lookups this peer requested, by track;
	// askedIn the pending lookups that asked it.
	lookups map[string]*lookup
	askedIn map[*lookup]struct{}

	// excluded holds the (seeder, track) couples this peer reported: they
	// are skipped in its lookups. excludedOrder is their insertion order.
	excluded      map[exclusion]struct{}
	excludedOrder []exclusion
	// accusations maps a track this peer seeded to the peers that reported
	// it for a hash mismatch or a bad message.
	accusations map[string]map[string]struct{}
	// dropped lists the tracks this peer was dropped as a holder of; its
	// later Hold calls for them are ignored.
	dropped map[string]struct{}
}

// trackState is a track the tracker knows a holder of: its id and its
// holder list (unordered, ≤ HoldersPerTrack). Peers' records point to it,
// so that one lookup by id serves a whole announcement.
type trackState struct {
	id   string
	list []holder
}

// exclusion is a seeder a peer reported for one track.
type exclusion struct{ seeder, track string }

// askedPeer is a candidate a lookup asked.
type askedPeer struct {
	id       string
	ps       *peerState
	answered bool
}

// find returns the candidate id of l, or nil.
func (l *lookup) find(id string) *askedPeer {
	for i := range l.asked {
		if l.asked[i].id == id {
			return &l.asked[i]
		}
	}
	return nil
}

type lookup struct {
	id, requester, track string
	want                 int
	asked                []askedPeer // the candidates asked (≤ AskPerLookup)
	unanswered           int
	seeders              []string
	timer, gather        Timer
	started              time.Time
}

// Tracker is safe for concurrent use. Result callbacks run outside its lock,
// possibly on the goroutine of the call that ended the lookup (Lookup, Reply,
// Leave) or on a timer goroutine.
type Tracker struct {
	cfg      Config
	asker    Asker
	onResult func(Result)

	mu     sync.Mutex
	closed bool
	nextID uint64
	clock  uint64
	peers  map[string]*peerState
	// tracks maps a track id to the track's holders.
	tracks  map[string]*trackState
	lookups map[string]*lookup
	scratch []candidate // LookupQuery's candidate buffer, reused under mu
}

// New returns a tracker asking candidates through asker and reporting every
// finished lookup (except those of a requester that left) to onResult.
func New(cfg Config, asker Asker, onResult func(Result)) *Tracker {
	return &Tracker{
		cfg:      cfg.withDefaults(),
		asker:    asker,
		onResult: onResult,
		peers:    make(map[string]*peerState),
		tracks:   make(map[string]*trackState),
		lookups:  make(map[string]*lookup),
	}
}

// Join registers an online peer with its upload cap (a cap of 0 means the
// peer never seeds: it is never listed as a holder).
func (t *Tracker) Join(peer string, uploadCap int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	if _, ok := t.peers[peer]; ok {
		return fmt.Errorf("join %s: %w", peer, ErrPeerExists)
	}
	t.peers[peer] = &peerState{
		up:      &uploads{cap: uploadCap},
		holds:   make(map[*trackState]struct{}),
		lookups: make(map[string]*lookup),
		askedIn: make(map[*lookup]struct{}),
	}
	return nil
}

// Leave removes a peer: from every holder list, its pending lookups are
// dropped without a result, and lookups asking it count its answer as no.
func (t *Tracker) Leave(peer string) {
	var results []Result
	t.mu.Lock()
	ps, ok := t.peers[peer]
	if !ok {
		t.mu.Unlock()
		return
	}
	for ts := range ps.holds {
		t.removeHolder(ts, ps)
	}
	for _, l := range ps.lookups {
		t.finish(l)
	}
	for l := range ps.askedIn {
		if a := l.find(peer); a != nil && !a.answered {
			a.answered = true
			l.unanswered--
			if l.unanswered == 0 {
				results = append(results, t.conclude(l))
			}
		}
	}
	delete(t.peers, peer)
	t.mu.Unlock()
	t.deliver(results...)
}

// Hold records that peer holds tracks completely (hello cached list, announce
// or completed), making it the most recent holder of each. Tracks beyond the
// peer's MaxTracksPerPeer are ignored; it returns how many were recorded.
func (t *Tracker) Hold(peer string, tracks ...string) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps, ok := t.peers[peer]
	if !ok {
		return 0, fmt.Errorf("hold %s: %w", peer, ErrUnknownPeer)
	}
	n := 0
	for _, track := range tracks {
		if t.setHolding(peer, ps, track, nil, 0) {
			n++
		}
	}
	return n, nil
}

// HoldPartial records the chunks of track that peer holds: have is a
// bitfield of nChunks bits (bit i is byte i/8, most significant bit first;
// the unused bits of the last byte are zero). A bitfield with every bit set
// makes the peer a complete holder; one with none removes the peer as a
// holder of the track. The caller checks nChunks against the manifest. It
// reports whether the holding was recorded (not beyond the peer's bounds,
// not a track the peer was dropped for).
func (t *Tracker) HoldPartial(peer, track string, have []byte, nChunks int) (bool, error) {
	if nChunks <= 0 || nChunks > t.cfg.MaxChunks || len(have) != (nChunks+7)/8 {
		return false, fmt.Errorf("hold %s of %s: %d bytes for %d chunks: %w", peer, track, len(have), nChunks, ErrBadBitfield)
	}
	if tail := nChunks % 8; tail != 0 && have[len(have)-1]&(0xff>>tail) != 0 {
		return false, fmt.Errorf("hold %s of %s: bits set past chunk %d: %w", peer, track, nChunks, ErrBadBitfield)
	}
	count := 0
	for _, b := range have {
		count += bits.OnesCount8(b)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ps, ok := t.peers[peer]
	if !ok {
		return false, fmt.Errorf("hold %s: %w", peer, ErrUnknownPeer)
	}
	switch count {
	case 0:
		if ts := t.tracks[track]; ts != nil {
			if i := ts.find(ps); i >= 0 && !ts.list[i].complete() {
				t.removeHolder(ts, ps)
			}
		}
		return false, nil
	case nChunks:
		return t.setHolding(peer, ps, track, nil, 0), nil
	}
	return t.setHolding(peer, ps, track, slices.Clone(have), count), nil
}

// setHolding lists peer as holder of track: complete when have is nil,
// else partial with count chunks. A complete holding is never downgraded to
// a partial one. t.mu must be held.
func (t *Tracker) setHolding(peer string, ps *peerState, track string, have []byte, count int) bool {
	if _, out := ps.dropped[track]; out || ps.up.cap <= 0 {
		return false
	}
	t.clock++
	ts := t.tracks[track]
	if i := ts.find(ps); i >= 0 {
		h := &ts.list[i]
		switch {
		case h.complete():
			// stays complete
		case have == nil:
			ps.partial = slices.DeleteFunc(ps.partial, func(p *trackState) bool { return p == ts })
			ps.complete++
			h.have, h.count = nil, 0
		default:
			h.have, h.count = have, count
		}
		h.stamp = t.clock
		return true
	}
	if have == nil && ps.complete >= t.cfg.MaxTracksPerPeer {
		return false
	}
	if have != nil && len(ps.partial) >= t.cfg.MaxPartialPerPeer {
		t.removeHolder(ps.partial[0], ps) // not ts: ps does not hold it
	}
	if ts == nil {
		ts = &trackState{id: track}
		t.tracks[track] = ts
	}
	if len(ts.list) >= t.cfg.HoldersPerTrack {
		i := leastUseful(ts.list)
		ts.list[i].ps.drop(ts, ts.list[i].complete())
		ts.list = removeAt(ts.list, i)
	}
	ts.list = append(ts.list, holder{id: peer, ps: ps, up: ps.up, have: have, count: count, stamp: t.clock})
	ps.holds[ts] = struct{}{}
	if have == nil {
		ps.complete++
	} else {
		ps.partial = append(ps.partial, ts)
	}
	return true
}

// find returns the index of ps's entry in the track's list, or -1 (nil ts:
// a track nobody holds). The list, at most HoldersPerTrack entries side by
// side, answers faster than a map of the peer's tracks. t.mu must be held.
func (ts *trackState) find(ps *peerState) int {
	if ts == nil {
		return -1
	}
	for i := range ts.list {
		if ts.list[i].ps == ps {
			return i
		}
	}
	return -1
}

// leastUseful picks the holder to forget when a track's list is full:
// fewest free upload slots, then fewest chunks held, then least recent. It
// returns the holder's index in list, which is not empty.
func leastUseful(list []holder) int {
	worst := -1
	var wFree, wCount int
	var wStamp uint64
	for i := range list {
		e := &list[i]
		free, count := e.up.free(), e.count
		if e.complete() {
			count = int(^uint(0) >> 1)
		}
		if worst < 0 || free < wFree || (free == wFree && (count < wCount || (count == wCount && e.stamp < wStamp))) {
			worst, wFree, wCount, wStamp = i, free, count, e.stamp
		}
	}
	return worst
}

// Holders returns the recorded holders of track, most recent first.
func (t *Tracker) Holders(track string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := slices.Clone(t.list(track))
	slices.SortFunc(list, func(a, b holder) int { return cmp.Compare(b.stamp, a.stamp) })
	ids := make([]string, len(list))
	for i, e := range list {
		ids[i] = e.id
	}
	return ids
}

// Holding returns what the tracker records of peer's holding of track: a
// copy of its bitfield for a partial holder, complete for a complete one,
// ok false when peer is not listed as a holder of track.
func (t *Tracker) Holding(peer, track string) (have []byte, complete, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps, found := t.peers[peer]
	if !found {
		return nil, false, false
	}
	ts := t.tracks[track]
	i := ts.find(ps)
	switch {
	case i < 0:
		return nil, false, false
	case ts.list[i].complete():
		return nil, true, true
	}
	return slices.Clone(ts.list[i].have), false, true
}

// Unhold removes peer as a holder of track, complete or partial (another
// hub's peer that no longer holds it).
func (t *Tracker) Unhold(peer, track string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ps, ts := t.peers[peer], t.tracks[track]; ps != nil && ts != nil {
		t.removeHolder(ts, ps)
	}
}

// removeHolder deletes the peer of ps from the track's holder list, and the
// track when that was its last holder. t.mu must be held.
func (t *Tracker) removeHolder(ts *trackState, ps *peerState) {
	i := ts.find(ps)
	if i < 0 {
		return
	}
	complete := ts.list[i].complete()
	ts.list = removeAt(ts.list, i)
	if len(ts.list) == 0 {
		delete(t.tracks, ts.id)
	}
	ps.drop(ts, complete)
}

// list returns track's holder list (nil when it has none). t.mu must be
// held.
func (t *Tracker) list(track string) []holder {
	if ts := t.tracks[track]; ts != nil {
		return ts.list
	}
	return nil
}

// removeAt deletes list[i], moving the last entry in its place.
func removeAt(list []holder, i int) []holder {
	list[i] = list[len(list)-1]
	list[len(list)-1] = holder{}
	return list[:len(list)-1]
}

// drop removes the track, which the peer held (completely or not), from
// its own records; the caller removes its entry from the track's list.
func (ps *peerState) drop(ts *trackState, complete bool) {
	if complete {
		ps.complete--
	} else {
		ps.partial = slices.DeleteFunc(ps.partial, func(p *trackState) bool { return p == ts })
	}
	delete(ps.holds, ts)
}

// Report records that reporter caught seeder misbehaving while serving track,
// for reason (one of the Report* constants; anything else counts as a
// timeout). The caller checks that the two were paired: the tracker only
// knows the peers. From now on seeder is not a candidate in reporter's
// lookups of track. When enough distinct reporters agree on a hash mismatch
// or a bad message (Config.DropAfterReports; timeouts never count), seeder
// is dropped as a holder of track and its later Hold calls for track are
// ignored; Report then returns true, once. A seeder that already left is not an error: there
// is nothing left to do.
func (t *Tracker) Report(reporter, seeder, track, reason string) (dropped bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rs, ok := t.peers[reporter]
	if !ok {
		return false, fmt.Errorf("report by %s: %w", reporter, ErrUnknownPeer)
	}
	if reporter == seeder {
		return false, nil
	}
	ex := exclusion{seeder, track}
	if _, dup := rs.excluded[ex]; !dup {
		if rs.excluded == nil {
			rs.excluded = make(map[exclusion]struct{})
		}
		if len(rs.excludedOrder) >= t.cfg.MaxExclusionsPerPeer {
			delete(rs.excluded, rs.excludedOrder[0])
			rs.excludedOrder = append(rs.excludedOrder[:0], rs.excludedOrder[1:]...)
		}
		rs.excluded[ex] = struct{}{}
		rs.excludedOrder = append(rs.excludedOrder, ex)
	}
	return t.accuse(reporter, seeder, track, reason), nil
}

// Accuse counts reporter's accusation of seeder for track, as Report does,
// for a reporter the tracker may not know: a peer of another hub, whose
// hub checked the pairing and keeps its exclusion. It returns true when
// this accusation drops seeder as a holder of track.
func (t *Tracker) Accuse(reporter, seeder, track, reason string) (dropped bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if reporter == seeder {
		return false
	}
	return t.accuse(reporter, seeder, track, reason)
}

// accuse counts one accusation. t.mu must be held.
func (t *Tracker) accuse(reporter, seeder, track, reason string) (dropped bool) {
	ss, ok := t.peers[seeder]
	if !ok {
		return false
	}
	if _, out := ss.dropped[track]; out {
		return false
	}
	if reason != ReportHashMismatch && reason != ReportBadMessage {
		return false // a timeout: only the reporter's exclusion
	}
	by := ss.accusations[track]
	if by == nil {
		if len(ss.accusations) >= t.cfg.MaxTracksPerPeer {
			return false // bounded; the reporter's exclusion still holds
		}
		if ss.accusations == nil {
			ss.accusations = make(map[string]map[string]struct{})
		}
		by = make(map[string]struct{})
		ss.accusations[track] = by
	}
	by[reporter] = struct{}{}
	if len(by) < t.cfg.DropAfterReports {
		return false
	}
	delete(ss.accusations, track)
	if ts := t.tracks[track]; ts != nil {
		t.removeHolder(ts, ss)
	}
	if ss.dropped == nil {
		ss.dropped = make(map[string]struct{})
	}
	if len(ss.dropped) < t.cfg.MaxTracksPerPeer {
		ss.dropped[track] = struct{}{}
	}
	return true
}

// Lookup starts a search for one seeder of track for requester; see
// LookupQuery.
func (t *Tracker) Lookup(requester, track string) (string, error) {
	return t.LookupQuery(requester, track, Query{})
}

// candidate is a holder ranked for a lookup.
type candidate struct {
	peer  string
	ps    *peerState
	score int // chunks held in the query's window
	free  int // free upload slots
	stamp uint64
}

// LookupQuery starts a search for up to q.Want seeders of track for
// requester and returns its id. The eligible holders (other than the
// requester, below their upload cap and their outstanding-ask bound, not
// reported by the requester for the track) are ranked by the chunks they
// hold in the query's window, then free upload slots, then recency; the best
// AskPerLookup are asked in parallel. The Result arrives through the
// callback, possibly before LookupQuery returns (when nobody is eligible:
// ReasonNoCandidates when no other peer holds the track, ReasonBusy when
// holders exist but none can serve now).
func (t *Tracker) LookupQuery(requester, track string, q Query) (string, error) {
	want := min(max(q.Want, 1), t.cfg.MaxWant)
	span := q.Span
	if span <= 0 {
		span = 32
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return "", ErrClosed
	}
	rs, ok := t.peers[requester]
	if !ok {
		t.mu.Unlock()
		return "", fmt.Errorf("lookup by %s: %w", requester, ErrUnknownPeer)
	}
	if _, dup := rs.lookups[track]; dup {
		t.mu.Unlock()
		return "", fmt.Errorf("lookup by %s of %s: %w", requester, track, ErrDuplicateLookup)
	}
	if len(rs.lookups) >= t.cfg.MaxPendingPerPeer {
		t.mu.Unlock()
		return "", fmt.Errorf("lookup by %s: %w", requester, ErrTooManyLookups)
	}
	t.nextID++
	l := &lookup{
		id:        "l-" + strconv.FormatUint(t.nextID, 10),
		requester: requester,
		track:     track,
		want:      want,
		started:   t.cfg.Clock.Now(),
	}
	holders := 0
	cands := t.scratch[:0]
	list := t.list(track)
	for i := range list {
		e := &list[i]
		if e.ps == rs || (!q.Partial && !e.complete()) {
			continue
		}
		holders++
		if e.up.free() <= 0 || e.ps.outstanding >= t.cfg.MaxOutstandingAsks {
			continue
		}
		if _, out := rs.excluded[exclusion{e.id, track}]; out || slices.Contains(q.Exclude, e.id) {
			continue
		}
		cands = append(cands, candidate{peer: e.id, ps: e.ps, score: e.within(q.From, span), free: e.up.free(), stamp: e.stamp})
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		switch {
		case a.score != b.score:
			return b.score - a.score
		case a.free != b.free:
			return b.free - a.free
		case a.stamp > b.stamp:
			return -1
		case a.stamp < b.stamp:
			return 1
		}
		return 0
	})
	t.scratch = cands
	cands = cands[:min(len(cands), t.cfg.AskPerLookup)]
	l.asked = make([]askedPeer, 0, len(cands))
	rs.lookups[track] = l
	t.lookups[l.id] = l
	if len(cands) == 0 {
		reason := ReasonBusy
		if holders == 0 {
			reason = ReasonNoCandidates
		}
		res := t.finishResult(l, reason)
		t.mu.Unlock()
		t.deliver(res)
		return l.id, nil
	}
	for _, c := range cands {
		c.ps.outstanding++
		c.ps.askedIn[l] = struct{}{}
		l.asked = append(l.asked, askedPeer{id: c.peer, ps: c.ps})
		l.unanswered++
	}
	id := l.id
	l.timer = t.cfg.Clock.AfterFunc(t.cfg.LookupTimeout, func() { t.expire(id) })
	ask := make([]string, len(cands)) // cands is t.scratch: reused once mu is released
	for i, c := range cands {
		ask[i] = c.peer
	}
	t.mu.Unlock()

	for _, p := range ask {
		if !t.asker.AskUpload(p, track, id, requester) {
			t.Reply(p, id, false)
		}
	}
	return id, nil
}

// Reply records a candidate's answer to lookup lookupID. Answers from peers
// that were not asked, repeated answers and late answers are ignored. A yes
// from a seeder that reached its upload cap meanwhile counts as no.
func (t *Tracker) Reply(peer, lookupID string, ok bool) {
	t.mu.Lock()
	l, found := t.lookups[lookupID]
	if !found {
		t.mu.Unlock()
		return
	}
	a := l.find(peer)
	if a == nil || a.answered {
		t.mu.Unlock()
		return
	}
	a.answered = true
	l.unanswered--
	ps := t.peers[peer]
	if ps != nil {
		ps.outstanding--
		delete(ps.askedIn, l)
	}
	if ok && ps != nil && ps.up.free() > 0 {
		ps.up.active++
		l.seeders = append(l.seeders, peer)
	}
	var res Result
	switch {
	case len(l.seeders) >= l.want || l.unanswered == 0:
		res = t.conclude(l)
	case len(l.seeders) == 1 && l.gather == nil:
		id := l.id
		l.gather = t.cfg.Clock.AfterFunc(t.cfg.GatherWindow, func() { t.expire(id) })
		fallthrough
	default:
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	t.deliver(res)
}

// ReleaseUpload frees one upload slot of seeder (upload done, pair ended, or
// pairing failed). It never goes below zero.
func (t *Tracker) ReleaseUpload(seeder string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ps, ok := t.peers[seeder]; ok && ps.up.active > 0 {
		ps.up.active--
	}
}

// Reserve takes one upload slot of seeder for an upload that another hub
// brokered, if the seeder is joined and below its upload cap; the caller
// frees it with ReleaseUpload. It reports whether a slot was taken.
func (t *Tracker) Reserve(seeder string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps, ok := t.peers[seeder]
	if !ok || ps.up.free() <= 0 {
		return false
	}
	ps.up.active++
	return true
}

// ActiveUploads returns how many upload slots of peer are in use.
func (t *Tracker) ActiveUploads(peer string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ps, ok := t.peers[peer]; ok {
		return ps.up.active
	}
	return 0
}

// Size returns the tracker's state: the holder entries kept over all
// tracks, and the tracks that have at least one.
func (t *Tracker) Size() (holders, tracks int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ts := range t.tracks {
		holders += len(ts.list)
	}
	return holders, len(t.tracks)
}

// Pending returns the number of lookups in progress.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.lookups)
}

// Close stops all timers and drops pending lookups without results; later
// Join and Lookup calls fail with ErrClosed.
func (t *Tracker) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for _, l := range t.lookups {
		t.finish(l)
	}
}

// expire ends lookup id at its timeout or at the end of its gather window.
func (t *Tracker) expire(id string) {
	t.mu.Lock()
	l, ok := t.lookups[id]
	if !ok {
		t.mu.Unlock()
		return
	}
	res := t.conclude(l)
	t.mu.Unlock()
	t.deliver(res)
}

// conclude ends l with the seeders it has, or with the reason none said
// yes. t.mu must be held.
func (t *Tracker) conclude(l *lookup) Result {
	switch {
	case len(l.seeders) > 0:
		return t.finishResult(l, "")
	case l.unanswered == 0:
		return t.finishResult(l, ReasonAllRefused)
	default:
		return t.finishResult(l, ReasonTimeout)
	}
}

// finish removes l and releases its counters. t.mu must be held.
func (t *Tracker) finish(l *lookup) {
	if l.timer != nil {
		l.timer.Stop()
	}
	if l.gather != nil {
		l.gather.Stop()
	}
	delete(t.lookups, l.id)
	if rs, ok := t.peers[l.requester]; ok && rs.lookups[l.track] == l {
		delete(rs.lookups, l.track)
	}
	for _, a := range l.asked {
		if t.peers[a.id] == a.ps { // not left meanwhile
			delete(a.ps.askedIn, l)
			if !a.answered {
				a.ps.outstanding--
			}
		}
	}
}

func (t *Tracker) finishResult(l *lookup, reason string) Result {
	t.finish(l)
	return Result{LookupID: l.id, Requester: l.requester, Track: l.track, Seeders: l.seeders, Reason: reason,
		Elapsed: t.cfg.Clock.Now().Sub(l.started)}
}

func (t *Tracker) deliver(results ...Result) {
	for _, r := range results {
		if t.onResult != nil {
			t.onResult(r)
		}
	}
}
