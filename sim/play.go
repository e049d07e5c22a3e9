package sim

import (
	"slices"
	"time"

	"github.com/ztream/ztream/peer"
	"github.com/ztream/ztream/tracker"
)

// hubStallMS: a hub range without a chunk for this long counts as stalled
// (peer/session.go hubStallTimeout).
const hubStallMS = 2000

// stepEveryMS bounds the time between two steps of a playback that is
// still downloading (a step also runs at every range's end, every lookup
// and link result, and before the playhead reaches a missing chunk).
const stepEveryMS = 4000

// source is a range in flight from the hub or a peer. Its chunks arrive in
// order, one every `every` from `first`, until the sender goes (goneAt).
type source struct {
	st     peer.SourceState
	first  time.Duration // arrival of chunk st.From
	every  time.Duration
	last   time.Duration // the last progress (request or chunk)
	goneAt time.Duration // the sender left at this time (-1: it has not)
	// firstCopy: a first-copy range (its chunks are noted at the hub).
	firstCopy bool
	// rule is why the hub sends the range (ruleEmergency…).
	rule int
}

// Why the hub sends a range, for the server bytes by rule.
const (
	ruleEmergency = iota
	ruleFirstCopy
	ruleOrphan
)

// arrival returns when chunk c of the range arrives.
func (src *source) arrival(c int) time.Duration {
	return src.first + time.Duration(c-src.st.From)*src.every
}

// holding is what the seeder holds of the track now: while it downloads
// the track itself, its chunks as they come (a peer tells its linked peers
// every HoldingIntervalRealMS: here at once); nil once it holds all of it.
func (l *link) holding() []bool {
	if sp := l.seeder.play; sp != nil && sp.track == l.p.track && !sp.finished {
		return sp.present
	}
	return l.has
}

// link is a peer source of a playback: a seeder with an open pair.
type link struct {
	src       source
	seeder    *user
	name      string // the seeder's peer id when paired
	has       []bool // nil: every chunk
	relayed   bool
	rttMS     float64
	slowUntil time.Duration
	asked     time.Duration
	got       int
	p         *play
	// open: on a pair that was open already (probed, not brokered by the
	// tracker): no tracker upload slot to release.
	open bool
}

// play is one network playback of a track by a listener, the Go peer's
// session (peer/session.go) told in virtual time.
type play struct {
	s     *Sim
	u     *user
	track trackID
	name  string
	tl    *peer.Timeline
	pb    *peer.Playback

	present []bool
	have    int
	t0      time.Duration

	hub           source
	hubHold       time.Duration
	firstCopyHold time.Duration
	orphan        int
	peers         []*link
	linking       int
	looking       bool
	probing       int     // have? questions on open pairs unanswered
	asked         []*user // the open pairs asked in this play
	lookups       int
	nextLook      time.Duration
	cold          bool
	holdingDirty  bool
	lastHolding   time.Duration

	step     *event
	churn    *event
	done     bool
	finished bool // downloaded
	startMS  float64
	used     map[*user]bool
	server   int64
	p2p      int64
	relayed  int64
	wasCold  bool
}

func (s *Sim) newPlay(u *user, t trackID, n int) *play {
	tl := s.timeline(n)
	return &play{
		s: s, u: u, track: t, name: s.trackName(t), tl: tl, pb: peer.NewPlayback(tl, s.speed()),
		present: make([]bool, n), t0: s.clock.Elapsed(), orphan: -1, startMS: -1,
		hub: source{goneAt: -1}, lastHolding: -time.Hour,
	}
}

// startWaitMS is how long the start may wait for peers.
func (p *play) startWaitMS() float64 { return p.s.alg.StartWaitRealMS }

// begin starts the playback: the first step asks the tracker and the hub.
func (p *play) begin() {
	p.wasCold = len(p.s.tr.Holders(p.name)) == 0
	p.s.stats.begun(p)
	p.probe()
	p.run()
}

// run runs a step now and plans the next one.
func (p *play) run() {
	if p.done {
		return
	}
	if p.step != nil {
		p.step.Stop()
		p.step = nil
	}
	now := p.s.clock.Elapsed()
	p.stepAt(now)
	if p.done {
		return
	}
	next := p.plan(now)
	p.step = p.s.clock.after(next-now, p.run)
}

// wake runs a step soon (an event changed what the step would decide).
func (p *play) wake() {
	if p.done {
		return
	}
	if p.step != nil && p.step.at <= p.s.clock.Elapsed() {
		return
	}
	if p.step != nil {
		p.step.Stop()
	}
	p.step = p.s.clock.after(0, p.run)
}

func (p *play) now() time.Time { return p.s.clock.base.Add(p.s.clock.Elapsed()) }

// sync takes in the chunks that arrived by now from every range.
func (p *play) sync(now time.Duration) {
	p.syncSource(&p.hub, nil, now)
	for _, l := range p.peers {
		p.syncSource(&l.src, l, now)
	}
}

func (p *play) syncSource(src *source, l *link, now time.Duration) {
	for src.st.Active && src.st.Next < src.st.To {
		at := src.arrival(src.st.Next)
		if at > now || (src.goneAt >= 0 && at > src.goneAt) {
			return
		}
		c := src.st.Next
		src.st.Next++
		src.last = at
		p.got(c, l, at)
	}
	if src.st.Next >= src.st.To {
		src.st.Active = false
	}
}

// got records chunk c, arrived at `at` from l (nil: the hub).
func (p *play) got(c int, l *link, at time.Duration) {
	size := int64(p.s.chunkSize)
	if l == nil {
		p.server += size
		p.s.stats.serverBytes += size
		p.s.stats.serverBy[p.hub.rule] += size
	} else {
		p.p2p += size
		p.s.stats.p2pBytes += size
		if l.relayed {
			p.relayed += size
			p.s.stats.relayBytes += size
		}
		l.got++
		if p.used == nil {
			p.used = make(map[*user]bool)
		}
		p.used[l.seeder] = true
	}
	if p.present[c] {
		p.s.stats.dupBytes += size
		return
	}
	p.present[c] = true
	p.have++
	p.holdingDirty = true
	if c == 0 && !p.pb.Started() {
		p.pb.Start(p.s.clock.base.Add(at))
		p.startMS = float64(at-p.t0) / float64(time.Millisecond)
		p.s.stats.start(p.startMS, l != nil)
	}
}

// stepAt is one step (peer/session.go step): play, check the sources, look
// for peers, schedule, request.
func (p *play) stepAt(now time.Duration) {
	s := p.s
	s.stats.steps++
	p.sync(now)
	p.pb.Advance(p.now(), p.present)
	if p.have == p.tl.Len() && !p.finished {
		p.complete()
	}
	if p.pb.Done() {
		p.stop(true)
		return
	}
	if p.finished {
		return
	}
	p.checkPeers(now)
	if len(p.peers)+p.linking < s.alg.MaxSources {
		p.probe() // pairs opened since, by our lookups or others'
	}
	if p.wantsPeers(now) {
		p.startLookup(now)
	}
	in := peer.SchedInput{
		Timeline: p.tl, Present: p.present, PlayheadMS: p.pb.Position(),
		Hub: p.stateOf(&p.hub, now, hubStallMS), P2P: s.sc.UploadCap > 0, Waiting: p.waiting(now),
		FirstCopyHold: now < p.firstCopyHold, Scratch: &s.sched,
		StartLate: s.sc.UploadCap > 0 && !p.pb.Started() && now-p.t0 >= ms(s.alg.StartRescueRealMS),
	}
	in.Peers = s.sources[:0]
	for _, l := range p.peers {
		st := p.stateOf(&l.src, now, 0)
		st.Stalled = st.Stalled || now < l.slowUntil
		in.Peers = append(in.Peers, peer.PeerSource{State: st, Has: l.holding()})
	}
	s.sources = in.Peers
	d := peer.Schedule(s.alg.Sched, in)
	s.stats.schedules++
	if !d.Hub.Empty() && now >= p.hubHold {
		r := d.Hub
		rule := ruleEmergency
		if d.HubFirstCopy {
			rule = ruleFirstCopy
		}
		if d.HubFirstCopy && r.From == p.orphan {
			r, d.HubFirstCopy, rule = peer.Range{From: r.From, To: r.From + 1}, false, ruleOrphan
		}
		p.requestHub(r, d.HubFirstCopy, now)
		p.hub.rule = rule
	}
	for i, r := range d.Peers {
		if !r.Empty() && i < len(p.peers) {
			p.requestPeer(p.peers[i], r, now)
		}
	}
	p.pushHolding(now)
}

// stateOf is a source's state as the scheduler sees it: stalled after the
// source timeout (at least minMS) without a chunk.
func (p *play) stateOf(src *source, now time.Duration, minMS float64) peer.SourceState {
	st := src.st
	st.Stalled = st.Active && now-src.last > max(p.s.media(p.s.alg.SourceTimeoutMS), ms(minMS))
	return st
}

// requestHub sends the hub range r (a first-copy request gets what the
// hub's first-copy memory grants).
func (p *play) requestHub(r peer.Range, firstCopy bool, now time.Duration) {
	s := p.s
	hub := &s.hubs[p.u.hub]
	from, to := r.From, r.To
	if firstCopy {
		from, to = hub.fc.Claim(p.name, r.From, r.To, p.u.name, hub.connected, s.clock.Now())
		if from >= to || from > r.From {
			// The hub gave the first chunk asked to another peer: fetch it
			// from peers, look for more now (peer/session.go onEnd).
			p.firstCopyHold = now + s.media(s.alg.FirstCopyRetryMS)
			p.orphan = r.From
			p.nextLook = min(p.nextLook, now)
			s.stats.firstCopySkips++
			if from >= to {
				p.hub.st.Active = false
				return
			}
		}
	}
	every := time.Duration(float64(s.chunkSize*8) / s.sc.Network.HubStreamKbps * float64(time.Millisecond))
	// The hub notes every chunk it sends, first copy or not (hub/sender.go),
	// as it sends them: here when the range starts (it takes
	// (to−from)·every, well within the marks' 20 s).
	for c := from; c < to; c++ {
		hub.fc.Note(p.name, c, p.u.name, s.clock.Now())
	}
	p.hub = source{
		st:    peer.SourceState{Active: true, From: from, To: to, Next: from, FirstCopy: firstCopy},
		first: now + ms(p.u.hubRTTMS) + every, every: every, last: now, goneAt: -1, firstCopy: firstCopy,
	}
	s.stats.hubRequests++
}

// requestPeer sends l the range r; the seeder's upload is shared by the
// leechers it serves.
func (p *play) requestPeer(l *link, r peer.Range, now time.Duration) {
	bps := l.seeder.uploadBps / float64(max(l.seeder.uploads, 1))
	every := time.Duration(float64(p.s.chunkSize) / bps * float64(time.Second))
	gone := time.Duration(-1)
	if !l.seeder.online || l.seeder.name != l.name {
		gone = now
	}
	l.src = source{
		st:    peer.SourceState{Active: true, From: r.From, To: r.To, Next: r.From},
		first: now + ms(l.rttMS) + every, every: every, last: now, goneAt: gone,
	}
	if l.asked == 0 {
		l.asked = now
	}
}

// checkPeers drops links whose seeder went silent and marks slow ranges
// (peer/session.go checkPeers).
func (p *play) checkPeers(now time.Duration) {
	silence := max(p.s.media(p.s.alg.SourceTimeoutMS), ms(p.s.alg.SilenceRealMS))
	timeout := p.s.media(p.s.alg.SourceTimeoutMS)
	kept := p.peers[:0]
	for _, l := range p.peers {
		gone := !l.seeder.online || l.seeder.name != l.name
		switch {
		case gone && now-l.src.last > timeout:
			p.unlink(l)
			continue
		case l.got == 0 && l.asked > 0 && now-l.asked > silence:
			p.unlink(l)
			continue
		case l.src.st.Active && now-l.src.last > timeout:
			l.src.st.Active = false
			l.slowUntil = now + timeout
		}
		kept = append(kept, l)
	}
	p.peers = kept
}

// unlink ends a link: the seeder's upload slot is free again.
func (p *play) unlink(l *link) {
	if l.seeder.online && l.seeder.name == l.name {
		if !l.open {
			p.s.tr.ReleaseUpload(l.name)
		}
		l.seeder.uploads--
		for i, x := range l.seeder.serving {
			if x == l {
				l.seeder.serving = append(l.seeder.serving[:i], l.seeder.serving[i+1:]...)
				break
			}
		}
	}
}

// wantsPeers mirrors peer/session.go wantsPeers (without probing open pairs).
func (p *play) wantsPeers(now time.Duration) bool {
	s := p.s
	if s.sc.UploadCap == 0 || p.looking || p.probing > 0 || len(p.peers)+p.linking >= s.alg.MaxSources || now < p.nextLook || now < p.u.backoffUntil {
		return false
	}
	if len(p.peers) == 0 {
		return true
	}
	for _, l := range p.peers {
		if now < l.slowUntil {
			return true
		}
	}
	pos := p.pb.Position()
	for c := peer.FirstMissing(p.present, p.tl.ChunkAt(pos)); c < p.tl.Len() && p.tl.Start(c) < pos+s.alg.Sched.InOrderMS; c++ {
		if p.present[c] {
			continue
		}
		held := false
		for _, l := range p.peers {
			if h := l.holding(); h == nil || h[c] {
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

// waiting mirrors peer/session.go waiting: the start waits for a search.
func (p *play) waiting(now time.Duration) bool {
	if p.s.sc.UploadCap == 0 || p.pb.Started() || p.cold || now-p.t0 >= ms(p.s.alg.StartWaitRealMS) {
		return false
	}
	return p.looking || p.linking > 0 || p.probing > 0
}

// probe asks the listener's open pairs not asked yet in this play (peer
// links kept from earlier plays or opened since, in both directions:
// peer/session.go probe) whether they hold the track; a holder with a free
// upload slot serves at once, with no tracker lookup and no new link.
func (p *play) probe() {
	s := p.s
	if s.sc.UploadCap == 0 {
		return
	}
	for _, pr := range p.u.pairs {
		other, name := pr.u, pr.name
		if !other.online || other.name != name || slices.Contains(p.asked, other) {
			continue
		}
		p.asked = append(p.asked, other)
		rtt := (p.u.rttMS + other.rttMS) / 2
		p.probing++
		s.stats.probes++
		s.clock.after(ms(rtt), func() {
			p.probing--
			if p.done || !other.online || other.name != name || len(p.peers)+p.linking >= s.alg.MaxSources || other.uploads >= s.sc.UploadCap {
				p.wake()
				return
			}
			for _, l := range p.peers {
				if l.seeder == other {
					p.wake()
					return
				}
			}
			var has []bool
			switch {
			case other.cache.has(p.track):
			case other.play != nil && other.play.track == p.track && other.play.have > 0:
				has = append([]bool(nil), other.play.present...)
			default:
				p.wake()
				return
			}
			p.addLink(other, name, has, false, rtt, true)
			p.wake()
		})
	}
}

// addLink makes seeder a source of p.
func (p *play) addLink(seeder *user, name string, has []bool, relayed bool, rtt float64, open bool) {
	seeder.uploads++
	l := &link{seeder: seeder, name: name, has: has, relayed: relayed, rttMS: rtt, p: p, src: source{goneAt: -1}, open: open}
	seeder.serving = append(seeder.serving, l)
	p.peers = append(p.peers, l)
	if !open {
		p.s.stats.links++
		p.u.pair(seeder, name, p.s.alg.MaxPeerConns)
		seeder.pair(p.u, p.u.name, p.s.alg.MaxPeerConns)
	}
}

// startLookup asks the tracker for seeders.
func (p *play) startLookup(now time.Duration) {
	s := p.s
	if p.lookups >= s.alg.MaxLookups {
		p.nextLook = now + time.Hour
		return
	}
	p.looking = true
	p.lookups++
	p.nextLook = now + max(s.media(s.alg.LookupRetryMS), ms(s.alg.LookupRetryRealMS))
	exclude := make([]string, 0, len(p.peers))
	for _, l := range p.peers {
		exclude = append(exclude, l.name)
	}
	q := tracker.Query{
		Want:    min(s.alg.MaxSources-len(p.peers)-p.linking, 8),
		From:    peer.FirstMissing(p.present, p.tl.ChunkAt(p.pb.Position())),
		Partial: true,
		Exclude: exclude,
	}
	s.stats.lookups++
	// The lookup reaches the hub after half the listener's RTT to it.
	s.clock.after(ms(p.u.hubRTTMS/2), func() {
		if p.done {
			p.looking = false
			return
		}
		s.asking = p
		id, err := s.tr.LookupQuery(p.u.name, p.name, q)
		s.asking = nil
		if err != nil {
			p.looking = false
			return
		}
		if p.looking {
			s.lookups[id] = p
		}
	})
}

// lookupDone takes a lookup's result: each seeder found is linked (or the
// link fails: unreachable without TURN).
func (p *play) lookupDone(r tracker.Result) {
	s := p.s
	// The answer travels back to the listener.
	s.clock.after(ms(p.u.hubRTTMS/2), func() {
		p.looking = false
		if p.done {
			for _, name := range r.Seeders {
				s.tr.ReleaseUpload(name)
			}
			return
		}
		if len(r.Seeders) == 0 {
			if r.Reason == tracker.ReasonNoCandidates {
				p.cold = true
			}
			p.wake()
			return
		}
		s.stats.pairs += len(r.Seeders)
		for _, name := range r.Seeders {
			p.connect(name)
		}
		p.wake()
	})
}

// connect opens a link to seeder name: after the setup time, or it fails
// after LinkFailMS when the pair cannot connect directly and there is no
// TURN.
func (p *play) connect(name string) {
	s := p.s
	seeder := s.byName[name]
	if seeder == nil {
		s.tr.ReleaseUpload(name)
		return
	}
	p.linking++
	rtt := (p.u.rttMS + seeder.rttMS) / 2
	unreachable := float64(splitmix(uint64(p.u.idx)<<32^uint64(seeder.idx)^uint64(min(p.u.idx, seeder.idx))<<48)%1_000_000)/1_000_000 < s.sc.Network.Unreachable
	relayed := false
	if unreachable && s.sc.Network.TURN {
		rtt += s.sc.Network.TURNExtraRTTMS
		relayed = true
	}
	// Signaling through the hub, then ICE, DTLS and SCTP over the pair.
	setup := (p.u.hubRTTMS+seeder.hubRTTMS)/2 + s.sc.Network.LinkSetupRTTs*rtt + s.sc.Network.LinkSetupMS
	if unreachable && !relayed {
		s.clock.after(ms(s.sc.Network.LinkFailMS), func() {
			p.linking--
			s.stats.linkFails++
			if seeder.online && seeder.name == name {
				s.tr.ReleaseUpload(name)
			}
			p.u.linkFails++
			p.u.backoffUntil = s.clock.Elapsed() + s.media(s.alg.LookupBackoffMS(p.u.linkFails))
			p.wake()
		})
		return
	}
	s.clock.after(ms(setup), func() {
		p.linking--
		if !seeder.online || seeder.name != name {
			p.wake()
			return
		}
		if p.done {
			s.tr.ReleaseUpload(name)
			return
		}
		p.u.linkFails = 0
		p.u.backoffUntil = 0
		have, complete, ok := s.tr.Holding(name, p.name)
		var has []bool
		if ok && !complete {
			has = make([]bool, p.tl.Len())
			for c := range has {
				has[c] = have[c/8]&(0x80>>(c%8)) != 0
			}
		}
		p.addLink(seeder, name, has, relayed, rtt, false)
		p.wake()
	})
}

// pushHolding tells the tracker which chunks the listener holds, at most
// every HoldingIntervalRealMS.
func (p *play) pushHolding(now time.Duration) {
	s := p.s
	if !p.holdingDirty || s.sc.UploadCap == 0 || p.finished || now-p.lastHolding < ms(s.alg.HoldingIntervalRealMS) {
		return
	}
	p.holdingDirty = false
	p.lastHolding = now
	bits := make([]byte, (p.tl.Len()+7)/8)
	for c, ok := range p.present {
		if ok {
			bits[c/8] |= 0x80 >> (c % 8)
		}
	}
	if _, err := s.tr.HoldPartial(p.u.name, p.name, bits, p.tl.Len()); err == nil {
		s.stats.holds++
	}
}

// complete: every chunk is held. The listener's links end, its cache keeps
// the track and it seeds it as a complete holder.
func (p *play) complete() {
	s := p.s
	p.finished = true
	for _, l := range p.u.serving {
		if l.p.track == p.track {
			l.has = nil // the leechers it serves learn it holds every chunk
		}
	}
	for _, l := range p.peers {
		p.unlink(l)
	}
	p.peers = nil
	for _, ev := range p.u.cache.put(p.track, s.trackBytes(p.tl.Len())) {
		if s.sc.UploadCap > 0 {
			s.tr.Unhold(p.u.name, p.s.trackName(ev))
		}
	}
	if s.sc.UploadCap > 0 && p.u.cache.has(p.track) {
		if _, err := s.tr.Hold(p.u.name, p.name); err == nil {
			s.stats.holds++
		}
	}
}

// plan returns when the next step is due.
func (p *play) plan(now time.Duration) time.Duration {
	if p.finished {
		// Only the end of playback is left.
		return now + p.pb.UntilNeed(p.present) + time.Millisecond
	}
	next := now + stepEveryMS*time.Millisecond
	at := func(t time.Duration) {
		if t > now && t < next {
			next = t
		}
	}
	// The end of every range, and a silent source's timeout.
	for _, src := range p.sources() {
		if !src.st.Active {
			continue
		}
		end := src.arrival(src.st.To - 1)
		if src.goneAt >= 0 && end > src.goneAt {
			at(src.last + p.s.media(p.s.alg.SourceTimeoutMS) + time.Millisecond)
			continue
		}
		at(end)
	}
	// The playhead: at the emergency and rescue zones of the first missing
	// chunk, and when it reaches it (or, stalled, when it arrives).
	if p.pb.Started() {
		// Just inside each zone: the rules compare with < (at its edge,
		// the chunk is not in it yet).
		need := p.pb.UntilNeed(p.present)
		at(now + need - p.s.media(p.s.alg.Sched.EmergencyMS) + time.Millisecond)
		at(now + need - p.s.media(p.s.alg.Sched.RescueMS) + time.Millisecond)
		at(now + need)
		if need == 0 {
			c := peer.FirstMissing(p.present, p.tl.ChunkAt(p.pb.Position()))
			for _, src := range p.sources() {
				if src.st.Active && c >= src.st.Next && c < src.st.To {
					at(src.arrival(c))
				}
			}
		}
	} else {
		for _, src := range p.sources() {
			if src.st.Active && src.st.Next == 0 {
				at(src.arrival(0))
			}
		}
		at(p.t0 + ms(p.s.alg.StartWaitRealMS))
		at(p.t0 + ms(p.s.alg.StartRescueRealMS))
	}
	at(p.firstCopyHold)
	at(p.hubHold)
	at(p.nextLook)
	at(p.u.backoffUntil)
	if p.holdingDirty {
		at(p.lastHolding + ms(p.s.alg.HoldingIntervalRealMS))
	}
	return next
}

// sources returns the hub's and every link's range.
func (p *play) sources() []*source {
	out := make([]*source, 0, 1+len(p.peers))
	out = append(out, &p.hub)
	for _, l := range p.peers {
		out = append(out, &l.src)
	}
	return out
}

// stop ends the playback: complete (played to the end) or cut (the
// listener left).
func (p *play) stop(complete bool) {
	if p.done {
		return
	}
	p.done = true
	if p.step != nil {
		p.step.Stop()
	}
	for _, l := range p.peers {
		p.unlink(l)
	}
	p.peers = nil
	p.s.stats.ended(p, complete)
	if !p.finished && p.s.sc.UploadCap > 0 && p.u.online {
		p.s.tr.Unhold(p.u.name, p.name)
	}
	p.s.played(p.u, p, complete)
}
