package hub

import "github.com/ztream/ztream/internal/pionlog"

// Internals that the tests of package hub_test check. The tests are an
// external package so that they can use hub/hubtest, which imports hub.

// PionLevel is pionlog.Level: the level a Pion log line is logged at.
var PionLevel = pionlog.Level

// ActiveRanges returns the chunk ranges in flight over all peers.
func (h *Hub) ActiveRanges() int64 { return h.activeRanges.Load() }

// Draining reports whether Shutdown started.
func (h *Hub) Draining() bool { return h.draining.Load() }

// Tracked returns what the hub tracks: its open connections (before hello
// too), the client addresses it counts, and the accepted requests on /ws not
// yet finished.
func (h *Hub) Tracked() (conns, addrs, open int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns), len(h.perIP), h.open
}

// Connected reports whether peer id is connected (after hello).
func (h *Hub) Connected(id string) bool { return h.connected(id) }

// TURNCredential is turnCredential, for tests.
var TURNCredential = turnCredential
