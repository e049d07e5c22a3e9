package hub

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ztream/ztream/store"
)

// trackShape is what the hub needs of a manifest to check requests, lookups
// and holdings: the number of chunks and the size in bytes.
type trackShape struct {
	chunks int
	size   int64
}

// maxCachedShapes bounds the hub's shapeCache.
const maxCachedShapes = 4096

// shapeCache remembers the shape of recently used tracks, so that lookups,
// holdings, have and chunk requests do not read the store each time (a
// track id names immutable content). It is bounded: the oldest entry goes
// first. Failed reads are not cached.
type shapeCache struct {
	st      store.Store
	timeout time.Duration

	mu    sync.Mutex
	m     map[string]trackShape
	order []string // insertion order, a ring of len ≤ maxCachedShapes
	next  int
}

func newShapeCache(st store.Store, timeout time.Duration) *shapeCache {
	return &shapeCache{st: st, timeout: timeout, m: make(map[string]trackShape)}
}

// known reports whether the hub can serve track: its shape is cached or
// readable, or (a store.Cataloger: an origin's catalog) the track is
// catalogued, which does not fetch it.
func (c *shapeCache) known(ctx context.Context, track string) bool {
	c.mu.Lock()
	_, ok := c.m[track]
	c.mu.Unlock()
	if ok {
		return true
	}
	if _, isCatalog := c.st.(store.Cataloger); isCatalog {
		mctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		_, err := store.SummaryOf(mctx, c.st, track)
		return err == nil
	}
	_, err := c.get(ctx, track)
	return err == nil
}

// get returns the shape of track, reading its manifest from the store (within
// the store timeout) when it is not cached. store.ErrNotFound is wrapped
// for an unknown track.
func (c *shapeCache) get(ctx context.Context, track string) (trackShape, error) {
	c.mu.Lock()
	s, ok := c.m[track]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	mctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	m, err := c.st.Manifest(mctx, track)
	if err != nil {
		return trackShape{}, fmt.Errorf("manifest %s: %w", track, err)
	}
	s = trackShape{chunks: len(m.Chunks), size: m.Size}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[track]; ok {
		return s, nil
	}
	if len(c.order) < maxCachedShapes {
		c.order = append(c.order, track)
	} else {
		delete(c.m, c.order[c.next])
		c.order[c.next] = track
		c.next = (c.next + 1) % maxCachedShapes
	}
	c.m[track] = s
	return s, nil
}
