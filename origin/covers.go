package origin

import (
	"container/list"
	"context"
	"sync"
)

// maxCatalogCoverBytes bounds the catalog's covers held in memory. They are
// not written to the store (an origin that renames its files at every
// refresh would grow it without end); a track's cover goes there with the
// track, on its first play.
const maxCatalogCoverBytes = 64 << 20

// coverCache holds pictures by SHA-256, least recently used out first.
type coverCache struct {
	mu    sync.Mutex
	max   int
	bytes int
	lru   *list.List // of *coverItem, most recent first
	bySHA map[string]*list.Element
}

type coverItem struct {
	sha, mime string
	data      []byte
}

func newCoverCache(maxBytes int) *coverCache {
	return &coverCache{max: maxBytes, lru: list.New(), bySHA: make(map[string]*list.Element)}
}

func (c *coverCache) put(sha, mime string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.bySHA[sha]; ok {
		c.lru.MoveToFront(el)
		return
	}
	if len(data) > c.max {
		return
	}
	c.bySHA[sha] = c.lru.PushFront(&coverItem{sha: sha, mime: mime, data: data})
	c.bytes += len(data)
	for c.bytes > c.max {
		old := c.lru.Remove(c.lru.Back()).(*coverItem)
		delete(c.bySHA, old.sha)
		c.bytes -= len(old.data)
	}
}

func (c *coverCache) get(sha string) (string, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.bySHA[sha]
	if !ok {
		return "", nil, false
	}
	c.lru.MoveToFront(el)
	it := el.Value.(*coverItem)
	return it.mime, it.data, true
}

// Cover returns a picture: one the catalog read, else the store's.
func (o *Origin) Cover(ctx context.Context, sha string) (string, []byte, error) {
	if mime, data, ok := o.covers.get(sha); ok {
		return mime, data, nil
	}
	return o.cache.Cover(ctx, sha)
}
