package cluster

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// localHoldings owns what this hub's peers hold, as bucket entries, and
// which entries changed since the last flush. The hub's peer handlers write
// it; the session loop flushes it.
type localHoldings struct {
	hub string

	mu      sync.Mutex
	entries map[string][]byte            // key → value
	byPeer  map[string]map[string]string // peer → track → key
	dirty   map[string]struct{}          // keys to put, or to delete when not in entries
}

func newLocalHoldings(hub string) *localHoldings {
	return &localHoldings{hub: hub, entries: make(map[string][]byte), byPeer: make(map[string]map[string]string), dirty: make(map[string]struct{})}
}

// maxTracksPerPeer bounds one peer's entries (the tracker's bound on complete
// holdings and partial ones).
const maxTracksPerPeer = 256 + 8

func (l *localHoldings) put(peer, track string, value []byte) {
	key := holdingKey(l.hub, peer, track)
	l.mu.Lock()
	defer l.mu.Unlock()
	tracks := l.byPeer[peer]
	if tracks == nil {
		tracks = make(map[string]string)
		l.byPeer[peer] = tracks
	}
	if _, ok := tracks[track]; !ok && len(tracks) >= maxTracksPerPeer {
		return
	}
	tracks[track] = key
	l.entries[key] = value
	l.dirty[key] = struct{}{}
}

func (l *localHoldings) remove(peer, track string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key, ok := l.byPeer[peer][track]
	if !ok {
		return
	}
	delete(l.byPeer[peer], track)
	if len(l.byPeer[peer]) == 0 {
		delete(l.byPeer, peer)
	}
	delete(l.entries, key)
	l.dirty[key] = struct{}{}
}

func (l *localHoldings) leave(peer string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, key := range l.byPeer[peer] {
		delete(l.entries, key)
		l.dirty[key] = struct{}{}
	}
	delete(l.byPeer, peer)
}

// backs reports whether key is a live entry.
func (l *localHoldings) backs(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.entries[key]
	return ok
}

// keys returns the live entries' keys.
func (l *localHoldings) keys() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.entries))
	for k := range l.entries {
		out = append(out, k)
	}
	return out
}

func (l *localHoldings) markAllDirty() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.entries {
		l.dirty[k] = struct{}{}
	}
}

// flush writes the changed entries; one that fails stays changed for the
// next flush, and the flush stops there.
func (l *localHoldings) flush(ctx context.Context, kv jetstream.KeyValue) error {
	l.mu.Lock()
	type op struct {
		key   string
		value []byte // nil: delete
	}
	ops := make([]op, 0, len(l.dirty))
	for k := range l.dirty {
		ops = append(ops, op{k, l.entries[k]})
	}
	clear(l.dirty)
	l.mu.Unlock()
	for i, o := range ops {
		var err error
		octx, cancel := context.WithTimeout(ctx, time.Second)
		if o.value == nil {
			err = kv.Delete(octx, o.key)
		} else {
			_, err = kv.Put(octx, o.key, o.value)
		}
		cancel()
		if err != nil {
			l.mu.Lock()
			for _, rest := range ops[i:] {
				l.dirty[rest.key] = struct{}{}
			}
			l.mu.Unlock()
			return fmt.Errorf("cluster: %s: %w", o.key, err)
		}
	}
	return nil
}

// remoteView owns this hub's view of the others: the hubs alive (last
// heartbeat) and the peers of theirs that hold something. The session loop
// writes it; message handlers and the hub read it.
type remoteView struct {
	self     string
	maxPeers int

	mu    sync.RWMutex
	hubs  map[string]hubBeat // live hub → its last heartbeat
	peers map[string]*remotePeer
	byHub map[string]map[string]struct{}
	// sync is the current session's mark: entries seen since beginSync.
	sync uint64
}

type remotePeer struct {
	hub    string
	tracks map[string]uint64 // track → mark of the session that saw it
}

func newRemoteView(self string, maxPeers int) *remoteView {
	return &remoteView{self: self, maxPeers: maxPeers, hubs: make(map[string]hubBeat), peers: make(map[string]*remotePeer), byHub: make(map[string]map[string]struct{})}
}

// hubBeat is a hub's last heartbeat: when, and from which run of it.
type hubBeat struct {
	at  time.Time
	run string
}

// heartbeat records run of hub alive at. It reports whether the hub is
// new, and whether it is known from another run (it restarted: what the
// previous run had is over).
func (v *remoteView) heartbeat(hub, run string, at time.Time) (isNew, restarted bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	last, known := v.hubs[hub]
	if known && last.run != run {
		return false, true
	}
	if !known || at.After(last.at) {
		v.hubs[hub] = hubBeat{at: at, run: run}
	}
	return !known, false
}

func (v *remoteView) known(hub string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	_, ok := v.hubs[hub]
	return ok
}

// alive reports whether hub is a live hub other than this one.
func (v *remoteView) alive(hub string) bool { return hub != v.self && v.known(hub) }

// expire returns the hubs whose last heartbeat is older than timeout.
func (v *remoteView) expire(now time.Time, timeout time.Duration) []string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []string
	for hub, b := range v.hubs {
		if now.Sub(b.at) > timeout {
			out = append(out, hub)
		}
	}
	return out
}

// dropHub forgets hub and returns its peers.
func (v *remoteView) dropHub(hub string) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.hubs, hub)
	var out []string
	for p := range v.byHub[hub] {
		out = append(out, p)
		delete(v.peers, p)
	}
	delete(v.byHub, hub)
	return out
}

// hold records that peer of hub holds track; it reports whether to pass it
// on (the hub is alive and the peer within bounds).
func (v *remoteView) hold(hub, peer, track string, mark uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.hubs[hub]; !ok {
		return false
	}
	rp := v.peers[peer]
	switch {
	case rp == nil && len(v.peers) >= v.maxPeers:
		return false
	case rp == nil:
		rp = &remotePeer{hub: hub, tracks: make(map[string]uint64)}
		v.peers[peer] = rp
		if v.byHub[hub] == nil {
			v.byHub[hub] = make(map[string]struct{})
		}
		v.byHub[hub][peer] = struct{}{}
	case rp.hub != hub:
		return false // a peer id claimed by two hubs: the first keeps it
	case len(rp.tracks) >= maxTracksPerPeer && rp.tracks[track] == 0:
		return false
	}
	rp.tracks[track] = mark
	return true
}

// unhold forgets that peer of hub holds track; it reports whether the
// peer holds nothing now (and is forgotten).
func (v *remoteView) unhold(hub, peer, track string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	rp := v.peers[peer]
	if rp == nil || rp.hub != hub {
		return false
	}
	delete(rp.tracks, track)
	if len(rp.tracks) > 0 {
		return false
	}
	v.forget(peer, rp)
	return true
}

func (v *remoteView) forget(peer string, rp *remotePeer) {
	delete(v.peers, peer)
	delete(v.byHub[rp.hub], peer)
	if len(v.byHub[rp.hub]) == 0 {
		delete(v.byHub, rp.hub)
	}
}

// beginSync starts a new session's mark.
func (v *remoteView) beginSync() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.sync++
	return v.sync
}

// unheld is a holding a session's initial values did not repeat.
type unheld struct {
	peer, track string
	// gone: the peer holds nothing now and is forgotten.
	gone bool
}

// endSync forgets the holdings the session's initial values did not
// repeat, and returns them.
func (v *remoteView) endSync(mark uint64) []unheld {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []unheld
	for p, rp := range v.peers {
		for t, m := range rp.tracks {
			if m < mark {
				delete(rp.tracks, t)
				if len(rp.tracks) > 0 {
					out = append(out, unheld{peer: p, track: t})
				}
			}
		}
		if len(rp.tracks) == 0 {
			v.forget(p, rp)
			out = append(out, unheld{peer: p, gone: true})
		}
	}
	return out
}

func (v *remoteView) hubOf(peer string) (string, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if rp := v.peers[peer]; rp != nil {
		return rp.hub, true
	}
	return "", false
}

// liveHubs returns the other hubs alive, sorted.
func (v *remoteView) liveHubs() []string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]string, 0, len(v.hubs))
	for h := range v.hubs {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

func (v *remoteView) summary() (hubs []string, peers, holdings int) {
	hubs = v.liveHubs()
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, rp := range v.peers {
		holdings += len(rp.tracks)
	}
	return hubs, len(v.peers), holdings
}
