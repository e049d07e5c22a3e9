// Package tracker is the hub's peer tracker as pure logic: per track it keeps
// the most recent online peers that hold it, and it answers a lookup by asking
// candidate seeders in parallel (through an Asker) and taking the first yes,
// within a timeout. It also counts each seeder's active uploads so that no
// seeder is paired beyond its upload cap. Every map it keeps is bounded by
// the number of joined peers times a per-peer limit.
package tracker

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Reasons reported in Result.Reason when no seeder was found (the same
// strings as the signaling package's Reason constants).
const (
	ReasonNoCandidates = "no_candidates"
	ReasonAllRefused   = "all_refused"
	ReasonTimeout      = "timeout"
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
)

// Asker delivers a can_upload question to a candidate seeder. It must not
// block; it returns false when the question could not be queued, which the
// tracker treats as a no.
type Asker interface {
	AskUpload(peer, track, lookupID string) bool
}

// Result ends one lookup. Seeder is empty when none was found; Reason then
// says why. On success the seeder's active upload count has already been
// incremented: the caller must call ReleaseUpload when the upload ends (or
// at once if it cannot pair the two peers).
type Result struct {
	LookupID  string
	Requester string
	Track     string
	Seeder    string
	Reason    string
	// Elapsed is the time from Lookup to the result.
	Elapsed time.Duration
}

// Config bounds the tracker. Zero fields take the defaults shown.
type Config struct {
	// HoldersPerTrack is how many recent holders are kept per track (10).
	HoldersPerTrack int
	// MaxTracksPerPeer bounds the tracks one peer is listed for (256).
	MaxTracksPerPeer int
	// MaxPendingPerPeer bounds one requester's pending lookups (4).
	MaxPendingPerPeer int
	// MaxOutstandingAsks skips candidates with this many unanswered asks (16).
	MaxOutstandingAsks int
	// LookupTimeout ends a lookup nobody said yes to (1.5 s).
	LookupTimeout time.Duration
	// MaxExclusionsPerPeer bounds the (seeder, track) couples one peer's
	// reports exclude from its lookups; the oldest is forgotten first (64).
	MaxExclusionsPerPeer int
	// DropAfterReports drops a seeder as holder of a track once this many
	// distinct peers reported it for a hash mismatch or a bad message (2).
	// Timeouts never drop a seeder for everyone: an overloaded machine or a
	// bad network path makes honest seeders time out too (a 200-peer load
	// run on 2 cores had hundreds of them); they only exclude the seeder
	// from the reporter's lookups.
	DropAfterReports int
}

func (c Config) withDefaults() Config {
	if c.HoldersPerTrack <= 0 {
		c.HoldersPerTrack = 10
	}
	if c.MaxTracksPerPeer <= 0 {
		c.MaxTracksPerPeer = 256
	}
	if c.MaxPendingPerPeer <= 0 {
		c.MaxPendingPerPeer = 4
	}
	if c.MaxOutstandingAsks <= 0 {
		c.MaxOutstandingAsks = 16
	}
	if c.LookupTimeout <= 0 {
		c.LookupTimeout = 1500 * time.Millisecond
	}
	if c.MaxExclusionsPerPeer <= 0 {
		c.MaxExclusionsPerPeer = 64
	}
	if c.DropAfterReports <= 0 {
		c.DropAfterReports = 2
	}
	return c
}

type peerState struct {
	uploadCap   int
	active      int                 // uploads paired and not released
	outstanding int                 // can_upload asks not answered
	pending     int                 // lookups this peer requested, pending
	tracks      map[string]struct{} // tracks whose holder list has this peer

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

// exclusion is a seeder a peer reported for one track.
type exclusion struct{ seeder, track string }

type lookup struct {
	id, requester, track string
	asked                map[string]bool // candidate → answered
	unanswered           int
	timer                *time.Timer
	started              time.Time
}

// Tracker is safe for concurrent use. Result callbacks run outside its lock,
// possibly on the goroutine of the call that ended the lookup (Lookup, Reply,
// Leave) or on a timer goroutine.
type Tracker struct {
	cfg      Config
	asker    Asker
	onResult func(Result)

	mu      sync.Mutex
	closed  bool
	nextID  uint64
	peers   map[string]*peerState
	holders map[string][]string // track → peer ids, most recent first
	lookups map[string]*lookup
}

// New returns a tracker asking candidates through asker and reporting every
// finished lookup (except those of a requester that left) to onResult.
func New(cfg Config, asker Asker, onResult func(Result)) *Tracker {
	return &Tracker{
		cfg:      cfg.withDefaults(),
		asker:    asker,
		onResult: onResult,
		peers:    make(map[string]*peerState),
		holders:  make(map[string][]string),
		lookups:  make(map[string]*lookup),
	}
}

// Join registers an online peer with its upload cap (at least 1 is assumed
// only if uploadCap > 0; a cap of 0 means the peer never seeds).
func (t *Tracker) Join(peer string, uploadCap int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	if _, ok := t.peers[peer]; ok {
		return fmt.Errorf("join %s: %w", peer, ErrPeerExists)
	}
	t.peers[peer] = &peerState{uploadCap: uploadCap, tracks: make(map[string]struct{})}
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
	for track := range ps.tracks {
		t.removeHolder(track, peer)
	}
	delete(t.peers, peer)
	for _, l := range t.lookups {
		if l.requester == peer {
			t.finish(l)
			continue
		}
		if answered, asked := l.asked[peer]; asked && !answered {
			l.asked[peer] = true
			l.unanswered--
			if l.unanswered == 0 {
				results = append(results, t.finishResult(l, "", ReasonAllRefused))
			}
		}
	}
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
		if _, out := ps.dropped[track]; out {
			continue
		}
		if _, listed := ps.tracks[track]; !listed && len(ps.tracks) >= t.cfg.MaxTracksPerPeer {
			continue
		}
		t.removeHolder(track, peer)
		list := t.holders[track]
		if len(list) >= t.cfg.HoldersPerTrack {
			evicted := list[len(list)-1]
			list = list[:len(list)-1]
			if eps, ok := t.peers[evicted]; ok {
				delete(eps.tracks, track)
			}
		}
		list = append(list, "")
		copy(list[1:], list)
		list[0] = peer
		t.holders[track] = list
		ps.tracks[track] = struct{}{}
		n++
	}
	return n, nil
}

// Holders returns the recorded holders of track, most recent first.
func (t *Tracker) Holders(track string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.holders[track]...)
}

// removeHolder deletes peer from track's holder list. t.mu must be held.
func (t *Tracker) removeHolder(track, peer string) {
	list := t.holders[track]
	for i, p := range list {
		if p == peer {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(t.holders, track)
	} else {
		t.holders[track] = list
	}
	if ps, ok := t.peers[peer]; ok {
		delete(ps.tracks, track)
	}
}

// Report records that reporter caught seeder misbehaving while serving track,
// for reason (one of the Report* constants; anything else counts as a
// timeout). The caller checks that the two were paired for track: the
// tracker only knows the peers. From now on seeder is not a candidate in
// reporter's lookups of track. When enough distinct reporters agree on a
// hash mismatch or a bad message (Config.DropAfterReports; timeouts never
// count), seeder is dropped as a holder of track and its later Hold calls for track are ignored; Report
// then returns true, once. A seeder that already left is not an error: there
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
	ss, ok := t.peers[seeder]
	if !ok {
		return false, nil
	}
	if _, out := ss.dropped[track]; out {
		return false, nil
	}
	if reason != ReportHashMismatch && reason != ReportBadMessage {
		return false, nil // a timeout: only the reporter's exclusion
	}
	by := ss.accusations[track]
	if by == nil {
		if len(ss.accusations) >= t.cfg.MaxTracksPerPeer {
			return false, nil // bounded; the reporter's exclusion still holds
		}
		if ss.accusations == nil {
			ss.accusations = make(map[string]map[string]struct{})
		}
		by = make(map[string]struct{})
		ss.accusations[track] = by
	}
	by[reporter] = struct{}{}
	if len(by) < t.cfg.DropAfterReports {
		return false, nil
	}
	delete(ss.accusations, track)
	t.removeHolder(track, seeder)
	if ss.dropped == nil {
		ss.dropped = make(map[string]struct{})
	}
	if len(ss.dropped) < t.cfg.MaxTracksPerPeer {
		ss.dropped[track] = struct{}{}
	}
	return true, nil
}

// Lookup starts a search for a seeder of track for requester and returns its
// id. The candidates (recent holders other than the requester, below their
// upload cap and their outstanding-ask bound) are asked in parallel. The
// Result arrives through the callback, possibly before Lookup returns (when
// there is no candidate).
func (t *Tracker) Lookup(requester, track string) (string, error) {
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
	if rs.pending >= t.cfg.MaxPendingPerPeer {
		t.mu.Unlock()
		return "", fmt.Errorf("lookup by %s: %w", requester, ErrTooManyLookups)
	}
	for _, l := range t.lookups {
		if l.requester == requester && l.track == track {
			t.mu.Unlock()
			return "", fmt.Errorf("lookup by %s of %s: %w", requester, track, ErrDuplicateLookup)
		}
	}
	t.nextID++
	l := &lookup{
		id:        "l-" + strconv.FormatUint(t.nextID, 10),
		requester: requester,
		track:     track,
		asked:     make(map[string]bool),
		started:   time.Now(),
	}
	var cands []string
	for _, p := range t.holders[track] {
		ps := t.peers[p]
		if p == requester || ps == nil || ps.active >= ps.uploadCap || ps.outstanding >= t.cfg.MaxOutstandingAsks {
			continue
		}
		if _, out := rs.excluded[exclusion{p, track}]; out {
			continue
		}
		ps.outstanding++
		l.asked[p] = false
		l.unanswered++
		cands = append(cands, p)
	}
	rs.pending++
	t.lookups[l.id] = l
	if len(cands) == 0 {
		res := t.finishResult(l, "", ReasonNoCandidates)
		t.mu.Unlock()
		t.deliver(res)
		return l.id, nil
	}
	id := l.id
	l.timer = time.AfterFunc(t.cfg.LookupTimeout, func() { t.expire(id) })
	t.mu.Unlock()

	for _, p := range cands {
		if !t.asker.AskUpload(p, track, id) {
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
	answered, asked := l.asked[peer]
	if !asked || answered {
		t.mu.Unlock()
		return
	}
	l.asked[peer] = true
	l.unanswered--
	ps := t.peers[peer]
	if ps != nil {
		ps.outstanding--
	}
	var res Result
	switch {
	case ok && ps != nil && ps.active < ps.uploadCap:
		ps.active++
		res = t.finishResult(l, peer, "")
	case l.unanswered == 0:
		res = t.finishResult(l, "", ReasonAllRefused)
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
	if ps, ok := t.peers[seeder]; ok && ps.active > 0 {
		ps.active--
	}
}

// ActiveUploads returns how many upload slots of peer are in use.
func (t *Tracker) ActiveUploads(peer string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ps, ok := t.peers[peer]; ok {
		return ps.active
	}
	return 0
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

func (t *Tracker) expire(id string) {
	t.mu.Lock()
	l, ok := t.lookups[id]
	if !ok {
		t.mu.Unlock()
		return
	}
	res := t.finishResult(l, "", ReasonTimeout)
	t.mu.Unlock()
	t.deliver(res)
}

// finish removes l and releases its counters. t.mu must be held.
func (t *Tracker) finish(l *lookup) {
	if l.timer != nil {
		l.timer.Stop()
	}
	delete(t.lookups, l.id)
	if rs, ok := t.peers[l.requester]; ok {
		rs.pending--
	}
	for p, answered := range l.asked {
		if ps, ok := t.peers[p]; ok && !answered {
			ps.outstanding--
		}
	}
}

func (t *Tracker) finishResult(l *lookup, seeder, reason string) Result {
	t.finish(l)
	return Result{LookupID: l.id, Requester: l.requester, Track: l.track, Seeder: seeder, Reason: reason,
		Elapsed: time.Since(l.started)}
}

func (t *Tracker) deliver(results ...Result) {
	for _, r := range results {
		if t.onResult != nil {
			t.onResult(r)
		}
	}
}
