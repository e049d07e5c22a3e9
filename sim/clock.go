package sim

import (
	"time"

	"github.com/ztream/ztream/tracker"
)

// event is one scheduled function. Events run in the order of their time,
// and events of the same time in the order they were scheduled (seq).
type event struct {
	at   time.Duration
	seq  uint64
	fn   func()
	dead bool
}

// Stop cancels the event; it reports whether it had not run yet
// (tracker.Timer).
func (e *event) Stop() bool {
	if e.dead {
		return false
	}
	e.dead = true
	return true
}

// queued is an event in the queue, with its order's keys beside it: the
// queue compares without reading the events.
type queued struct {
	at  time.Duration
	seq uint64
	e   *event
}

func (a queued) before(b queued) bool { return a.at < b.at || (a.at == b.at && a.seq < b.seq) }

// eventQueue is a 4-ary min-heap of events by (at, seq): shallower than a
// binary heap, so a pop moves fewer entries.
type eventQueue []queued

func (q *eventQueue) push(x queued) {
	h := append(*q, x)
	i := len(h) - 1
	for i > 0 {
		parent := (i - 1) / 4
		if !x.before(h[parent]) {
			break
		}
		h[i] = h[parent]
		i = parent
	}
	h[i] = x
	*q = h
}

// pop removes and returns the first event; the queue is not empty.
func (q *eventQueue) pop() queued {
	h := *q
	top, last := h[0], h[len(h)-1]
	h[len(h)-1] = queued{}
	h = h[:len(h)-1]
	if n := len(h); n > 0 {
		i := 0
		for {
			first := 4*i + 1
			if first >= n {
				break
			}
			least := first
			for c := first + 1; c < min(first+4, n); c++ {
				if h[c].before(h[least]) {
					least = c
				}
			}
			if !h[least].before(last) {
				break
			}
			h[i] = h[least]
			i = least
		}
		h[i] = last
	}
	*q = h
	return top
}

// Clock is the simulation's virtual time and its event queue. It is the
// tracker's clock too (tracker.Clock): the tracker's lookup timers are
// events. One goroutine runs it.
type Clock struct {
	base time.Time
	now  time.Duration
	seq  uint64
	q    eventQueue
	// Processed counts the events run.
	Processed uint64
}

// NewClock returns a clock at virtual time 0, which Now reports as base.
func NewClock(base time.Time) *Clock { return &Clock{base: base} }

// Now returns the virtual time as a time.Time (tracker.Clock).
func (c *Clock) Now() time.Time { return c.base.Add(c.now) }

// Elapsed returns the virtual time since the start.
func (c *Clock) Elapsed() time.Duration { return c.now }

// AfterFunc runs f after d of virtual time (tracker.Clock).
func (c *Clock) AfterFunc(d time.Duration, f func()) tracker.Timer { return c.after(d, f) }

// after schedules fn at d from now (d < 0 counts as 0) and returns its event.
func (c *Clock) after(d time.Duration, fn func()) *event {
	e := &event{at: c.now + max(d, 0), seq: c.seq, fn: fn}
	c.seq++
	c.q.push(queued{at: e.at, seq: e.seq, e: e})
	return e
}

// Run runs the events due up to until, in order, and leaves the clock at
// until. It returns early, with the clock at the last event run, when stop
// returns true after an event.
func (c *Clock) Run(until time.Duration, stop func() bool) {
	for len(c.q) > 0 {
		if c.q[0].at > until {
			break
		}
		e := c.q.pop().e
		if e.dead {
			continue
		}
		e.dead = true
		c.now = e.at
		c.Processed++
		e.fn()
		if stop != nil && stop() {
			return
		}
	}
	c.now = max(c.now, until)
}

// Pending returns the events in the queue (cancelled ones included).
func (c *Clock) Pending() int { return len(c.q) }
