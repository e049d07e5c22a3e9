package hub

import (
	"sync"
	"time"
)

// maxCopyMarks bounds the chunk marks firstCopies keeps over all tracks.
// When it is full, first-copy requests are served in full (the safe side).
const maxCopyMarks = 1 << 16

// firstCopies remembers which connected peer the hub last sent each chunk
// to, and when, so that first-copy requests (chunkproto.Request.FirstCopy)
// get only chunks no other connected peer received recently: the hub sends
// each cold chunk to about one peer of a swarm, which the others then fetch
// it from (PROTOCOL.md §8.4). Marks expire after ttl or when their peer
// disconnects. It is safe for concurrent use.
type firstCopies struct {
	ttl    time.Duration
	stripe int

	mu    sync.Mutex
	marks map[copyKey]copyMark
}

type copyKey struct {
	track string
	seq   int
}

type copyMark struct {
	peer string
	at   time.Time
}

func newFirstCopies(ttl time.Duration, stripe int) *firstCopies {
	return &firstCopies{ttl: ttl, stripe: stripe, marks: make(map[copyKey]copyMark)}
}

// note records that the hub sent chunk seq of track to peer at now.
func (f *firstCopies) note(track string, seq int, peer string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := copyKey{track, seq}
	if _, ok := f.marks[k]; !ok && len(f.marks) >= maxCopyMarks {
		f.sweep(now)
		if len(f.marks) >= maxCopyMarks {
			return
		}
	}
	f.marks[k] = copyMark{peer: peer, at: now}
}

// claim returns the part of [from, to) the hub sends peer as first copies:
// the first run of chunks not sent to another connected peer within ttl, at
// most stripe chunks (empty when there is none).
func (f *firstCopies) claim(track string, from, to int, peer string, connected func(string) bool, now time.Time) (int, int) {
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

// sweep drops expired marks. f.mu must be held.
func (f *firstCopies) sweep(now time.Time) {
	for k, m := range f.marks {
		if now.Sub(m.at) >= f.ttl {
			delete(f.marks, k)
		}
	}
}
