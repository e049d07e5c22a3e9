package peer

import "time"

// Playback simulates an audio player over a chunked track. Once started, the
// media position advances at speed times real time while the chunk under it
// is present; reaching a missing chunk is a stall, which lasts until that
// chunk is present. The caller drives it with Advance.
type Playback struct {
	tl    *Timeline
	speed float64

	started bool
	pos     float64 // media position, ms
	last    time.Time
	stalled bool

	stalls      int
	stalledTime time.Duration
}

// NewPlayback returns a stopped playback of tl at speed times real time
// (speed ≤ 0 means 1).
func NewPlayback(tl *Timeline, speed float64) *Playback {
	if speed <= 0 {
		speed = 1
	}
	return &Playback{tl: tl, speed: speed}
}

// Start starts playing from position 0 at now. Calling it again does nothing.
func (p *Playback) Start(now time.Time) {
	if p.started {
		return
	}
	p.started = true
	p.last = now
}

// Started reports whether Start was called.
func (p *Playback) Started() bool { return p.started }

// Position returns the media position in ms.
func (p *Playback) Position() float64 { return p.pos }

// Done reports whether the whole track has been played.
func (p *Playback) Done() bool { return p.pos >= p.tl.TotalMS() }

// Stalled reports whether playback is waiting for a missing chunk.
func (p *Playback) Stalled() bool { return p.stalled }

// Stalls returns how many times playback reached a missing chunk.
func (p *Playback) Stalls() int { return p.stalls }

// StalledTime returns the real time spent stalled (an ongoing stall counts up
// to the last Advance).
func (p *Playback) StalledTime() time.Duration { return p.stalledTime }

// Advance moves the position to real time now, given which chunks are present.
func (p *Playback) Advance(now time.Time, present []bool) {
	if !p.started || p.Done() || !now.After(p.last) {
		return
	}
	if p.stalled {
		c := p.tl.ChunkAt(p.pos)
		if !present[c] {
			p.stalledTime += now.Sub(p.last)
			p.last = now
			return
		}
		p.stalled = false
		p.stalledTime += now.Sub(p.last)
		p.last = now
		return
	}
	budget := float64(now.Sub(p.last)) / float64(time.Millisecond) * p.speed
	t := p.last
	for budget > 0 && !p.Done() {
		c := p.tl.ChunkAt(p.pos)
		if !present[c] {
			p.stalled = true
			p.stalls++
			p.stalledTime += now.Sub(t)
			break
		}
		step := min(budget, p.tl.End(c)-p.pos)
		p.pos += step
		budget -= step
		t = t.Add(time.Duration(step / p.speed * float64(time.Millisecond)))
	}
	p.last = now
}

// UntilNeed returns the real time until the position reaches the first
// missing chunk at or after it (or the end), given the present chunks. It is
// 0 when stalled or not started.
func (p *Playback) UntilNeed(present []bool) time.Duration {
	if !p.started || p.stalled {
		return 0
	}
	ahead := p.tl.AheadMS(present, p.pos)
	return time.Duration(ahead / p.speed * float64(time.Millisecond))
}
