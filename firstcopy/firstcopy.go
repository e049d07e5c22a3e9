// Package firstcopy is the hub's memory of first copies: which connected
// peer it last sent each chunk to, and when, so that a first-copy request
// (chunkproto.Request.FirstCopy) gets only chunks no other connected peer
// received recently. The hub sends each cold chunk to about one peer of a
// swarm, which the others then fetch it from (PROTOCOL.md §8.4). The hub
// and the simulator (package sim) use it.
package firstcopy

import (
	"sync"
	"time"
)

// MaxMarks bounds the chunk marks a Copies keeps over all tracks. When it
// is full, first-copy requests are served in full (the safe side).
const MaxMarks = 1 << 16

// Copies remembers which connected peer the hub last sent each chunk to,
// and when. Marks expire after their ttl or when their peer disconnects. It
// is safe for concurrent use.
type Copies struct {
	ttl    time.Duration
	stripe int

	mu    sync.Mutex
	marks map[copyKey]copyMark
	// order lists the notes in time order from head on, so that marks
	// expire in amortized O(1) per note (a sweep of every mark per note
	// was O(MaxMarks) once the map was full: at 10,000 listeners the
	// simulator spent 92 % of its time there).
	order []queued
	head  int
}

// queued is one note in time order.
type queued struct {
	k  copyKey
	at time.Time
}

type copyKey struct {
	track string
	seq   int
}

type copyMark struct {
	peer string
	at   time.Time
}

// New returns a Copies whose marks last ttl, granting at most stripe
// chunks to one first-copy request.
func New(ttl time.Duration, stripe int) *Copies {
	return &Copies{ttl: ttl, stripe: stripe, marks: make(map[copyKey]copyMark)}
}

// Note records that the hub sent chunk seq of track to peer at now (calls
// come in time order). When MaxMarks marks are live, the note is dropped:
// that chunk is then served in full to the next first-copy request (the
// safe side).
func (f *Copies) Note(track string, seq int, peer string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expire(now)
	k := copyKey{track, seq}
	if _, ok := f.marks[k]; !ok && len(f.marks) >= MaxMarks {
		return
	}
	if len(f.order)-f.head >= 2*MaxMarks {
		return // the same chunks noted again and again: keep the queue bounded
	}
	f.marks[k] = copyMark{peer: peer, at: now}
	f.order = append(f.order, queued{k, now})
}

// Claim returns the part of [from, to) the hub sends peer as first copies:
// the first run of chunks not sent to another connected peer within ttl, at
// most stripe chunks (empty when there is none).
func (f *Copies) Claim(track string, from, to int, peer string, connected func(string) bool, now time.Time) (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	taken := func(seq int) bool {
		m, ok := f.marks[copyKey{track, seq}]
		return ok && m.peer != peer && now.Sub(m.at) < f.ttl && connected(m.peer)
	}
	start := from
	for start < to && taken(start) {
		start++
	}
	end := start
	for end < to && end-start < f.stripe && !taken(end) {
		end++
	}
	return start, end
}

// expire drops the marks older than ttl, oldest first (a mark noted again
// since is kept). f.mu must be held.
func (f *Copies) expire(now time.Time) {
	for f.head < len(f.order) && now.Sub(f.order[f.head].at) >= f.ttl {
		q := f.order[f.head]
		f.order[f.head] = queued{}
		f.head++
		if m, ok := f.marks[q.k]; ok && m.at.Equal(q.at) {
			delete(f.marks, q.k)
		}
	}
	if f.head > 1024 && f.head > len(f.order)/2 {
		n := copy(f.order, f.order[f.head:])
		clear(f.order[n:])
		f.order = f.order[:n]
		f.head = 0
	}
}

// Len returns the marks kept.
func (f *Copies) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.marks)
}
