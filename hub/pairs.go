package hub

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ztream/ztream/signaling"
)

// maxRecentPartners bounds the recent pairs whose other peer a peer may
// report.
const maxRecentPartners = 32

// recentPartnerWindow is how long after a pairing either peer may report
// the other.
const recentPartnerWindow = 10 * time.Minute

// pair is a leecher/seeder couple the tracker brokered.
type pair struct {
	id, track       string
	seeder, leecher string
	// remote is the member connected to another hub, hub that hub; both
	// empty when both members are this hub's peers.
	remote, hub string
	// uploading is true while the seeder's upload slot is held.
	uploading bool
	// signals counts the messages relayed for the pair.
	signals int
}

func (p *pair) other(id string) string {
	if id == p.seeder {
		return p.leecher
	}
	return p.seeder
}

// recentPartner is the other peer of one of a peer's pairs, and the hub it
// is on ("" for this hub).
type recentPartner struct {
	peer string
	hub  string
	at   time.Time
}

// pairTable owns the hub's pairs: who is paired with whom for which track,
// the relay budget of each pair, the seeder's upload slot it holds, and each
// peer's recent partners (the peers it may report). The hub asks it; nothing
// else edits pairs. It is safe for concurrent use; its methods never call
// out, so it may be used with or without the hub's lock held.
type pairTable struct {
	maxPairs int
	// prefix starts every pair id this table makes: unique per hub run, so
	// that pairs made by different hubs never share an id.
	prefix string

	mu       sync.Mutex
	next     uint64
	pairs    map[string]*pair
	byPeer   map[string]map[string]*pair // peer id → its pairs by id
	partners map[string][]recentPartner  // peer id → its recent partners, oldest first
}

func newPairTable(maxPairs int, prefix string) *pairTable {
	return &pairTable{
		maxPairs: maxPairs,
		prefix:   prefix,
		pairs:    make(map[string]*pair),
		byPeer:   make(map[string]map[string]*pair),
		partners: make(map[string][]recentPartner),
	}
}

// full reports whether peer is in maxPairs pairs.
func (t *pairTable) full(peer string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byPeer[peer]) >= t.maxPairs
}

// add pairs seeder with leecher for track, the seeder's upload slot held;
// it fails when either is in maxPairs pairs already. With remote set, that
// member is a peer of hub.
func (t *pairTable) add(track, seeder, leecher, remote, hub string) (*pair, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	return t.insert(t.prefix+strconv.FormatUint(t.next, 10), track, seeder, leecher, remote, hub)
}

// addRemote records pair id that hub made between its peer leecher and
// this hub's seeder; it fails on an id in use or of this table's own
// making, or a full member.
func (t *pairTable) addRemote(id, track, seeder, leecher, hub string) (*pair, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pairs[id] != nil || strings.HasPrefix(id, t.prefix) {
		return nil, false
	}
	return t.insert(id, track, seeder, leecher, leecher, hub)
}

// exists reports whether pair id is in the table.
func (t *pairTable) exists(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pairs[id] != nil
}

// insert adds a pair. t.mu must be held.
func (t *pairTable) insert(id, track, seeder, leecher, remote, hub string) (*pair, bool) {
	if len(t.byPeer[seeder]) >= t.maxPairs || len(t.byPeer[leecher]) >= t.maxPairs {
		return nil, false
	}
	pr := &pair{id: id, track: track, seeder: seeder, leecher: leecher, remote: remote, hub: hub, uploading: true}
	t.pairs[pr.id] = pr
	now := time.Now()
	for _, m := range [][2]string{{seeder, leecher}, {leecher, seeder}} {
		if m[0] == remote {
			continue // its hub keeps its pairs and partners
		}
		if t.byPeer[m[0]] == nil {
			t.byPeer[m[0]] = make(map[string]*pair)
		}
		t.byPeer[m[0]][pr.id] = pr
		ps := t.partners[m[0]]
		if len(ps) >= maxRecentPartners {
			ps = append(ps[:0], ps[1:]...)
		}
		partnerHub := ""
		if m[1] == remote {
			partnerHub = hub
		}
		t.partners[m[0]] = append(ps, recentPartner{peer: m[1], hub: partnerHub, at: now})
	}
	return pr, true
}

// drop removes pr. t.mu must be held.
func (t *pairTable) drop(pr *pair) {
	delete(t.pairs, pr.id)
	for _, m := range []string{pr.seeder, pr.leecher} {
		delete(t.byPeer[m], pr.id)
		if len(t.byPeer[m]) == 0 {
			delete(t.byPeer, m)
		}
	}
}

// remove ends pair id at the request of its member by, a peer of hub
// (empty: of this hub). It returns the pair and whether the seeder's upload
// slot was still held (to release), or false when by is not that member of
// a pair id.
func (t *pairTable) remove(id, by, hub string) (pr *pair, release, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pr = t.pairs[id]
	if pr == nil || !pr.member(by, hub) {
		return nil, false, false
	}
	t.drop(pr)
	return pr, pr.uploading, true
}

// member reports whether id is a member of the pair connected to hub
// (empty: this hub).
func (p *pair) member(id, hub string) bool {
	if p.seeder != id && p.leecher != id {
		return false
	}
	if hub == "" {
		return id != p.remote
	}
	return id == p.remote && hub == p.hub
}

// removeHub ends every pair with a peer of hub; it returns them.
func (t *pairTable) removeHub(hub string) []*pair {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*pair
	for _, pr := range t.pairs {
		if pr.hub == hub {
			out = append(out, pr)
		}
	}
	for _, pr := range out {
		t.drop(pr)
	}
	return out
}

// removePeer ends every pair of a departed peer and forgets its partners;
// it returns the pairs ended.
func (t *pairTable) removePeer(peer string) []*pair {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*pair
	for _, pr := range t.byPeer[peer] {
		out = append(out, pr)
	}
	for _, pr := range out {
		t.drop(pr)
	}
	delete(t.partners, peer)
	return out
}

// uploadDone frees the upload slot of pair id for its seeder, a peer of hub
// (empty: this hub). It returns the pair and whether a slot was held (to
// release), and false in ok when seeder is not the pair's seeder.
func (t *pairTable) uploadDone(id, seeder, hub string) (pr *pair, release, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pr = t.pairs[id]
	if pr == nil || pr.seeder != seeder || !pr.member(seeder, hub) {
		return nil, false, false
	}
	release, pr.uploading = pr.uploading, false
	return pr, release, true
}

// Outcomes of pairTable.relay.
const (
	relayOK = iota
	relayNotPaired
	relayLimited
)

// relay checks that from, a peer of hub (empty: this hub), may send a
// signal to to on pair id, and counts it against the pair's relay budget.
// It returns the pair and the outcome.
func (t *pairTable) relay(id, from, to, hub string) (*pair, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pr := t.pairs[id]
	switch {
	case pr == nil || !pr.member(from, hub) || pr.other(from) != to:
		return nil, relayNotPaired
	case pr.signals >= signaling.MaxPairSignals:
		return pr, relayLimited
	}
	pr.signals++
	return pr, relayOK
}

// partnersOf returns the peers peer is in a pair with now.
func (t *pairTable) partnersOf(peer string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, pr := range t.byPeer[peer] {
		out = append(out, pr.other(peer))
	}
	return out
}

// pairedWith reports whether peer was paired with other within
// recentPartnerWindow (in either role, for any track), and the hub other
// was on then ("" for this hub).
func (t *pairTable) pairedWith(peer, other string) (hub string, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.partners[peer]) - 1; i >= 0; i-- {
		r := t.partners[peer][i]
		if r.peer == other && time.Since(r.at) < recentPartnerWindow {
			return r.hub, true
		}
	}
	return "", false
}
