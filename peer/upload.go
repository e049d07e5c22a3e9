package peer

import (
	"time"

	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/signaling"
)

// What the peer serves to other peers: the tracks it holds, its upload
// slots and their janitor.

// sourceOf returns what the peer holds of track: the cached track, the
// chunks of a download under way, or nil.
func (p *Peer) sourceOf(track string) chunkSource {
	if ct, ok := p.cache.Peek(track); ok {
		return ct
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if td := p.partials[track]; td != nil && td.count() > 0 {
		return td
	}
	return nil
}

// haveReply answers remote's have for track: ok with the whole track, a
// bitfield with part of it, nothing when it holds nothing or has no upload
// slot for remote.
func (p *Peer) haveReply(track, remote string) chunkproto.HaveReply {
	r := chunkproto.HaveReply{Track: track}
	if !p.canUpload(track, remote) {
		p.stats.refused.Add(1)
		return r
	}
	switch src := p.sourceOf(track).(type) {
	case *CachedTrack:
		r.OK = true
	case *trackData:
		if p.cfg.Fault == FaultLiar {
			r.OK = true // claims what it does not hold
			break
		}
		h := chunkproto.NewHolding(track, src.flags())
		r.Chunks, r.Have = h.Chunks, h.Have
	}
	return r
}

// canUpload reports whether the peer would upload track to remote now: it
// holds a chunk of the track at least and remote holds a slot or one is free.
func (p *Peer) canUpload(track, remote string) bool {
	if p.sourceOf(track) == nil {
		return false
	}
	return p.slots.available(remote)
}

// acquireSlot gives remote an upload slot if it has none and one is free.
// force takes one even over the cap (the hub paired us: it counted it).
func (p *Peer) acquireSlot(remote, pairID string, force bool) bool {
	return p.slots.acquire(remote, pairID, force)
}

// touchSlot marks remote's slot as used now.
func (p *Peer) touchSlot(remote string) { p.slots.touch(remote) }

// releaseSlot frees remote's slot and tells the hub, for every open pair
// counted against it, that the upload is done.
func (p *Peer) releaseSlot(remote string) {
	ids := p.slots.release(remote)
	var done []string
	p.mu.Lock()
	for _, id := range ids {
		if pr := p.pairs[id]; pr != nil && !pr.isClosed() {
			done = append(done, id)
		}
	}
	p.mu.Unlock()
	for _, id := range done {
		if err := p.send(signaling.UploadDone{PairID: id}); err != nil {
			p.log.Debug("upload_done", "err", err)
		}
	}
}

// slotIdle is how long an upload slot stays without requests.
func (p *Peer) slotIdle() time.Duration {
	return max(p.cfg.realFor(30_000), 500*time.Millisecond)
}

// janitor frees idle upload slots and closes surplus idle peer connections.
func (p *Peer) janitor() {
	defer p.wg.Done()
	t := time.NewTicker(max(p.slotIdle()/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		for _, r := range p.slots.idle(time.Now(), p.slotIdle()) {
			p.mu.Lock()
			serving := p.servingTo(r)
			p.mu.Unlock()
			if !serving {
				p.releaseSlot(r)
			}
		}
		p.trimPairs()
	}
}

// servingTo reports whether a range is being served to remote. p.mu is held.
func (p *Peer) servingTo(remote string) bool {
	for _, pr := range p.pairs {
		if pr.remote == remote && pr.endpoint() != nil && pr.endpoint().servingCount() > 0 {
			return true
		}
	}
	return false
}
