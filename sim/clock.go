package sim

import (
	"container/heap"
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
	idx  int
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

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *eventHeap) Push(x any) {
	e := x.(*event)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// Clock is the simulation's virtual time and its event queue. It is the
// tracker's clock too (tracker.Clock): the tracker's lookup timers are
// events. One goroutine runs it.
type Clock struct {
	base time.Time
	now  time.Duration
	seq  uint64
	q    eventHeap
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
	heap.Push(&c.q, e)
	return e
}

// Run runs the events due up to until, in order, and leaves the clock at
// until. It returns early, with the clock at the last event run, when stop
// returns true after an event.
func (c *Clock) Run(until time.Duration, stop func() bool) {
	for len(c.q) > 0 {
		e := c.q[0]
		if e.at > until {
			break
		}
		heap.Pop(&c.q)
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
