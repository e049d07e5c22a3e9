package origin

import (
	"container/list"
	"context"
	"errors"
	"path"
	"sync"
	"time"

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

// coverReadsPerFetch: a client may have the hub read this many covers again
// for each track fetch it may start (a page shows many covers per play).
const coverReadsPerFetch = 10

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
	return o.rereadCover(ctx, sha, err)
}

// rereadCover reads the tags of a catalogued file whose cover is sha again
// (one Range read: it does not fetch the track). The reads are bounded:
// maxCoverReads at once, each client's by coverLimits, and a picture not
// found is not looked for again for failedFor. notFound is the answer when
// no file has it.
func (o *Origin) rereadCover(ctx context.Context, sha string, notFound error) (string, []byte, error) {
	var it Item
	found := false
	o.mu.Lock()
	if f, ok := o.coverFailed[sha]; ok && time.Now().Before(f.until) {
		o.mu.Unlock()
		return "", nil, notFound
	}
	for id := range o.coverOf[sha] {
		if e := o.entries[id]; e != nil {
			it, found = e.item, true
			break
		}
	}
	var err error
	if found {
		err = o.coverLimits.take(store.RequesterOf(ctx), time.Now())
	}
	o.mu.Unlock()
	if !found {
		return "", nil, notFound
	}
	if err != nil {
		return "", nil, &fetchError{file: path.Base(it.URL.Path), err: err}
	}
	select {
	case o.coverSlots <- struct{}{}:
		defer func() { <-o.coverSlots }()
	case <-ctx.Done():
		return "", nil, ctx.Err()
	}
	if mime, data, ok := o.covers.get(sha); ok { // read by another request meanwhile
		return mime, data, nil
	}
	_, rerr := o.readTags(ctx, it) // puts the cover it finds in o.covers
	if mime, data, ok := o.covers.get(sha); ok {
		return mime, data, nil
	}
	if ctx.Err() == nil {
		o.log.Info("origin: cover not read again", "url", it.URL.Redacted(), "err", rerr)
		o.mu.Lock()
		now := time.Now()
		forgetExpired(o.coverFailed, now)
		if len(o.coverFailed) < o.cfg.MaxEntries {
			o.coverFailed[sha] = failure{err: rerr, until: now.Add(failedFor)}
		}
		o.mu.Unlock()
	}
	return "", nil, notFound
}

// indexCover records e's cover in coverOf; o.mu is held.
func (o *Origin) indexCover(e *entry) {
	sha := e.summary.Cover
	if sha == "" {
		return
	}
	ids := o.coverOf[sha]
	if ids == nil {
		ids = make(map[string]struct{})
		o.coverOf[sha] = ids
	}
	ids[e.id] = struct{}{}
}

// unindexCover undoes indexCover; o.mu is held.
func (o *Origin) unindexCover(e *entry) {
	sha := e.summary.Cover
	if ids := o.coverOf[sha]; ids != nil {
		delete(ids, e.id)
		if len(ids) == 0 {
			delete(o.coverOf, sha)
		}
	}
}
