// Package sim is Ztream's swarm simulator: a discrete-event simulation, in
// virtual time, of many listeners playing tracks through one swarm.
//
// The decisions are the real code's:
//   - the hub's tracker (package tracker, on the simulation's Clock) keeps
//     the holders of each track and pairs leechers with seeders;
//   - the hub's first-copy memory (package firstcopy) decides which chunks a
//     first-copy request gets;
//   - every playback's requests come from peer.Schedule with the constants
//     of peer.DefaultAlgorithm, on a peer.Timeline, and a peer.Playback plays
//     it (start, stalls);
//   - lookups back off as peer.Algorithm.LookupBackoffMS says.
//
// Only the outside world is modelled: listeners (arrivals with a daily
// curve, sessions of several tracks, Zipf popularity and favourites,
// persistent LRU caches, churn), links (upload bandwidth and RTT drawn per
// listener, pairs that cannot connect, TURN) and time. What the Go peer's
// session does around Schedule (when it looks up peers, waits for them at
// the start, notices a silent source) is re-told here in virtual time
// (play.go), following peer/session.go.
//
// A run is deterministic: one goroutine, one seeded random source, events
// ordered by time and then by the order they were scheduled.
package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/ztream/ztream/firstcopy"
	"github.com/ztream/ztream/peer"
	"github.com/ztream/ztream/tracker"
)

// chunkMS is a chunk's duration: 38 MP3 frames of 1,152 samples at 44.1 kHz.
const chunkMS = 38 * 1152 * 1000 / 44100.0

// trackID is a catalog index (tracks are named "t<index>" at the tracker).
type trackID int32

// user is one listener, online or not. Its cache outlives its sessions.
type user struct {
	idx       int
	name      string // peer id at the tracker while online
	hub       int    // the hub it is connected to while online
	uploadBps float64
	rttMS     float64
	hubRTTMS  float64
	favs      []trackID
	cache     *lru
	online    bool
	session   int // sessions so far (a new peer id each)
	left      int // tracks left in this session
	uploads   int // leechers served now
	serving   []*link
	play      *play
	flash     bool
	loader    bool // a peer of a load run
	// pairs are the peer links kept open (most recent last), at most
	// MaxPeerConns: a new play asks them first (probe).
	pairs []pairRef
	// linkFails counts the peer links in a row that failed to open; no
	// lookup before backoffUntil (peer.Algorithm.LookupBackoffMS).
	linkFails    int
	backoffUntil time.Duration
}

// pairRef is an open pair: the other side, by its peer id then.
type pairRef struct {
	u    *user
	name string
}

// pair keeps a pair with other open (the most recent), forgetting the
// oldest beyond limit and those whose other side left.
func (u *user) pair(other *user, name string, limit int) {
	kept := u.pairs[:0]
	for _, pr := range u.pairs {
		if pr.u != other && pr.u.online && pr.u.name == pr.name {
			kept = append(kept, pr)
		}
	}
	u.pairs = append(kept, pairRef{other, name})
	if len(u.pairs) > limit {
		u.pairs = append(u.pairs[:0], u.pairs[len(u.pairs)-limit:]...)
	}
}

// Sim is one run.
type Sim struct {
	sc    Scenario
	clock *Clock
	rng   *rand.Rand
	zipf  *rand.Zipf
	alg   peer.Algorithm
	tr    *tracker.Tracker
	// hubs are the hubs' first-copy memories and, for each, whether a
	// peer is connected to it (firstcopy.Copies.Claim's question).
	hubs []hubState

	users  []*user
	byName map[string]*user
	// lengths caches a track's chunk count; timelines are shared by count.
	timelines map[int]*peer.Timeline
	chunkSize int
	// names holds each track's name, made at its first use: the tracker
	// keeps names as keys, so each is allocated once.
	names []string
	// albumBase is the first catalog index of the flash crowd's album
	// (beyond the catalog: nobody holds it).
	albumBase trackID

	// Progress, if set, is called once a simulated minute with the
	// simulated time, the listeners online and the events run; Stop, if
	// set, ends the run early when it returns true (checked after every
	// event).
	Progress func(at time.Duration, online int, events uint64)
	Stop     func() bool

	// sched and sources are Schedule's buffers, reused by every step
	// (one goroutine runs the simulation).
	sched   peer.SchedScratch
	sources []peer.PeerSource
	lookups map[string]*play // pending tracker lookups by id
	asking  *play            // the play calling LookupQuery
	offline []int            // users not online, for arrivals
	stats   stats
}

// New prepares a run of sc.
func New(sc Scenario) (*Sim, error) {
	if err := sc.Check(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	s := &Sim{
		sc:        sc,
		clock:     NewClock(time.Unix(1_700_000_000, 0).UTC()),
		rng:       rand.New(rand.NewPCG(sc.Seed, sc.Seed^0x9e3779b97f4a7c15)),
		alg:       peer.DefaultAlgorithm(),
		byName:    make(map[string]*user),
		timelines: make(map[int]*peer.Timeline),
		chunkSize: int(float64(sc.Catalog.BitrateKbps) * chunkMS / 8),
		albumBase: trackID(sc.Catalog.Tracks),
		lookups:   make(map[string]*play),
	}
	s.zipf = rand.NewZipf(s.rng, sc.Catalog.ZipfS, 1, uint64(sc.Catalog.Tracks-1))
	s.tr = tracker.New(tracker.Config{Clock: s.clock}, asker{s}, s.onLookup)
	for h := range sc.Hubs {
		s.hubs = append(s.hubs, hubState{
			fc: firstcopy.New(20*time.Second, 8),
			connected: func(name string) bool {
				u := s.byName[name]
				return u != nil && u.hub == h
			},
		})
	}
	s.stats.init(s)
	return s, nil
}

// hubState is what one hub decides alone: its first-copy memory, which
// knows the peers connected to that hub only (hub/sender.go).
type hubState struct {
	fc        *firstcopy.Copies
	connected func(peer string) bool
}

// asker answers the tracker's can_upload questions after the seeder's RTT
// to the hub: yes while the seeder is online with a free upload slot (its
// slots serve pairs the tracker brokered and requests on pairs that were
// open already alike, as the Go peer's do).
type asker struct{ s *Sim }

// AskUpload implements tracker.Asker.
func (a asker) AskUpload(peerName, _, lookupID, requester string) bool {
	s := a.s
	u := s.byName[peerName]
	if u == nil {
		return false
	}
	s.stats.asks++
	wait := ms(u.hubRTTMS)
	if r := s.byName[requester]; r != nil && r.hub != u.hub {
		wait += ms(s.sc.Network.CrossHubMS)
		s.stats.crossHubAsks++
	}
	s.clock.after(wait, func() {
		s.tr.Reply(peerName, lookupID, u.online && u.name == peerName && u.uploads < s.sc.UploadCap)
	})
	return true
}

// speed returns how much faster than real time media plays (a load run's
// --speed; 1 for listeners).
func (s *Sim) speed() float64 { return max(s.sc.Speed, 1) }

// media converts media milliseconds into the real (virtual) time they take.
func (s *Sim) media(v float64) time.Duration { return ms(v / s.speed()) }

// ms converts milliseconds to a Duration.
func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// trackName is a track's id at the tracker.
func (s *Sim) trackName(t trackID) string {
	if int(t) >= len(s.names) {
		s.names = append(s.names, make([]string, int(t)+1-len(s.names))...)
	}
	if s.names[t] == "" {
		s.names[t] = "t" + strconv.Itoa(int(t))
	}
	return s.names[t]
}

// chunks returns the chunk count of track t: a length between MinSec and
// MaxSec that depends on t and the seed only.
func (s *Sim) chunks(t trackID) int {
	if l := s.sc.Load; l != nil && int(t) < len(l.TrackSec) {
		return max(int(math.Ceil(l.TrackSec[t]*1000/chunkMS)), 1)
	}
	h := splitmix(uint64(t) ^ s.sc.Seed<<20)
	sec := s.sc.Catalog.MinSec + float64(h%10_000)/10_000*(s.sc.Catalog.MaxSec-s.sc.Catalog.MinSec)
	return max(int(math.Ceil(sec*1000/chunkMS)), 1)
}

// timeline returns the (shared) timeline of a track of n chunks.
func (s *Sim) timeline(n int) *peer.Timeline {
	tl, ok := s.timelines[n]
	if !ok {
		tl = peer.NewUniformTimeline(n, chunkMS, s.chunkSize)
		s.timelines[n] = tl
	}
	return tl
}

// trackBytes is the size of a track of n chunks.
func (s *Sim) trackBytes(n int) int64 { return int64(n) * int64(s.chunkSize) }

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// pick draws a track from the catalog's popularity.
func (s *Sim) pick() trackID { return trackID(s.zipf.Uint64()) }

// user returns user i, made at its first use: a listener who never comes
// in the simulated time costs nothing.
func (s *Sim) user(i int) *user {
	if s.users[i] == nil {
		s.users[i] = s.newUser(i)
	}
	return s.users[i]
}

// newUser makes user i (its favourites drawn from the catalog).
func (s *Sim) newUser(i int) *user {
	n := s.sc.Network
	u := &user{
		idx:       i,
		uploadBps: n.UploadKbps.Draw(s.rng) * 1000 / 8,
		rttMS:     n.RTTMS.Draw(s.rng),
		hubRTTMS:  n.HubRTTMS.Draw(s.rng),
		cache:     newLRU(int64(s.sc.CacheMB * 1e6)),
	}
	if s.sc.Session.RepeatShare > 0 {
		seen := make(map[trackID]bool, s.sc.Session.Favourites)
		for len(u.favs) < s.sc.Session.Favourites && len(seen) < s.sc.Catalog.Tracks {
			t := s.pick()
			if !seen[t] {
				seen[t] = true
				u.favs = append(u.favs, t)
			}
		}
		if s.sc.WarmCache {
			for _, t := range u.favs {
				u.cache.put(t, s.trackBytes(s.chunks(t)))
			}
		}
	}
	return u
}

// listeners is the run's size: the mean listeners online, or a load run's
// peers, or a crowd's size when it is alone.
func (s *Sim) listeners() int {
	switch {
	case s.sc.Load != nil:
		return s.sc.Load.Peers
	case s.sc.Listeners == 0 && s.sc.Flash != nil:
		return s.sc.Flash.Listeners
	}
	return s.sc.Listeners
}

// rate returns the arrival rate (sessions per ms) at virtual time now:
// Listeners online on average, each for a session's mean length, times the
// daily curve at that hour.
func (s *Sim) rate(now time.Duration) float64 {
	return float64(s.sc.Listeners) / s.sessionMS() * s.curve(now)
}

// sessionMS is a session's mean length: a geometric number of tracks
// (mean MeanTracks), each ending it early with probability Churn, halfway
// through on average.
func (s *Sim) sessionMS() float64 {
	meanTrackMS := (s.sc.Catalog.MinSec + s.sc.Catalog.MaxSec) / 2 * 1000
	p, c := 1/s.sc.Session.MeanTracks, s.sc.Churn
	started := 1 / (p + c - p*c)
	return started * (1 - c/2) * meanTrackMS / s.speed()
}

// curve returns the daily curve's factor at virtual time now (mean 1).
func (s *Sim) curve(now time.Duration) float64 {
	if len(s.sc.DailyCurve) != 24 {
		return 1
	}
	mean := 0.0
	for _, v := range s.sc.DailyCurve {
		mean += v / 24
	}
	if mean <= 0 {
		return 0
	}
	h := int(math.Floor(s.sc.StartHour+now.Hours())) % 24
	return s.sc.DailyCurve[h] / mean
}

// Run simulates the scenario and returns its report.
func (s *Sim) Run() Report {
	start := time.Now()
	sc := s.sc
	nUsers := sc.Users
	if nUsers <= 0 {
		nUsers = 2 * sc.Listeners
	}
	if sc.Load != nil {
		nUsers = sc.Load.Peers
	}
	flash := 0
	if sc.Flash != nil {
		flash = sc.Flash.Listeners
		nUsers = max(nUsers, flash)
	}
	s.users = make([]*user, nUsers) // made at their first arrival (user)
	end := time.Duration(sc.Hours * float64(time.Hour))
	// The regular listeners: those online at the start (in the middle of
	// their sessions), then Poisson arrivals.
	regular := nUsers - flash
	if sc.Listeners > 0 && sc.Load == nil {
		perm := s.rng.Perm(regular)
		online := min(int(float64(sc.Listeners)*s.curve(0)), regular)
		for _, i := range perm[:online] {
			s.arrive(s.user(i), true)
		}
		s.offline = append(s.offline, perm[online:]...)
		s.scheduleArrival()
	}
	if l := sc.Load; l != nil {
		for i := range s.users {
			u := s.user(i)
			u.loader = true
			s.clock.after(ms(l.RampSec*1000*float64(i)/float64(len(s.users))), func() { s.arrive(u, false) })
		}
	}
	if sc.Flash != nil {
		for k := range flash {
			u := s.user(regular + k)
			u.flash = true
			at := ms(sc.Flash.AtMinute*60_000 + s.rng.Float64()*sc.Flash.Minutes*60_000)
			s.clock.after(at, func() { s.arrive(u, false) })
		}
	}
	sample := time.Minute
	var tick func()
	tick = func() {
		s.stats.sample()
		if s.Progress != nil {
			s.Progress(s.clock.Elapsed(), len(s.byName), s.clock.Processed)
		}
		s.clock.after(sample, tick)
	}
	s.clock.after(0, tick)
	s.clock.Run(end, s.Stop)
	return s.stats.report(time.Since(start))
}

// scheduleArrival schedules the next arrival of an offline user.
func (s *Sim) scheduleArrival() {
	r := s.rate(s.clock.Elapsed())
	if r <= 0 {
		s.clock.after(time.Minute, s.scheduleArrival)
		return
	}
	wait := s.rng.ExpFloat64() / r
	s.clock.after(ms(wait), func() {
		if len(s.offline) > 0 {
			k := s.rng.IntN(len(s.offline))
			i := s.offline[k]
			s.offline[k] = s.offline[len(s.offline)-1]
			s.offline = s.offline[:len(s.offline)-1]
			s.arrive(s.user(i), false)
		}
		s.scheduleArrival()
	})
}

// arrive brings u online: it joins the hub, announces its cache and plays
// a session (midway: a session already under way at the start).
func (s *Sim) arrive(u *user, midway bool) {
	u.online = true
	u.pairs = u.pairs[:0] // a new peer id: no pair survives
	u.session++
	u.name = "u" + strconv.Itoa(u.idx) + "." + strconv.Itoa(u.session)
	s.byName[u.name] = u
	u.hub = s.stats.joins % len(s.hubs)
	if err := s.tr.Join(u.name, s.sc.UploadCap); err != nil {
		panic(fmt.Sprintf("sim: join %s: %v", u.name, err)) // names are unique: not reached
	}
	s.stats.joins++
	if s.sc.UploadCap > 0 {
		if cached := u.cache.recent(256); len(cached) > 0 {
			names := make([]string, len(cached))
			for i, t := range cached {
				names[i] = s.trackName(t)
			}
			if _, err := s.tr.Hold(u.name, names...); err == nil {
				s.stats.holds++
			}
		}
	}
	switch {
	case u.loader:
		u.left = math.MaxInt32 // until the load run's duration
	case u.flash:
		u.left = s.sc.Flash.AlbumTracks
	default:
		p := 1 / s.sc.Session.MeanTracks
		u.left = 1 + int(math.Floor(math.Log(1-s.rng.Float64())/math.Log(1-p+1e-12)))
		if midway {
			u.left = 1 + s.rng.IntN(u.left)
		}
	}
	if midway {
		// Under way at the start: its current track began at some point of
		// the last one (starts are spread, not all at 0).
		meanTrackMS := (s.sc.Catalog.MinSec + s.sc.Catalog.MaxSec) / 2 * 1000
		s.clock.after(s.media(s.rng.Float64()*meanTrackMS), func() { s.next(u) })
		return
	}
	s.next(u)
}

// leave takes u offline (its session ended, or the tab closed).
func (s *Sim) leave(u *user) {
	if !u.online {
		return
	}
	u.online = false
	if u.play != nil {
		u.play.stop(false)
	}
	// Its uploads stop: the leechers notice after their source timeout.
	now := s.clock.Elapsed()
	for _, l := range u.serving {
		if l.src.goneAt < 0 {
			l.src.goneAt = now
		}
		l.p.wake()
	}
	u.serving = nil
	s.tr.Leave(u.name)
	delete(s.byName, u.name)
	u.uploads = 0
	if !u.flash {
		s.offline = append(s.offline, u.idx)
	}
}

// next plays u's next track, or ends its session.
func (s *Sim) next(u *user) {
	if !u.online {
		return
	}
	if u.left <= 0 || (u.loader && s.clock.Elapsed() >= ms(s.sc.Load.DurationSec*1000)) {
		s.leave(u)
		return
	}
	u.left--
	var t trackID
	switch {
	case u.flash:
		t = s.albumBase + trackID(s.sc.Flash.AlbumTracks-1-u.left)
	case len(u.favs) > 0 && s.rng.Float64() < s.sc.Session.RepeatShare:
		t = u.favs[s.rng.IntN(len(u.favs))]
	default:
		t = s.pick()
	}
	n := s.chunks(t)
	durMS := float64(n) * chunkMS
	// Churn: the tab closes at a uniform point of this track.
	churnAt := -1.0
	if s.rng.Float64() < s.sc.Churn {
		churnAt = s.rng.Float64() * durMS
	}
	if u.cache.touch(t) {
		s.stats.cachePlay(s.trackBytes(n))
		played := durMS
		if churnAt >= 0 {
			played = churnAt
		}
		s.clock.after(s.media(played), func() {
			if churnAt >= 0 {
				s.stats.churned++
				s.leave(u)
				return
			}
			s.next(u)
		})
		return
	}
	p := s.newPlay(u, t, n)
	u.play = p
	if churnAt >= 0 {
		p.churn = s.clock.after(s.media(churnAt)+ms(p.startWaitMS()), func() {
			s.stats.churned++
			s.leave(u)
		})
	}
	p.begin()
}

// played is called when u's network play ended (complete or not).
func (s *Sim) played(u *user, p *play, complete bool) {
	if u.play == p {
		u.play = nil
	}
	if p.churn != nil {
		p.churn.Stop()
	}
	if complete {
		s.next(u)
	}
}

// onLookup receives the tracker's lookup results (a lookup with no
// candidate ends inside LookupQuery: s.asking is its play then).
func (s *Sim) onLookup(r tracker.Result) {
	p, ok := s.lookups[r.LookupID]
	delete(s.lookups, r.LookupID)
	if !ok {
		p = s.asking
	}
	if p == nil || p.done {
		for _, seeder := range r.Seeders {
			s.tr.ReleaseUpload(seeder)
		}
		return
	}
	p.lookupDone(r)
}
