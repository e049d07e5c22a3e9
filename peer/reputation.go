package peer

import (
	"strings"
	"sync"
)

// maxBadPeers bounds the remote peers remembered as bad.
const maxBadPeers = 256

// reputation remembers the remote peers caught misbehaving (bounded, the
// oldest forgotten first) and which of them were reported for which track.
// It is safe for concurrent use.
type reputation struct {
	mu       sync.Mutex
	bad      map[string]bool
	order    []string
	reported map[string]bool // remote + "/" + track
}

func newReputation() *reputation {
	return &reputation{bad: make(map[string]bool), reported: make(map[string]bool)}
}

// isBad reports whether remote was remembered as bad.
func (r *reputation) isBad(remote string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad[remote]
}

// mark remembers remote as bad when remember is set, and reports whether
// remote is to be reported for track now: once per remote and track.
func (r *reputation) mark(remote, track string, remember bool) bool {
	key := remote + "/" + track
	r.mu.Lock()
	defer r.mu.Unlock()
	if remember && !r.bad[remote] {
		if len(r.order) >= maxBadPeers {
			old := r.order[0]
			r.order = r.order[1:]
			delete(r.bad, old)
			for k := range r.reported {
				if strings.HasPrefix(k, old+"/") {
					delete(r.reported, k)
				}
			}
		}
		r.bad[remote] = true
		r.order = append(r.order, remote)
	}
	if r.reported[key] {
		return false
	}
	if len(r.reported) < 4*maxBadPeers {
		r.reported[key] = true
	}
	return true
}
