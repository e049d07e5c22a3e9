package origin

import (
	"container/list"
	"context"
	"errors"
	"sync"

	"github.com/ztream/ztream/store"
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

// maxCoverReads bounds the tag reads made at once for covers not in memory.
const maxCoverReads = 4

// Cover returns a picture: one the catalog read, else the store's, else
// (it left the memory, or the catalog was restored from CatalogFile) the
// one read again from the head of a catalogued file that has it.
func (o *Origin) Cover(ctx context.Context, sha string) (string, []byte, error) {
	if mime, data, ok := o.covers.get(sha); ok {
		return mime, data, nil
	}
	mime, data, err := o.cache.Cover(ctx, sha)
	if !errors.Is(err, store.ErrNotFound) {
		return mime, data, err
	}
	if mime, data, ok := o.rereadCover(ctx, sha); ok {
		return mime, data, nil
	}
	return "", nil, err
}

// rereadCover reads the tags of a catalogued file whose cover is sha again
// (one Range read: it does not fetch the track), one read per picture at a
// time and maxCoverReads at once.
func (o *Origin) rereadCover(ctx context.Context, sha string) (string, []byte, bool) {
	var it Item
	found := false
	o.mu.Lock()
	for _, e := range o.entries {
		if e.summary.Cover == sha {
			it, found = e.item, true
			break
		}
	}
	runCtx := o.ctx // the read outlives the request that started it: others may wait for it
	o.mu.Unlock()
	if !found {
		return "", nil, false
	}
	done := o.coverReads.DoChan(sha, func() (any, error) {
		select {
		case o.coverSlots <- struct{}{}:
			defer func() { <-o.coverSlots }()
		case <-runCtx.Done():
			return nil, runCtx.Err()
		}
		_, err := o.readTags(runCtx, it) // puts the cover it finds in o.covers
		if err != nil {
			o.log.Info("origin: cover not read again", "url", it.URL.Redacted(), "err", err)
		}
		return nil, err
	})
	select {
	case <-done:
	case <-ctx.Done():
		return "", nil, false
	}
	return o.covers.get(sha)
}
