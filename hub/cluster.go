package hub

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ztream/ztream/cluster"
	"github.com/ztream/ztream/signaling"
	"github.com/ztream/ztream/tracker"
)

// clusterNode is the hub as the cluster sees it: the other hubs' peers go
// into the tracker next to this hub's, and what they relay reaches this
// hub's peers only within a pair the relaying hub is part of.
type clusterNode struct{ h *Hub }

// RemoteHold implements cluster.Node.
func (n clusterNode) RemoteHold(peer string, uploadCap int, track string, chunks int, bits []byte) {
	h := n.h
	if h.peer(peer) != nil {
		return // one of ours: never edited from outside
	}
	if err := h.tracker.Join(peer, uploadCap); err != nil && !errors.Is(err, tracker.ErrPeerExists) {
		return
	}
	var err error
	if bits == nil {
		_, err = h.tracker.Hold(peer, track)
	} else {
		_, err = h.tracker.HoldPartial(peer, track, bits, chunks)
	}
	if err != nil {
		h.log.Debug("remote holding", "peer", peer, "track", track, "err", err)
	}
	// Its hub may have died meanwhile (RemoteLeave ran before the Join).
	if _, known := h.cluster.HubOf(peer); !known {
		h.tracker.Leave(peer)
	}
}

// RemoteUnhold implements cluster.Node.
func (n clusterNode) RemoteUnhold(peer, track string) {
	if n.h.peer(peer) == nil {
		n.h.tracker.Unhold(peer, track)
	}
}

// RemoteLeave implements cluster.Node.
func (n clusterNode) RemoteLeave(peer string) {
	if n.h.peer(peer) == nil {
		n.h.tracker.Leave(peer)
	}
}

// HubDown implements cluster.Node: the pairs with the dead hub's peers end
// (their members here get unpair peer_left). The hub is told too, in case
// it was only silent for a while: its half of each pair ends as well.
func (n clusterNode) HubDown(hub string) {
	h := n.h
	for _, pr := range h.pairs.removeHub(hub) {
		if pr.uploading {
			h.tracker.ReleaseUpload(pr.seeder)
		}
		local := pr.other(pr.remote)
		h.tellOther(pr, pr.remote, signaling.ReasonPeerLeft)
		h.tellOther(pr, local, signaling.ReasonPeerLeft)
	}
}

// Ask implements cluster.Node: another hub's lookup asks one of this hub's
// peers. A seeder at its upload cap is not asked.
func (n clusterNode) Ask(m cluster.Message, reply func(bool)) {
	h := n.h
	s := h.peer(m.Seeder)
	if s == nil || h.tracker.ActiveUploads(s.id) >= s.uploadCap {
		reply(false)
		return
	}
	id, ok := h.asks.add(m, reply)
	if !ok {
		reply(false)
		return
	}
	if !s.send(signaling.CanUpload{Track: m.Track, LookupID: id}) {
		h.asks.answer(s.id, id, false)
	}
}

// Pair implements cluster.Node: the hub of m.Requester pairs it with this
// hub's seeder, which must have said yes to that hub's ask for the lookup.
// The seeder's upload slot is taken here, where its cap is known.
func (n clusterNode) Pair(m cluster.Message) bool {
	h := n.h
	if !h.asks.grant(m) {
		return false
	}
	h.mu.Lock()
	seed := h.peers[m.Seeder]
	var pr *pair
	ok := seed != nil && h.tracker.Reserve(m.Seeder)
	if ok {
		if pr, ok = h.pairs.addRemote(m.Pair, m.Track, m.Seeder, m.Requester, m.From); !ok {
			h.tracker.ReleaseUpload(m.Seeder)
		}
	}
	h.mu.Unlock()
	if !ok {
		return false
	}
	seed.send(signaling.Paired{PairID: pr.id, Peer: m.Requester, Track: pr.track, Role: signaling.RoleSeeder})
	// The grant needs the track's size: a store read on a cache miss, not
	// for the NATS goroutine that delivers every hub's messages.
	h.goCrossing(func() {
		if shape, err := h.shapes.get(h.ctx, m.Track); err == nil {
			seed.peerMetrics.GrantUpload(shape.size)
		}
	})
	return true
}

// Deliver implements cluster.Node: a signal, unpair or upload_done from the
// other member of a pair, through its hub, or a report of one of its peers
// against ours.
func (n clusterNode) Deliver(m cluster.Message) {
	h := n.h
	switch m.Kind {
	case cluster.KindSignal:
		pr, outcome := h.pairs.relay(m.Pair, m.Peer, m.To, m.From)
		if outcome != relayOK {
			h.metrics.SignalingRejected(signaling.CodeNotPaired)
			if outcome == relayNotPaired {
				// The pair is over here: its other end hears so.
				h.cluster.Send(m.From, cluster.Message{Kind: cluster.KindUnpair, Pair: m.Pair, Peer: m.To, Reason: signaling.ReasonPeerLeft})
			}
			return
		}
		to := h.peer(pr.other(m.Peer))
		s, err := signaling.Decode(m.Signal)
		if to == nil || err != nil {
			return
		}
		sig := s.(signaling.Signal)
		sig.From, sig.To, sig.PairID = m.Peer, to.id, pr.id
		to.send(sig)
	case cluster.KindUnpair:
		pr, release, ok := h.pairs.remove(m.Pair, m.Peer, m.From)
		if !ok {
			return
		}
		if release {
			h.tracker.ReleaseUpload(pr.seeder)
		}
		if o := h.peer(pr.other(m.Peer)); o != nil {
			o.send(signaling.Unpair{PairID: pr.id, Reason: m.Reason})
		}
	case cluster.KindUploadDone:
		if pr, release, ok := h.pairs.uploadDone(m.Pair, m.Seeder, m.From); ok && release {
			h.tracker.ReleaseUpload(pr.seeder)
		}
	case cluster.KindReport:
		h.remoteReport(m)
	}
}

// remoteAskPrefix starts the lookup ids of asks relayed from other hubs
// (the tracker's own start with "l-").
const remoteAskPrefix = "r-"

// maxRemoteAsks bounds the relayed asks waiting for a peer's answer, and
// the yeses waiting for their pairing.
const maxRemoteAsks = 4096

// remoteAsks owns the can_upload asks other hubs relayed to this hub's
// peers: those waiting for the peer's upload_reply, and the yeses given,
// which a pairing must match (a hub cannot pair a peer that did not say yes).
type remoteAsks struct {
	timeout time.Duration

	mu      sync.Mutex
	closed  bool
	next    uint64
	waiting map[string]*relayedAsk // local lookup id → ask
	granted map[grantKey]grant
}

type relayedAsk struct {
	m     cluster.Message
	reply func(bool)
	timer *time.Timer
}

type grantKey struct{ hub, lookup, seeder string }

type grant struct {
	requester, track string
	until            time.Time
}

func newRemoteAsks(timeout time.Duration) *remoteAsks {
	return &remoteAsks{timeout: timeout, waiting: make(map[string]*relayedAsk), granted: make(map[grantKey]grant)}
}

// add records an ask and returns the lookup id its seeder gets; it fails
// when too many wait. An ask unanswered within the timeout gets a no.
func (r *remoteAsks) add(m cluster.Message, reply func(bool)) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.waiting) >= maxRemoteAsks {
		return "", false
	}
	r.next++
	id := remoteAskPrefix + strconv.FormatUint(r.next, 10)
	seeder := m.Seeder
	r.waiting[id] = &relayedAsk{m: m, reply: reply, timer: time.AfterFunc(r.timeout, func() { r.answer(seeder, id, false) })}
	return id, true
}

// isRemoteAsk reports whether a lookup id is one of a relayed ask.
func isRemoteAsk(lookupID string) bool { return strings.HasPrefix(lookupID, remoteAskPrefix) }

// answer passes seeder's answer to ask id back to the asking hub; a yes is
// kept as a grant until the pairing comes (or twice the timeout passes).
func (r *remoteAsks) answer(seeder, id string, ok bool) {
	r.mu.Lock()
	a := r.waiting[id]
	if a == nil || a.m.Seeder != seeder {
		r.mu.Unlock()
		return
	}
	delete(r.waiting, id)
	a.timer.Stop()
	now := time.Now()
	if ok {
		for k, g := range r.granted {
			if now.After(g.until) {
				delete(r.granted, k)
			}
		}
		if len(r.granted) >= maxRemoteAsks {
			ok = false
		} else {
			r.granted[grantKey{a.m.From, a.m.Lookup, seeder}] = grant{requester: a.m.Requester, track: a.m.Track, until: now.Add(2 * r.timeout)}
		}
	}
	r.mu.Unlock()
	a.reply(ok)
}

// grant consumes the yes a pairing request refers to; it reports whether
// there was one for the same requester and track.
func (r *remoteAsks) grant(m cluster.Message) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := grantKey{m.From, m.Lookup, m.Seeder}
	g, ok := r.granted[k]
	delete(r.granted, k)
	return ok && g.requester == m.Requester && g.track == m.Track && time.Now().Before(g.until)
}

// close answers no to every waiting ask.
func (r *remoteAsks) close() {
	r.mu.Lock()
	r.closed = true
	waiting := r.waiting
	r.waiting = make(map[string]*relayedAsk)
	r.mu.Unlock()
	for _, a := range waiting {
		a.timer.Stop()
		a.reply(false)
	}
}
