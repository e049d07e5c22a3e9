package peer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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
	// Seeders counts the seeders used; Lookups the tracker lookups made.
	Seeders, Lookups int
	Stalls           int
	StalledTime      time.Duration
	ServerBytes      int64
	P2PBytes         int64
	CacheBytes       int64
	HashFailures     int
	CorruptAccepted  int
	// BadMessages counts malformed messages from seeders; Timeouts seeders
	// abandoned for sending nothing; Reports the seeders reported to the hub.
	BadMessages, Timeouts, Reports int
}

// hubRetryDelay is how long a session waits before asking the hub again
// after the hub ended a range with an error.
const hubRetryDelay = 250 * time.Millisecond

// ErrBusy is returned by Play when the track is already playing on this peer.
var ErrBusy = errors.New("track already playing")

// Play plays a track to the end on the simulated clock and returns what
// happened: from the cache when the track is there; otherwise the first
// chunks come from the hub while a seeder is searched (connected peers first,
// then the tracker), the rest is streamed from the seeder and verified, with
// emergency fetches from the hub when the buffer runs low. A completed track
// is cached, seeded and announced to the hub.
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
	ok bool
}

type evSeeder struct {
	ep              *endpoint
	pr              *pair
	lookup, connect time.Duration
	reason          string // why none was found
	fail            bool
}

// source is one sender of the session's chunks.
type source struct {
	ep   *endpoint
	id   uint32
	st   SourceState
	last time.Time // last progress
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

	present  []bool
	data     [][]byte
	have     int
	finished bool
	pb       *Playback
	hub      source
	seeder   source
	bad      map[string]bool
	probing  map[*endpoint]bool
	probeEnd time.Time
	looking  bool
	// noHolders: the tracker's last answer was that nobody holds the track.
	noHolders bool
	nextLook  float64 // media position for the next tracker lookup; <0 never
	// seederGot counts verified chunks from the current seeder;
	// seederAsked is when it was first asked for chunks (zero before).
	seederGot   int
	seederAsked time.Time
	// hubHold: no request to the hub before this time (after a hub error).
	hubHold time.Time
	res     PlaybackResult
}

func newSession(p *Peer, m *media.Manifest, t0 time.Time) *session {
	tl := NewTimeline(m)
	return &session{
		p: p, m: m, tl: tl, t0: t0,
		events:  make(chan any, 64),
		present: make([]bool, tl.Len()),
		data:    make([][]byte, tl.Len()),
		pb:      NewPlayback(tl, p.cfg.Speed),
		bad:     make(map[string]bool),
		probing: make(map[*endpoint]bool),
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
func (s *session) haveReply(ep *endpoint, ok bool) { s.post(evHave{ep, ok}) }
func (s *session) badMessage(ep *endpoint)         { s.post(evBad{ep}) }

func (s *session) run(ctx context.Context) (PlaybackResult, error) {
	s.ctx, s.cancel = context.WithCancel(ctx)
	defer func() {
		s.cancel()
		s.wg.Wait()
		s.release()
		s.res.Stalls = s.pb.Stalls()
		s.res.StalledTime = s.pb.StalledTime()
		s.p.stats.stalls.Add(int64(s.res.Stalls))
		s.p.stats.stalledNS.Add(int64(s.res.StalledTime))
	}()
	s.hub.ep = s.p.hub() // nil while the hub is away: step picks it up later
	s.nextLook = 0
	if s.p.cfg.DisableP2P {
		s.nextLook = -1
	} else {
		s.probe()
	}
	minChunk := s.tl.TotalMS()
	for c := 0; c < s.tl.Len(); c++ {
		minChunk = min(minChunk, s.tl.End(c)-s.tl.Start(c))
	}
	tick := time.NewTicker(min(max(s.p.cfg.realFor(minChunk/4), 2*time.Millisecond), 50*time.Millisecond))
	defer tick.Stop()
	if err := s.step(time.Now()); err != nil {
		return s.res, err
	}
	for !s.pb.Done() {
		var seederClosed, hubClosed <-chan struct{}
		if s.seeder.ep != nil {
			seederClosed = s.seeder.ep.closed
		}
		if s.hub.ep != nil {
			hubClosed = s.hub.ep.closed
		}
		select {
		case ev := <-s.events:
			s.handle(ev)
		case <-tick.C:
		case <-seederClosed:
			s.dropSeeder(false)
		case <-hubClosed:
			// The hub is away: play from the buffer until the peer
			// reconnects (step picks up the new hub).
			s.hub = source{}
		case <-s.p.done:
			return s.res, fmt.Errorf("play %s: peer stopped: %w", s.m.ID, s.p.Err())
		case <-ctx.Done():
			return s.res, fmt.Errorf("play %s: %w", s.m.ID, ctx.Err())
		}
		if err := s.step(time.Now()); err != nil {
			return s.res, err
		}
	}
	s.res.Complete = s.finished
	if s.res.Complete {
		s.p.stats.complete.Add(1)
	}
	return s.res, nil
}

// step advances playback, starts searches and sends the scheduler's requests.
func (s *session) step(now time.Time) error {
	s.pb.Advance(now, s.present)
	if s.hub.ep == nil || s.hub.ep.isClosed() {
		if ep := s.p.hub(); ep != nil && ep != s.hub.ep && !ep.isClosed() {
			s.hub = source{ep: ep}
		}
	}
	if s.seeder.ep != nil && s.seederGot == 0 && s.silent(now) {
		// Nothing at all from this seeder within the silence timeout.
		s.res.Timeouts++
		s.p.stats.timeouts.Add(1)
		s.p.log.Info("seeder sent nothing; abandoning it", "track", s.m.ID, "seeder", s.seeder.ep.remote)
		s.abandon(s.seeder.ep, ReportTimeout)
	}
	if len(s.probing) > 0 && now.After(s.probeEnd) {
		clear(s.probing)
	}
	if s.seeder.ep == nil && len(s.probing) == 0 && !s.looking && s.nextLook >= 0 &&
		s.pb.Position() >= s.nextLook && s.have < s.tl.Len() {
		s.startLookup()
	}
	if s.have == s.tl.Len() {
		return nil
	}
	d := Schedule(s.p.cfg.Sched, SchedInput{
		Timeline: s.tl, Present: s.present, PlayheadMS: s.pb.Position(),
		Hub: s.state(&s.hub, now), Seeder: s.state(&s.seeder, now),
		SeederConnected: s.seeder.ep != nil, Probing: s.firstSearch(),
		NoHolders: s.noHolders,
	})
	if !d.Hub.Empty() && s.hub.ep != nil && !s.hub.ep.isClosed() && !now.Before(s.hubHold) {
		if err := s.request(&s.hub, d.Hub, now); err != nil {
			s.p.log.Debug("request to hub failed; waiting for the hub", "track", s.m.ID, "err", err)
			s.hub = source{}
		}
	}
	if !d.Seeder.Empty() && s.seeder.ep != nil {
		if err := s.request(&s.seeder, d.Seeder, now); err != nil {
			s.dropSeeder(false)
		} else if s.seederAsked.IsZero() {
			s.seederAsked = now
		}
	}
	return nil
}

// firstSearch reports whether the playback's first seeder search is under way.
func (s *session) firstSearch() bool {
	return len(s.probing) > 0 || (s.looking && s.res.Lookups == 1)
}

// silent reports whether the seeder, asked for chunks, has sent none for
// the silence timeout (and at least the source timeout). Stalled ranges
// replaced meanwhile do not restart the clock.
func (s *session) silent(now time.Time) bool {
	timeout := max(s.p.cfg.realFor(s.p.cfg.SourceTimeoutMS), s.p.cfg.SilenceTimeout, 50*time.Millisecond)
	return !s.seederAsked.IsZero() && now.Sub(s.seederAsked) > timeout
}

func (s *session) state(src *source, now time.Time) SourceState {
	st := src.st
	timeout := max(s.p.cfg.realFor(s.p.cfg.SourceTimeoutMS), 50*time.Millisecond)
	st.Stalled = st.Active && now.Sub(src.last) > timeout
	return st
}

func (s *session) request(src *source, r Range, now time.Time) error {
	id, err := src.ep.request(s.m.ID, r.From, r.To, s)
	if err != nil {
		return err
	}
	src.id = id
	src.st = SourceState{Active: true, From: r.From, To: r.To, Next: r.From}
	src.last = now
	return nil
}

func (s *session) handle(ev any) {
	now := time.Now()
	switch ev := ev.(type) {
	case evChunk:
		s.onChunk(ev, now)
	case evEnd:
		var src *source
		switch {
		case ev.ep == s.hub.ep:
			src = &s.hub
		case ev.ep == s.seeder.ep:
			src = &s.seeder
		default:
			return
		}
		if ev.id != src.id {
			return
		}
		src.st.Active = false
		if ev.code != "" && src == &s.seeder {
			s.dropSeeder(false)
		}
		if ev.code != "" && src == &s.hub {
			// e.g. unavailable (store down, hub shutting down): do not
			// re-ask at every tick.
			s.hubHold = now.Add(hubRetryDelay)
		}
	case evBad:
		s.res.BadMessages++
		s.p.log.Info("malformed message from seeder; abandoning it", "track", s.m.ID, "seeder", ev.ep.remote)
		s.abandon(ev.ep, ReportBadMessage)
	case evHave:
		if !s.probing[ev.ep] {
			return
		}
		delete(s.probing, ev.ep)
		if ev.ok && s.seeder.ep == nil && !ev.ep.isClosed() && !s.isBad(ev.ep.remote) {
			clear(s.probing)
			s.setSeeder(ev.ep, now.Sub(s.t0), 0)
		}
	case evSeeder:
		s.looking = false
		s.noHolders = ev.fail && ev.reason == signaling.ReasonNoCandidates
		if ev.fail {
			s.scheduleRetry()
			return
		}
		if s.seeder.ep != nil || s.isBad(ev.ep.remote) || s.have == s.tl.Len() {
			s.p.unpair(ev.pr.id) // not needed any more: free the seeder's slot
			return
		}
		s.setSeeder(ev.ep, ev.lookup, ev.connect)
	}
}

func (s *session) onChunk(ev evChunk, now time.Time) {
	fromHub := ev.ep == s.hub.ep
	n := int64(len(ev.data))
	if fromHub {
		s.res.ServerBytes += n
		s.p.stats.serverBytes.Add(n)
	} else {
		s.res.P2PBytes += n
		s.p.stats.p2pBytes.Add(n)
	}
	var src *source
	switch {
	case fromHub:
		src = &s.hub
	case ev.ep == s.seeder.ep:
		src = &s.seeder
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
		s.p.log.Info("chunk failed verification; abandoning seeder", "track", s.m.ID, "seq", ev.seq, "seeder", ev.ep.remote)
		s.abandon(ev.ep, ReportHashMismatch)
		return
	}
	if src != nil && src.st.Active && ev.seq >= src.st.Next && ev.seq < src.st.To {
		src.st.Next = ev.seq + 1
		src.last = now
		if src == &s.seeder {
			s.seederGot++
		}
	}
	if s.present[ev.seq] {
		return
	}
	s.present[ev.seq] = true
	s.data[ev.seq] = ev.data
	s.have++
	if ev.seq == 0 && !s.pb.Started() {
		s.pb.Start(now)
		s.res.StartLatency = now.Sub(s.t0)
		s.p.noteStartup(s.res.StartLatency)
	}
	if s.have == s.tl.Len() {
		s.complete()
	}
}

// complete audits every chunk against the manifest, then caches and
// announces the track.
func (s *session) complete() {
	bad := 0
	for seq, d := range s.data {
		if !VerifyChunk(s.m, seq, d) {
			bad++
		}
	}
	if bad > 0 {
		s.res.CorruptAccepted += bad
		s.p.stats.corruptAccepted.Add(int64(bad))
		s.p.log.Warn("track completed with corrupt chunks; not cached", "track", s.m.ID, "bad", bad)
		s.finished = true
		return
	}
	s.finished = true
	s.p.cache.Put(&CachedTrack{Manifest: s.m, Chunks: s.data})
	if err := s.p.send(signaling.Completed{Track: s.m.ID}); err != nil {
		s.p.log.Debug("completed", "err", err)
	}
	s.cancelRanges()
}

// cancelRanges stops whatever is still in flight for the track.
func (s *session) cancelRanges() {
	for _, src := range []*source{&s.hub, &s.seeder} {
		if src.ep != nil && src.st.Active {
			src.ep.cancel(s.m.ID, src.id)
			src.st.Active = false
		}
	}
}

// release forgets the session's sinks on its endpoints.
func (s *session) release() {
	s.cancelRanges()
	if s.hub.ep != nil {
		s.hub.ep.forget(s.m.ID)
	}
	if s.seeder.ep != nil {
		s.seeder.ep.forget(s.m.ID)
	}
	for ep := range s.probing {
		ep.forget(s.m.ID)
	}
}

// isBad reports whether remote misbehaved, in this playback or before.
func (s *session) isBad(remote string) bool { return s.bad[remote] || s.p.isBad(remote) }

// abandon stops using ep's remote for this playback (ending the pair when
// it is the seeder) and reports it to the hub. A timeout is remembered for
// this playback only: the seeder may just be slow.
func (s *session) abandon(ep *endpoint, reason string) {
	if s.bad[ep.remote] {
		return
	}
	s.bad[ep.remote] = true
	if s.p.markBad(ep.remote, s.m.ID, reason, reason != ReportTimeout) {
		s.res.Reports++
	}
	if ep == s.seeder.ep {
		s.dropSeeder(true)
	}
}

func (s *session) setSeeder(ep *endpoint, lookup, connect time.Duration) {
	s.seeder = source{ep: ep}
	s.seederGot = 0
	s.seederAsked = time.Time{}
	s.res.Seeders++
	if s.res.LookupLatency == 0 {
		s.res.LookupLatency = lookup
		s.res.ConnectLatency = connect
	}
}

// dropSeeder stops using the current seeder; bad also ends its pair.
func (s *session) dropSeeder(bad bool) {
	ep := s.seeder.ep
	if ep == nil {
		return
	}
	if s.seeder.st.Active {
		ep.cancel(s.m.ID, s.seeder.id)
	}
	ep.forget(s.m.ID)
	if bad && ep.pair != nil {
		s.p.unpair(ep.pair.id)
	}
	s.seeder = source{}
	s.nextLook = s.pb.Position() // search again now
}

// scheduleRetry plans the next tracker lookup after a failed one.
func (s *session) scheduleRetry() {
	if s.res.Lookups >= s.p.cfg.MaxLookups {
		s.nextLook = -1
		return
	}
	s.nextLook = s.pb.Position() + s.p.cfg.LookupRetryMS
}

// probe asks the already-connected peers whether they hold the track.
func (s *session) probe() {
	for _, pr := range s.p.openPairs() {
		ep := pr.endpoint()
		if ep == nil || ep.isClosed() || s.isBad(ep.remote) {
			continue
		}
		if err := ep.have(s.m.ID, s); err == nil {
			s.probing[ep] = true
		}
	}
	if len(s.probing) > 0 {
		s.probeEnd = time.Now().Add(min(max(s.p.cfg.realFor(1000), 50*time.Millisecond), 500*time.Millisecond))
	}
}

// startLookup asks the tracker for a seeder in the background.
func (s *session) startLookup() {
	if s.res.Lookups >= s.p.cfg.MaxLookups {
		s.nextLook = -1
		return
	}
	s.looking = true
	s.res.Lookups++
	bad := make(map[string]bool, len(s.bad))
	for k := range s.bad {
		bad[k] = true
	}
	// Peers known bad from earlier playbacks are checked in lookup.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.post(s.lookup(bad))
	}()
}

func (s *session) lookup(bad map[string]bool) evSeeder {
	t0 := time.Now()
	r, err := s.p.lookup(s.ctx, s.m.ID)
	if err != nil {
		return evSeeder{fail: true, reason: err.Error()}
	}
	if r.PeerID == "" {
		return evSeeder{fail: true, reason: r.Reason}
	}
	lookup := time.Since(t0)
	if bad[r.PeerID] || s.p.isBad(r.PeerID) {
		s.p.unpair(r.PairID)
		return evSeeder{fail: true, reason: "known bad seeder"}
	}
	s.p.mu.Lock()
	pr := s.p.pairs[r.PairID]
	s.p.mu.Unlock()
	if pr == nil {
		return evSeeder{fail: true, reason: "pair vanished"}
	}
	t1 := time.Now()
	if !waitOpen(s.ctx, pr, s.p.cfg.ConnectTimeout) {
		s.p.unpair(r.PairID)
		return evSeeder{fail: true, reason: "pair did not connect"}
	}
	return evSeeder{ep: pr.endpoint(), pr: pr, lookup: lookup, connect: time.Since(t1)}
}
