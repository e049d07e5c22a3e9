package peer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/signaling"
)

// PlaybackResult describes one playback.
type PlaybackResult struct {
	Track     string
	FromCache bool
	// Complete is true when the whole track was played.
	Complete bool
	// StartLatency is the time from Play to the first chunk being ready.
	StartLatency time.Duration
	// LookupLatency is the time from asking for a seeder (have or tracker
	// lookup) to getting one; 0 when none was found.
	LookupLatency time.Duration
	// ConnectLatency is the time from the tracker's answer to the seeder's
	// DataChannel being open; 0 without a new pair.
	ConnectLatency time.Duration
	// Seeders counts the peer links used as sources; Lookups the tracker
	// lookups made.
	Seeders, Lookups int
	// Sources counts the distinct peers that delivered at least one
	// verified chunk.
	Sources int
	// StartFromPeer is true when the first chunk came from a peer.
	StartFromPeer   bool
	Stalls          int
	StalledTime     time.Duration
	ServerBytes     int64
	P2PBytes        int64
	CacheBytes      int64
	HashFailures    int
	CorruptAccepted int
	// HubBytesBy splits ServerBytes by the rule that asked the hub for the
	// range under way (PROTOCOL.md §8.3, §8.4).
	HubBytesBy HubRuleBytes
	// RelayBytes is the part of P2PBytes that came through a TURN relay.
	RelayBytes int64
	// DuplicateServerBytes and DuplicateP2PBytes count chunk bytes that
	// arrived when the chunk was present already (included in ServerBytes
	// and P2PBytes).
	DuplicateServerBytes, DuplicateP2PBytes int64
	// BadMessages counts malformed messages from seeders; Timeouts seeders
	// abandoned for sending nothing; Reports the seeders reported to the hub.
	BadMessages, Timeouts, Reports int
}

// HubRuleBytes splits the bytes a playback got from the hub by the rule
// that asked for them.
type HubRuleBytes struct {
	// Emergency: the start, the emergency zone and the rescue zone, and
	// everything without P2P (rules 3 and 5 of §8.3).
	Emergency int64 `json:"emergency"`
	// FirstCopy: first-copy ranges (rule 4, §8.4).
	FirstCopy int64 `json:"first_copy"`
	// Orphan: a first-copy chunk skipped twice, asked for plainly (§8.4).
	Orphan int64 `json:"orphan"`
}

// Add adds o to b.
func (b *HubRuleBytes) Add(o HubRuleBytes) {
	b.Emergency += o.Emergency
	b.FirstCopy += o.FirstCopy
	b.Orphan += o.Orphan
}

// hubRule is the rule that asked the hub for its range under way.
type hubRule int

const (
	ruleEmergency hubRule = iota
	ruleFirstCopy
	ruleOrphan
)

// hubRetryDelay is how long a session waits before asking the hub again
// after the hub ended a range with an error.
const hubRetryDelay = 250 * time.Millisecond

// ErrBusy is returned by Play when the track is already playing on this peer.
var ErrBusy = errors.New("track already playing")

// Play plays a track to the end on the simulated clock and returns what
// happened: from the cache when the track is there; otherwise as the peer
// algorithm of PROTOCOL.md §8 decides (Schedule): up to MaxSources peers
// (open links first, then the tracker) serve disjoint ranges, the hub sends
// first copies of what no linked peer holds and every chunk that would
// stall playback. Chunks from peers are verified; the chunks held are
// served to other peers while the track plays, and a completed track is
// cached, seeded and announced to the hub.
func (p *Peer) Play(ctx context.Context, trackID string) (PlaybackResult, error) {
	t0 := time.Now()
	p.mu.Lock()
	if p.playing[trackID] {
		p.mu.Unlock()
		return PlaybackResult{Track: trackID}, ErrBusy
	}
	p.playing[trackID] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.playing, trackID)
		p.mu.Unlock()
	}()
	if err := p.Err(); err != nil {
		return PlaybackResult{Track: trackID}, fmt.Errorf("play %s: peer stopped: %w", trackID, err)
	}
	p.stats.playbacks.Add(1)
	if ct, ok := p.cache.Get(trackID); ok {
		return p.playCached(ctx, ct, t0)
	}
	m, err := p.mans.Manifest(ctx, trackID)
	if err != nil {
		return PlaybackResult{Track: trackID}, fmt.Errorf("play %s: %w", trackID, err)
	}
	if len(m.Chunks) == 0 {
		return PlaybackResult{Track: trackID}, fmt.Errorf("play %s: manifest has no chunks", trackID)
	}
	s := newSession(p, m, t0)
	return s.run(ctx)
}

// playCached plays a cached track: every chunk is there.
func (p *Peer) playCached(ctx context.Context, ct *CachedTrack, t0 time.Time) (PlaybackResult, error) {
	res := PlaybackResult{Track: ct.Manifest.ID, FromCache: true, StartLatency: time.Since(t0), CacheBytes: ct.Manifest.Size}
	p.noteStartup(res.StartLatency)
	p.stats.cacheBytes.Add(ct.Manifest.Size)
	t := time.NewTimer(p.cfg.realFor(NewTimeline(ct.Manifest).TotalMS()))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return res, fmt.Errorf("play %s: %w", res.Track, ctx.Err())
	}
	res.Complete = true
	p.stats.complete.Add(1)
	return res, nil
}

type evChunk struct {
	ep   *endpoint
	seq  int
	data []byte
}

type evEnd struct {
	ep   *endpoint
	id   uint32
	code string
}

type evBad struct {
	ep *endpoint
}

type evHave struct {
	ep *endpoint
	m  chunkproto.HaveReply
}

type evHolding struct {
	ep *endpoint
	m  chunkproto.Holding
}

// evLookup ends a tracker lookup: its pairs follow as evLink events.
type evLookup struct {
	reason  string // why no seeder was found ("" when pairs follow)
	pairs   int
	elapsed time.Duration
}

// evLink is one pair of a lookup, open (ep set) or failed.
type evLink struct {
	ep      *endpoint // nil: the link did not open
	pr      *pair
	connect time.Duration
	failed  bool // it did not open for a failure, not for the playback's end
}

// source is one sender of the session's chunks: the hub or a peer.
type source struct {
	ep   *endpoint
	id   uint32
	st   SourceState
	last time.Time // last progress
}

// peerSource is a peer link serving the track.
type peerSource struct {
	source
	// has flags the chunks the peer holds; nil means all.
	has []bool
	// got counts verified chunks from it; asked is when it was first
	// asked for chunks; slowUntil keeps a stalled peer out of new ranges.
	got       int
	asked     time.Time
	slowUntil time.Time
}

// session is one playback of a track that is not cached.
type session struct {
	p      *Peer
	m      *media.Manifest
	tl     *Timeline
	t0     time.Time
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	events chan any

	td       *trackData
	present  []bool       // the session's own copy of td's flags
	sched    SchedScratch // Schedule's buffers, reused at every step
	have     int
	finished bool
	pb       *Playback
	hub      source
	peers    []*peerSource
	bad      map[string]bool
	used     map[string]bool    // peers that delivered a verified chunk
	probing  map[*endpoint]bool // have asked, no answer yet
	asked    map[*endpoint]bool // every link asked have in this playback
	probeEnd time.Time          // probes unanswered by then are dropped
	looking  bool               // a tracker lookup is under way
	linking  int                // pairs of a lookup not open yet
	nextLook time.Time          // no tracker lookup before then
	cold     bool               // the tracker said nobody holds the track
	// firstCopyHold: no first-copy request before this time (the hub gave
	// the chunks asked to other peers). hubHold: no hub request before this
	// time (after a hub error).
	firstCopyHold time.Time
	hubHold       time.Time
	// orphan is the first chunk of the last first-copy range the hub
	// skipped (-1: none).
	orphan int
	// hubRule is the rule that asked for the hub's range under way.
	hubRule hubRule
	// holdingDirty: chunks arrived since the last holding sent at lastHolding.
	holdingDirty bool
	lastHolding  time.Time
	res          PlaybackResult
}

func newSession(p *Peer, m *media.Manifest, t0 time.Time) *session {
	tl := NewTimeline(m)
	return &session{
		p: p, m: m, tl: tl, t0: t0,
		events:  make(chan any, 256),
		td:      newTrackData(m),
		present: make([]bool, tl.Len()),
		pb:      NewPlayback(tl, p.cfg.Speed),
		bad:     make(map[string]bool),
		used:    make(map[string]bool),
		probing: make(map[*endpoint]bool),
		asked:   make(map[*endpoint]bool),
		orphan:  -1,
		res:     PlaybackResult{Track: m.ID},
	}
}

// post delivers an event to the session loop unless the session ended.
func (s *session) post(ev any) {
	select {
	case s.events <- ev:
	case <-s.ctx.Done():
	}
}

func (s *session) chunk(ep *endpoint, seq int, data []byte) { s.post(evChunk{ep, seq, data}) }
func (s *session) rangeEnd(ep *endpoint, id uint32, code string) {
	s.post(evEnd{ep, id, code})
}
func (s *session) haveReply(ep *endpoint, m chunkproto.HaveReply) { s.post(evHave{ep, m}) }
func (s *session) holding(ep *endpoint, m chunkproto.Holding)     { s.post(evHolding{ep, m}) }
func (s *session) badMessage(ep *endpoint)                        { s.post(evBad{ep}) }

func (s *session) p2p() bool { return !s.p.cfg.DisableP2P }

func (s *session) run(ctx context.Context) (res PlaybackResult, err error) {
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.p.mu.Lock()
	s.p.partials[s.m.ID] = s.td
	s.p.mu.Unlock()
	defer func() {
		s.cancel()
		s.wg.Wait()
		s.release()
		s.res.Stalls = s.pb.Stalls()
		s.res.StalledTime = s.pb.StalledTime()
		s.res.Sources = len(s.used)
		s.p.stats.stalls.Add(int64(s.res.Stalls))
		s.p.stats.stalledNS.Add(int64(s.res.StalledTime))
		res = s.res
	}()
	s.hub.ep = s.p.hub() // nil while the hub is away: step picks it up later
	if s.p2p() {
		s.probe(time.Now())
	}
	minChunk := s.tl.TotalMS()
	for c := 0; c < s.tl.Len(); c++ {
		minChunk = min(minChunk, s.tl.End(c)-s.tl.Start(c))
	}
	tick := time.NewTicker(min(max(s.p.cfg.realFor(minChunk/4), 2*time.Millisecond), 50*time.Millisecond))
	defer tick.Stop()
	s.step(time.Now())
	for !s.pb.Done() {
		var hubClosed <-chan struct{}
		if s.hub.ep != nil {
			hubClosed = s.hub.ep.closed
		}
		select {
		case ev := <-s.events:
			s.handle(ev)
		case <-tick.C:
		case <-hubClosed:
			// The hub is away: play from the buffer until the peer
			// reconnects (step picks up the new hub).
			s.hub = source{}
		case <-s.p.done:
			return s.res, fmt.Errorf("play %s: peer stopped: %w", s.m.ID, s.p.Err())
		case <-ctx.Done():
			return s.res, fmt.Errorf("play %s: %w", s.m.ID, ctx.Err())
		}
		s.step(time.Now())
	}
	s.res.Complete = s.finished
	if s.res.Complete {
		s.p.stats.complete.Add(1)
	}
	return s.res, nil
}

// sourceTimeout is how long a range in flight may go without a chunk.
func (s *session) sourceTimeout() time.Duration {
	return max(s.p.cfg.realFor(s.p.cfg.SourceTimeoutMS), 50*time.Millisecond)
}

// step advances playback, checks the sources, starts searches, sends the
// scheduler's requests and the peer's holding updates.
func (s *session) step(now time.Time) {
	s.pb.Advance(now, s.present)
	if s.hub.ep == nil || s.hub.ep.isClosed() {
		if ep := s.p.hub(); ep != nil && ep != s.hub.ep && !ep.isClosed() {
			s.hub = source{ep: ep}
		}
	}
	s.checkPeers(now)
	if len(s.probing) > 0 && now.After(s.probeEnd) {
		for ep := range s.probing {
			ep.forget(s.m.ID)
		}
		clear(s.probing)
	}
	if s.have == s.tl.Len() {
		return
	}
	if s.p2p() && len(s.peers)+s.linking < s.p.cfg.MaxSources {
		s.probe(now) // links opened since, by our lookups or others'
	}
	if s.wantsPeers(now) {
		s.startLookup(now)
	}
	in := SchedInput{
		Timeline: s.tl, Present: s.present, PlayheadMS: s.pb.Position(),
		Hub: s.hubState(now), P2P: s.p2p(), Waiting: s.waiting(now),
		FirstCopyHold: now.Before(s.firstCopyHold), Scratch: &s.sched,
		StartLate: s.p2p() && !s.pb.Started() && now.Sub(s.t0) >= s.p.cfg.StartRescue,
	}
	in.Peers = make([]PeerSource, len(s.peers))
	for i, ps := range s.peers {
		st := s.state(&ps.source, now)
		st.Stalled = st.Stalled || now.Before(ps.slowUntil)
		in.Peers[i] = PeerSource{State: st, Has: ps.has}
	}
	d := Schedule(s.p.cfg.Sched, in)

	if !d.Hub.Empty() && s.hub.ep != nil && !s.hub.ep.isClosed() && !now.Before(s.hubHold) {
		rule := ruleEmergency
		if d.HubFirstCopy {
			rule = ruleFirstCopy
		}
		if d.HubFirstCopy && d.Hub.From == s.orphan {
			// Skipped once already and still held by no source: the peer
			// that got it is not linked to us. Ask for it plainly (§8.4).
			d.Hub, d.HubFirstCopy, rule = Range{From: d.Hub.From, To: d.Hub.From + 1}, false, ruleOrphan
		}
		if err := s.request(&s.hub, d.Hub, d.HubFirstCopy, now); err != nil {
			s.p.log.Debug("request to hub failed; waiting for the hub", "track", s.m.ID, "err", err)
			s.hub = source{}
		} else {
			s.hubRule = rule
		}
	}
	for i, r := range d.Peers {
		if r.Empty() {
			continue
		}
		ps := s.peers[i]
		if err := s.request(&ps.source, r, false, now); err != nil {
			s.dropPeer(ps, false)
			continue
		}
		if ps.asked.IsZero() {
			ps.asked = now
		}
	}
	s.pushHolding(now)
}

// wantsPeers reports whether to ask the tracker for more peers now (§8.2):
// fewer than MaxSources serve or are being connected, no search is under way
// (tracker lookup, have asked on open links), the retry time has come, the
// peer's lookups are not held after failed links (lookupBackoff), and
// some source is slow or a missing chunk within InOrderMS of the playhead is
// held by no source.
func (s *session) wantsPeers(now time.Time) bool {
	if !s.p2p() || s.looking || len(s.probing) > 0 || len(s.peers)+s.linking >= s.p.cfg.MaxSources || now.Before(s.nextLook) || s.p.backoff.holds(now) {
		return false
	}
	if len(s.peers) == 0 {
		return true
	}
	for _, ps := range s.peers {
		if now.Before(ps.slowUntil) {
			return true
		}
	}
	// Holes near the playhead only (InOrderMS): first copies fill the rest.
	pos := s.pb.Position()
	for c := FirstMissing(s.present, s.tl.ChunkAt(pos)); c < s.tl.Len() && s.tl.Start(c) < pos+s.p.cfg.Sched.InOrderMS; c++ {
		if s.present[c] {
			continue
		}
		held := false
		for _, ps := range s.peers {
			if ps.has == nil || ps.has[c] {
				held = true
				break
			}
		}
		if !held {
			return true
		}
	}
	return false
}

// usesRemote reports whether remote serves or is being asked already.
func (s *session) usesRemote(remote string) bool {
	for _, ps := range s.peers {
		if ps.ep.remote == remote {
			return true
		}
	}
	for ep := range s.probing {
		if ep.remote == remote {
			return true
		}
	}
	return false
}

// waiting reports whether the start still waits for peers (§8.2): the
// first search is under way, the tracker did not say the track is cold, and
// the start deadline has not passed.
func (s *session) waiting(now time.Time) bool {
	if !s.p2p() || s.pb.Started() || s.cold || now.Sub(s.t0) >= s.p.cfg.StartWait {
		return false
	}
	return len(s.probing) > 0 || s.looking || s.linking > 0
}

// checkPeers drops closed links, stops stalled ranges and abandons peers
// that never sent anything.
func (s *session) checkPeers(now time.Time) {
	silence := max(s.sourceTimeout(), s.p.cfg.SilenceTimeout)
	for _, ps := range append([]*peerSource(nil), s.peers...) {
		switch {
		case ps.ep.isClosed():
			s.dropPeer(ps, false)
		case ps.got == 0 && !ps.asked.IsZero() && now.Sub(ps.asked) > silence:
			// Nothing at all from this peer within the silence timeout.
			s.res.Timeouts++
			s.p.stats.timeouts.Add(1)
			s.p.log.Info("peer sent nothing; abandoning it", "track", s.m.ID, "peer", ps.ep.remote)
			s.abandon(ps.ep, ReportTimeout)
		case ps.st.Active && now.Sub(ps.last) > s.sourceTimeout():
			// A slow range: its chunks go to other sources (§8.3).
			ps.ep.cancel(s.m.ID, ps.id)
			ps.st.Active = false
			ps.slowUntil = now.Add(s.sourceTimeout())
		}
	}
}

// hubStallTimeout is the real time without a chunk after which the hub's
// range counts as stalled (§8.5): the hub is slow under load but does not
// lie, and re-asking it restarts the range.
const hubStallTimeout = 2 * time.Second

// hubState is the hub's range as the scheduler sees it.
func (s *session) hubState(now time.Time) SourceState {
	st := s.hub.st
	st.Stalled = st.Active && now.Sub(s.hub.last) > max(s.sourceTimeout(), hubStallTimeout)
	return st
}

func (s *session) state(src *source, now time.Time) SourceState {
	st := src.st
	st.Stalled = st.Active && now.Sub(src.last) > s.sourceTimeout()
	return st
}

func (s *session) request(src *source, r Range, firstCopy bool, now time.Time) error {
	id, err := src.ep.request(s.m.ID, r.From, r.To, firstCopy, s)
	if err != nil {
		return err
	}
	src.id = id
	src.st = SourceState{Active: true, From: r.From, To: r.To, Next: r.From, FirstCopy: firstCopy}
	src.last = now
	return nil
}

// peerOf returns the peer source of ep, or nil.
func (s *session) peerOf(ep *endpoint) *peerSource {
	for _, ps := range s.peers {
		if ps.ep == ep {
			return ps
		}
	}
	return nil
}

func (s *session) handle(ev any) {
	now := time.Now()
	switch ev := ev.(type) {
	case evChunk:
		s.onChunk(ev, now)
	case evEnd:
		s.onEnd(ev, now)
	case evBad:
		s.res.BadMessages++
		s.p.log.Info("malformed message from peer; abandoning it", "track", s.m.ID, "peer", ev.ep.remote)
		s.abandon(ev.ep, ReportBadMessage)
	case evHave:
		s.onHave(ev, now)
	case evHolding:
		ps := s.peerOf(ev.ep)
		if (ps != nil && ps.has == nil) || (ps == nil && (s.probing[ev.ep] || !s.asked[ev.ep])) {
			return // holds everything already; or its have answer is due
		}
		has, ok := s.decodeHas(ev.m.Chunks, ev.m.Have)
		if !ok {
			s.res.BadMessages++
			s.abandon(ev.ep, ReportBadMessage)
			return
		}
		if ps != nil {
			ps.has = has
			return
		}
		// A link that held nothing when asked has chunks now: a source.
		if slices.Contains(has, true) && s.keep(ev.ep) {
			s.addPeer(ev.ep, has, now)
		}
	case evLookup:
		s.looking = false
		s.linking += ev.pairs
		if ev.pairs > 0 && s.res.LookupLatency == 0 {
			s.res.LookupLatency = ev.elapsed
		}
		s.cold = ev.reason == signaling.ReasonNoCandidates
	case evLink:
		s.linking--
		if ev.ep == nil {
			if ev.failed {
				s.p.backoff.failed(now)
			}
			return
		}
		s.p.backoff.opened()
		if s.res.ConnectLatency == 0 {
			s.res.ConnectLatency = ev.connect
		}
		if s.asked[ev.ep] {
			return // the per-step probe asked it when it opened
		}
		if !s.keep(ev.ep) {
			s.p.unpair(ev.pr.id, endAbandoned) // not needed: free the seeder's slot
			return
		}
		s.ask(ev.ep, now)
	}
}

func (s *session) onEnd(ev evEnd, now time.Time) {
	if ev.ep == s.hub.ep {
		if ev.id != s.hub.id {
			return
		}
		st := s.hub.st
		s.hub.st.Active = false
		if ev.code != "" {
			// e.g. unavailable (store down, hub shutting down): do not
			// re-ask at every tick.
			s.hubHold = now.Add(hubRetryDelay)
			return
		}
		if st.FirstCopy && !s.present[st.From] {
			// The hub skipped the first chunk asked: it gave it to another
			// peer. Fetch such chunks from peers; look for more now. (A
			// range cut short after its first chunk only met the hub's
			// stripe limit.)
			s.firstCopyHold = now.Add(s.p.cfg.realFor(s.p.cfg.FirstCopyRetryMS))
			s.orphan = st.From
			if s.nextLook.After(now) {
				s.nextLook = now
			}
		}
		return
	}
	ps := s.peerOf(ev.ep)
	if ps == nil || ev.id != ps.id {
		return
	}
	st := ps.st
	ps.st.Active = false
	if ev.code != "" {
		s.dropPeer(ps, false)
		return
	}
	for c := st.From; c < st.To; c++ {
		if !s.present[c] && (ps.has == nil || ps.has[c]) {
			// It claimed this chunk and did not send it: a lying peer is
			// treated as a silent one (§8.5).
			s.res.Timeouts++
			s.p.stats.timeouts.Add(1)
			s.p.log.Info("peer did not send a chunk it claims; abandoning it", "track", s.m.ID, "peer", ps.ep.remote, "seq", c)
			s.abandon(ps.ep, ReportTimeout)
			return
		}
	}
}

// decodeHas checks a bitfield of the remote against the manifest.
func (s *session) decodeHas(chunks int, have string) ([]bool, bool) {
	if chunks != s.tl.Len() {
		return nil, false
	}
	b, err := chunkproto.DecodeBitfield(have, chunks)
	if err != nil {
		return nil, false
	}
	return chunkproto.BitfieldFlags(b, chunks), true
}

func (s *session) onHave(ev evHave, now time.Time) {
	if !s.probing[ev.ep] {
		return
	}
	delete(s.probing, ev.ep)
	var has []bool
	switch {
	case ev.m.OK:
	case ev.m.Have != "" || ev.m.Chunks != 0:
		var ok bool
		if has, ok = s.decodeHas(ev.m.Chunks, ev.m.Have); !ok {
			s.res.BadMessages++
			s.abandon(ev.ep, ReportBadMessage)
			return
		}
	default:
		ev.ep.forget(s.m.ID) // holds nothing, or no slot for us
		return
	}
	if !s.keep(ev.ep) {
		ev.ep.forget(s.m.ID)
		return
	}
	s.addPeer(ev.ep, has, now)
}

// keep reports whether ep may become a source: the track is not complete,
// the link is open and trusted, its remote serves no other link of ours,
// and fewer than MaxSources serve.
func (s *session) keep(ep *endpoint) bool {
	return s.have < s.tl.Len() && !ep.isClosed() && !s.isBad(ep.remote) && !s.usesRemote(ep.remote) && len(s.peers) < s.p.cfg.MaxSources
}

// addPeer makes ep a source holding has (nil: every chunk).
func (s *session) addPeer(ep *endpoint, has []bool, now time.Time) {
	s.peers = append(s.peers, &peerSource{source: source{ep: ep}, has: has})
	s.res.Seeders++
	if s.res.LookupLatency == 0 {
		s.res.LookupLatency = now.Sub(s.t0)
	}
}

func (s *session) onChunk(ev evChunk, now time.Time) {
	fromHub := ev.ep == s.hub.ep
	n := int64(len(ev.data))
	dup := ev.seq >= 0 && ev.seq < s.tl.Len() && s.present[ev.seq]
	if fromHub {
		s.res.ServerBytes += n
		s.p.stats.serverBytes.Add(n)
		switch s.hubRule {
		case ruleFirstCopy:
			s.res.HubBytesBy.FirstCopy += n
		case ruleOrphan:
			s.res.HubBytesBy.Orphan += n
		default:
			s.res.HubBytesBy.Emergency += n
		}
		if dup {
			s.res.DuplicateServerBytes += n
		}
	} else {
		s.res.P2PBytes += n
		s.p.stats.p2pBytes.Add(n)
		if ev.ep.pair != nil && ev.ep.pair.relayed.Load() {
			s.res.RelayBytes += n
			s.p.stats.relayBytes.Add(n)
		}
		if dup {
			s.res.DuplicateP2PBytes += n
		}
	}
	var src *source
	ps := s.peerOf(ev.ep)
	switch {
	case fromHub:
		src = &s.hub
	case ps != nil:
		src = &ps.source
	}
	if ev.seq < 0 || ev.seq >= s.tl.Len() {
		if !fromHub {
			s.res.BadMessages++
			s.p.stats.badMessages.Add(1)
			s.abandon(ev.ep, ReportBadMessage)
		}
		return
	}
	if !fromHub && !VerifyChunk(s.m, ev.seq, ev.data) {
		s.res.HashFailures++
		s.p.stats.hashFailures.Add(1)
		s.p.log.Info("chunk failed verification; abandoning peer", "track", s.m.ID, "seq", ev.seq, "peer", ev.ep.remote)
		s.abandon(ev.ep, ReportHashMismatch)
		return
	}
	if src != nil && src.st.Active && ev.seq >= src.st.Next && ev.seq < src.st.To {
		src.st.Next = ev.seq + 1
		src.last = now
	}
	if ps != nil {
		ps.got++
		s.used[ps.ep.remote] = true
	}
	if s.present[ev.seq] {
		return
	}
	s.present[ev.seq] = true
	s.td.put(ev.seq, ev.data)
	s.have++
	s.holdingDirty = true
	if ev.seq == 0 && !s.pb.Started() {
		s.pb.Start(now)
		s.res.StartLatency = now.Sub(s.t0)
		s.res.StartFromPeer = !fromHub
		s.p.noteStartup(s.res.StartLatency)
	}
	if s.have == s.tl.Len() {
		s.complete()
	}
}

// pushHolding tells the hub and the linked peers which chunks the peer holds
// now, at most every HoldingIntervalMS (§8.1). A complete track is
// announced with completed instead.
func (s *session) pushHolding(now time.Time) {
	if !s.holdingDirty || !s.p2p() || s.finished || now.Sub(s.lastHolding) < time.Duration(chunkproto.HoldingIntervalMS)*time.Millisecond {
		return
	}
	s.holdingDirty = false
	s.lastHolding = now
	h := chunkproto.NewHolding(s.m.ID, s.present)
	if err := s.p.send(h); err != nil {
		s.p.log.Debug("holding", "err", err)
	}
	for _, pr := range s.p.openPairs() {
		if ep := pr.endpoint(); ep != nil {
			ep.pushHolding(h)
		}
	}
}

// complete audits every chunk against the manifest, then caches and
// announces the track.
func (s *session) complete() {
	bad := 0
	data := make([][]byte, s.tl.Len())
	for seq := range data {
		data[seq], _ = s.td.Chunk(seq)
		if !VerifyChunk(s.m, seq, data[seq]) {
			bad++
		}
	}
	s.finished = true
	s.spareUnjudged(time.Now())
	if bad > 0 {
		s.res.CorruptAccepted += bad
		s.p.stats.corruptAccepted.Add(int64(bad))
		s.p.log.Warn("track completed with corrupt chunks; not cached", "track", s.m.ID, "bad", bad)
		return
	}
	s.p.cache.Put(&CachedTrack{Manifest: s.m, Chunks: data})
	if err := s.p.send(signaling.Completed{Track: s.m.ID}); err != nil {
		s.p.log.Debug("completed", "err", err)
	}
	if s.p2p() {
		h := chunkproto.NewHolding(s.m.ID, s.present)
		for _, pr := range s.p.openPairs() {
			if ep := pr.endpoint(); ep != nil {
				ep.pushHolding(h)
			}
		}
	}
	s.cancelRanges()
}

// spareUnjudged drops, at completion, the peers asked for chunks less than
// a source timeout ago that sent none yet: nothing they send counts any
// more, and they did not have their time (§8.5). The silent peers asked
// before that are still judged by checkPeers while the playback goes on.
func (s *session) spareUnjudged(now time.Time) {
	for _, ps := range append([]*peerSource(nil), s.peers...) {
		if ps.got == 0 && !ps.asked.IsZero() && now.Sub(ps.asked) <= s.sourceTimeout() {
			s.dropPeer(ps, false)
		}
	}
}

// cancelRanges stops whatever is still in flight for the track.
func (s *session) cancelRanges() {
	if s.hub.ep != nil && s.hub.st.Active {
		s.hub.ep.cancel(s.m.ID, s.hub.id)
		s.hub.st.Active = false
	}
	for _, ps := range s.peers {
		if ps.st.Active {
			ps.ep.cancel(s.m.ID, ps.id)
			ps.st.Active = false
		}
	}
}

// release forgets the session's sinks on its endpoints and its partial
// track: a track not completed is withdrawn from the tracker.
func (s *session) release() {
	s.cancelRanges()
	if s.hub.ep != nil {
		s.hub.ep.forget(s.m.ID)
	}
	for _, ps := range s.peers {
		ps.ep.forget(s.m.ID)
	}
	for ep := range s.probing {
		ep.forget(s.m.ID)
	}
	s.p.mu.Lock()
	if s.p.partials[s.m.ID] == s.td {
		delete(s.p.partials, s.m.ID)
	}
	s.p.mu.Unlock()
	if s.p2p() && !s.finished && s.have > 0 {
		if err := s.p.send(chunkproto.NewHolding(s.m.ID, make([]bool, s.tl.Len()))); err != nil {
			s.p.log.Debug("withdraw holding", "err", err)
		}
	}
}

// isBad reports whether remote misbehaved, in this playback or before.
func (s *session) isBad(remote string) bool { return s.bad[remote] || s.p.isBad(remote) }

// abandon stops using ep's remote for this playback (ending its pair) and
// reports it to the hub. A timeout is remembered for this playback only:
// the peer may just be slow.
func (s *session) abandon(ep *endpoint, reason string) {
	if s.bad[ep.remote] {
		return
	}
	s.bad[ep.remote] = true
	if s.p.markBad(ep.remote, s.m.ID, reason, reason != ReportTimeout) {
		s.res.Reports++
	}
	delete(s.probing, ep)
	if ps := s.peerOf(ep); ps != nil {
		s.dropPeer(ps, true)
	} else {
		ep.forget(s.m.ID)
		if ep.pair != nil {
			s.p.unpair(ep.pair.id, endAbandoned)
		}
	}
}

// dropPeer stops using a peer source; bad also ends its pair.
func (s *session) dropPeer(ps *peerSource, bad bool) {
	if ps.st.Active {
		ps.ep.cancel(s.m.ID, ps.id)
	}
	ps.ep.forget(s.m.ID)
	if bad && ps.ep.pair != nil {
		s.p.unpair(ps.ep.pair.id, endAbandoned)
	}
	for i, x := range s.peers {
		if x == ps {
			s.peers = append(s.peers[:i], s.peers[i+1:]...)
			break
		}
	}
}

// probe asks the connected peers not asked yet in this playback what they
// hold of the track: at the start, and as links open (ours, or those other
// peers opened to us: both sides of a link may request).
func (s *session) probe(now time.Time) {
	for _, pr := range s.p.openPairs() {
		if ep := pr.endpoint(); ep != nil && !s.asked[ep] && !ep.isClosed() && !s.isBad(ep.remote) && !s.usesRemote(ep.remote) {
			s.ask(ep, now)
		}
	}
}

// ask sends have to ep and waits for its answer until the probe deadline.
func (s *session) ask(ep *endpoint, now time.Time) {
	s.asked[ep] = true
	if err := ep.have(s.m.ID, s); err != nil {
		return
	}
	s.probing[ep] = true
	s.probeEnd = now.Add(min(max(s.p.cfg.realFor(1000), 50*time.Millisecond), 500*time.Millisecond))
}

// startLookup asks the tracker for more peers in the background.
func (s *session) startLookup(now time.Time) {
	if s.res.Lookups >= s.p.cfg.MaxLookups {
		s.nextLook = now.Add(time.Hour)
		return
	}
	s.looking = true
	s.res.Lookups++
	s.nextLook = now.Add(max(s.p.cfg.realFor(s.p.cfg.LookupRetryMS), s.p.cfg.LookupRetryReal))
	q := signaling.Lookup{
		Track:   s.m.ID,
		Want:    min(s.p.cfg.MaxSources-len(s.peers)-s.linking, signaling.MaxLookupWant),
		From:    FirstMissing(s.present, s.tl.ChunkAt(s.pb.Position())),
		Partial: true,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.lookup(q)
	}()
}

// lookup runs a tracker lookup, then waits for each pair it made to open.
func (s *session) lookup(q signaling.Lookup) {
	t0 := time.Now()
	r, err := s.p.lookup(s.ctx, q)
	if err != nil {
		s.post(evLookup{reason: err.Error()})
		return
	}
	var pairs []*pair
	for _, id := range resultPairs(r) {
		s.p.mu.Lock()
		pr := s.p.pairs[id]
		s.p.mu.Unlock()
		switch {
		case pr == nil:
		case s.p.isBad(pr.remote):
			s.p.unpair(id, endRefused)
		default:
			pairs = append(pairs, pr)
		}
	}
	s.post(evLookup{reason: r.Reason, pairs: len(pairs), elapsed: time.Since(t0)})
	for _, pr := range pairs {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t1 := time.Now()
			if ok, why := waitOpen(s.ctx, pr, s.p.cfg.ConnectTimeout); !ok {
				s.p.unpair(pr.id, why)
				s.post(evLink{failed: why.failedLink()})
				return
			}
			s.post(evLink{ep: pr.endpoint(), pr: pr, connect: time.Since(t1)})
		}()
	}
}
