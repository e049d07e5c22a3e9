package peer

import (
	"container/list"
	"sync"

	"github.com/ztream/ztream/media"
)

// CachedTrack is a complete, verified track held in the cache.
type CachedTrack struct {
	Manifest *media.Manifest
	// Chunks holds chunk seq's bytes at index seq; it must not be modified.
	Chunks [][]byte
}

func (t *CachedTrack) size() int64 { return t.Manifest.Size }

// Cache is an LRU cache of complete tracks bounded by their total size in
// bytes. It is safe for concurrent use.
type Cache struct {
	mu    sync.Mutex
	max   int64
	used  int64
	ll    *list.List // front = most recently used; values are *CachedTrack
	items map[string]*list.Element
}

// NewCache returns a cache holding at most maxBytes of audio.
func NewCache(maxBytes int64) *Cache {
	return &Cache{max: maxBytes, ll: list.New(), items: make(map[string]*list.Element)}
}

// Get returns the track and marks it recently used.
func (c *Cache) Get(id string) (*CachedTrack, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[id]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*CachedTrack), true
}

// Peek returns the track without changing its recency.
func (c *Cache) Peek(id string) (*CachedTrack, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[id]
	if !ok {
		return nil, false
	}
	return e.Value.(*CachedTrack), true
}

// Put adds t, evicting least recently used tracks to stay within the bound.
// A track larger than the whole cache is not kept. It returns the ids evicted.
func (c *Cache) Put(t *CachedTrack) (evicted []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := t.Manifest.ID
	if e, ok := c.items[id]; ok {
		c.used -= e.Value.(*CachedTrack).size()
		c.ll.Remove(e)
		delete(c.items, id)
	}
	if t.size() > c.max {
		return nil
	}
	for c.used+t.size() > c.max {
		e := c.ll.Back()
		old := e.Value.(*CachedTrack)
		c.ll.Remove(e)
		delete(c.items, old.Manifest.ID)
		c.used -= old.size()
		evicted = append(evicted, old.Manifest.ID)
	}
	c.items[id] = c.ll.PushFront(t)
	c.used += t.size()
	return evicted
}

// IDs returns the cached track ids, most recently used first.
func (c *Cache) IDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.items))
	for e := c.ll.Front(); e != nil; e = e.Next() {
		ids = append(ids, e.Value.(*CachedTrack).Manifest.ID)
	}
	return ids
}

// Used returns the bytes held.
func (c *Cache) Used() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}
