package peer

import (
	"sync"
	"time"
)

// lookupBackoff paces a peer's tracker lookups after peer links of its
// lookups failed to open (PROTOCOL.md §8.2): owned by the Peer, shared by
// its sessions, so that a new playback does not start with a burst of pair
// setups that the last ones showed will fail. Safe for concurrent use.
type lookupBackoff struct {
	alg   Algorithm // LookupRetryMS and LookupBackoffMaxMS
	speed float64   // media ms per real ms

	mu    sync.Mutex
	fails int       // links failed in a row
	until time.Time // no lookup before
}

func newLookupBackoff(retryMS, limitMS, speed float64) *lookupBackoff {
	return &lookupBackoff{alg: Algorithm{LookupRetryMS: retryMS, LookupBackoffMaxMS: limitMS}, speed: speed}
}

// failed records a link that did not open at now.
func (b *lookupBackoff) failed(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fails++
	wait := time.Duration(b.alg.LookupBackoffMS(b.fails) / b.speed * float64(time.Millisecond))
	b.until = later(b.until, now.Add(wait))
}

// opened records a link that opened: lookups are paced as usual again.
func (b *lookupBackoff) opened() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fails = 0
	b.until = time.Time{}
}

// holds reports whether lookups must still wait at now.
func (b *lookupBackoff) holds(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return now.Before(b.until)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
