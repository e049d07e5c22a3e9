package peer

import (
	"slices"
	"sync"
	"time"
)

// slot is an upload slot held by one remote peer.
type slot struct {
	// pairIDs are the pairs the hub counts against it (none for a slot taken
	// by a direct have/request on an existing connection).
	pairIDs []string
	last    time.Time
}

// uploadSlots are the peer's upload slots, one per remote peer it serves,
// at most its upload cap (except slots the hub forced by pairing). It is
// safe for concurrent use.
type uploadSlots struct {
	cap, maxPairs int

	mu sync.Mutex
	m  map[string]*slot // by remote peer id
}

func newUploadSlots(capacity, maxPairs int) *uploadSlots {
	return &uploadSlots{cap: capacity, maxPairs: maxPairs, m: make(map[string]*slot)}
}

// available reports whether remote holds a slot or one is free ("" asks
// for a free one).
func (u *uploadSlots) available(remote string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.m[remote]; ok && remote != "" {
		return true
	}
	return len(u.m) < u.cap
}

// holds reports whether remote holds a slot.
func (u *uploadSlots) holds(remote string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.m[remote]
	return ok
}

// acquire gives remote a slot if it has none and one is free; force takes
// one even over the cap (the hub paired us: it counted it). pairID, when
// set, is a pair the hub counts against the slot.
func (u *uploadSlots) acquire(remote, pairID string, force bool) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, ok := u.m[remote]
	if !ok {
		if !force && len(u.m) >= u.cap {
			return false
		}
		s = &slot{}
		u.m[remote] = s
	}
	s.last = time.Now()
	if pairID != "" && len(s.pairIDs) < u.maxPairs {
		s.pairIDs = append(s.pairIDs, pairID)
	}
	return true
}

// touch marks remote's slot as used now.
func (u *uploadSlots) touch(remote string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if s, ok := u.m[remote]; ok {
		s.last = time.Now()
	}
}

// release frees remote's slot and returns the pairs counted against it.
func (u *uploadSlots) release(remote string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, ok := u.m[remote]
	if !ok {
		return nil
	}
	delete(u.m, remote)
	return s.pairIDs
}

// forgetPair drops pair id from remote's slot (the hub stopped counting
// it), and the slot with it when it was the slot's only reason.
func (u *uploadSlots) forgetPair(remote, id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if s := u.m[remote]; s != nil {
		s.pairIDs = slices.DeleteFunc(s.pairIDs, func(x string) bool { return x == id })
		if len(s.pairIDs) == 0 {
			delete(u.m, remote)
		}
	}
}

// idle returns the remotes whose slot was not used for d.
func (u *uploadSlots) idle(now time.Time, d time.Duration) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for remote, s := range u.m {
		if now.Sub(s.last) > d {
			out = append(out, remote)
		}
	}
	return out
}

// clear frees every slot (the hub connection ended).
func (u *uploadSlots) clear() {
	u.mu.Lock()
	defer u.mu.Unlock()
	clear(u.m)
}
