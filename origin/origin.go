// Package origin puts Ztream in front of an existing HTTP origin: a server
// (object storage, a CDN, another music server) whose index, an M3U or M3U8
// playlist, names the audio files. The hub does not own the music: it
// catalogues the files by reading their tags with Range requests, fetches a
// track on its first play, cuts it into chunks (transcoding it when it is
// not an MP3) and keeps it in its track store as a cache with a size bound
// and LRU eviction. Listeners are then served by peers and by that cache, so
// the origin sees at most one fetch per track per cache lifetime.
//
// An Origin is a store.Store: it wraps the cache store, and the hub and the
// HTTP API use it as their library. Everything an origin sends is bounded
// (the index's size and entries, redirects, bodies, time), and a file that
// fails (missing, changed, truncated, too slow, not audio) gives a clear
// error and never a stored chunk.
package origin

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/store"
	"github.com/ztream/ztream/transcode"
)

// Defaults of Config.
const (
	DefaultCacheBytes    = 2 << 30 // bytes of tracks kept
	DefaultRefresh       = 10 * time.Minute
	DefaultFetchTimeout  = 2 * time.Minute
	DefaultMaxTrackBytes = 1 << 30  // bytes of one file
	DefaultMaxIndexBytes = 16 << 20 // bytes of the index
	DefaultMaxEntries    = 100_000  // files in the index
	DefaultWorkers       = 8        // files catalogued at once
	DefaultMaxFetches    = 8        // tracks fetched at once
	DefaultClientFetches = 12       // tracks one client may have fetched a minute
	headerTimeout        = 15 * time.Second
	tagsTimeout          = 20 * time.Second
	tagsHead             = 256 << 10 // bytes read for the tags, first try
	tagsHeadMax          = 4 << 20   // and at most, when the tags are longer
	failedFor            = 30 * time.Second
	firstRetry           = 5 * time.Second // an index never read: tried again after 5, 10, 20... s
	progressEvery        = 5 * time.Second
)

// Metrics is told what the origin does; nil tells nothing. The kinds of
// fetch are "index", "tags" and "track".
type Metrics interface {
	OriginFetched(kind string, bytes int64, d time.Duration)
	OriginError(reason string)
	// OriginCacheRequest: result is "hit" (the track is in the cache),
	// "miss" (this request fetches it) or "joined" (it waits for a fetch
	// under way).
	OriginCacheRequest(result string)
	OriginCacheSize(bytes int64, tracks int)
	OriginEvicted()
}

// Config configures an Origin.
type Config struct {
	// Index is the http or https URL of the M3U/M3U8 playlist.
	Index string
	// Store is the cache: fetched tracks and covers go there. Tracks it
	// holds that the origin did not bring (ingested locally) stay listed.
	Store store.Store
	// Transcoder transcodes files that are not MP3s; nil catalogues MP3s
	// only, and the others are skipped with one log line (NoTranscoder says
	// why).
	Transcoder   *transcode.Transcoder
	NoTranscoder error
	// CacheBytes bounds the tracks kept (their chunk bytes); the least
	// recently used go first.
	CacheBytes int64
	// Refresh is how often the index is read again (new and removed files;
	// cached files are checked for changes).
	Refresh time.Duration
	// FetchTimeout bounds one track's fetch and transcode.
	FetchTimeout time.Duration
	// MaxTrackBytes bounds one file; MaxIndexBytes and MaxEntries the index.
	MaxTrackBytes int64
	MaxIndexBytes int64
	MaxEntries    int
	// Workers bounds the files catalogued at once.
	Workers int
	// MaxFetches bounds the tracks fetched from the origin at once; as many
	// again may wait for a turn, and a play of yet another track not cached
	// is refused (ErrBusy) until one ends: listeners cannot make the hub
	// download the whole origin at once.
	MaxFetches int
	// ClientFetches bounds the tracks not cached that one client (its
	// address: store.WithRequester) may have the hub fetch a minute, as
	// many at once; past it the client gets ErrRateLimited (store.ErrLimited)
	// until its count refills. A listener cannot keep the fetch slots to
	// itself. 0 is DefaultClientFetches, negative no bound.
	ClientFetches int
	// CatalogFile, when set, is where the catalog is kept across restarts
	// (JSON, written after each refresh that changed it and at the end of
	// Run). A restart lists its files at once and reads the tags only of
	// the files it does not name (and, as every refresh, of the cached
	// ones); a file that changed meanwhile is found out on its first play.
	CatalogFile string
	// TempDir holds fetched files while they are cut ("" = os.TempDir()).
	TempDir string
	// Client, if set, replaces the bounded HTTP client (tests).
	Client  *http.Client
	Logger  *slog.Logger
	Metrics Metrics
	// OnChange is called after the catalog changed.
	OnChange func()
}

// entry is a catalogued file.
type entry struct {
	item         Item
	id           string
	etag         string
	lastModified string
	size         int64 // -1 when the origin did not say
	summary      media.Summary
}

// flight is a fetch under way; done closes when m or err is set.
type flight struct {
	done chan struct{}
	m    *media.Manifest
	err  error
}

// failure is a fetch (or a cover read) that failed, remembered for failedFor.
type failure struct {
	err   error
	until time.Time
}

// cached is a track in the cache, an element of Origin.lru.
type cached struct {
	id   string
	size int64
}

// Origin catalogues an origin's files and serves them from its cache store.
// It is a store.Store (safe for concurrent use); Run keeps the catalog.
type Origin struct {
	store.Store             // the cache, for what Origin does not override
	cache       store.Store // the same, named where Origin reads or writes it itself
	cfg         Config
	index       *url.URL
	client      *http.Client
	log         *slog.Logger
	// tag marks the cache's tracks (media.Manifest.Origin).
	tag string

	mu         sync.Mutex
	entries    map[string]*entry // by track id
	byURL      map[string]*entry
	inflight   map[string]*flight
	failed     map[string]failure
	lru        *list.List // of cached, most recent first
	lruByID    map[string]*list.Element
	cacheBytes int64
	ctx        context.Context // Run's: fetches outlive the requests that start them
	loaded     bool            // an index was catalogued once

	fetchSlots chan struct{}  // MaxFetches
	background sync.WaitGroup // fetches and re-catalogues: Run waits for them
	closed     bool           // Run returned: no more background work
	// readers counts the open chunk iterators of each cached track: an
	// eviction spares them.
	readers map[string]int
	// deleting holds the evictions under way, closed when the track is
	// out of the store: a fetch of that track waits for it.
	deleting map[string]chan struct{}
	covers   *coverCache   // the catalog's covers, in memory
	limits   *clientLimits // the fetches each client started (ClientFetches)
	// catalogGen counts the catalog's changes; savedGen is the count
	// CatalogFile was written at.
	catalogGen, savedGen uint64
	restored             int // entries CatalogFile gave at start
	// coverOf finds the entries whose cover is a picture (by its SHA-256);
	// coverFailed remembers the pictures a read failed to find, for
	// failedFor; coverLimits counts each client's reads (ClientFetches ×
	// coverReadsPerFetch); coverSlots bounds them at once.
	coverOf     map[string]map[string]struct{}
	coverFailed map[string]failure
	coverLimits *clientLimits
	coverSlots  chan struct{}
}

// New checks cfg and returns the Origin; Run catalogues it.
func New(cfg Config) (*Origin, error) {
	u, err := url.Parse(cfg.Index)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("origin: %q is not an http or https URL", cfg.Index)
	}
	if cfg.Store == nil {
		return nil, errors.New("origin: no store")
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.MaxTrackBytes <= 0 {
		cfg.MaxTrackBytes = DefaultMaxTrackBytes
	}
	if cfg.MaxIndexBytes <= 0 {
		cfg.MaxIndexBytes = DefaultMaxIndexBytes
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.MaxFetches <= 0 {
		cfg.MaxFetches = DefaultMaxFetches
	}
	if cfg.ClientFetches == 0 {
		cfg.ClientFetches = DefaultClientFetches
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	client := cfg.Client
	if client == nil {
		client = newClient(u, headerTimeout)
	}
	sum := sha256.Sum256([]byte(u.String()))
	return &Origin{
		Store: cfg.Store, cache: cfg.Store, cfg: cfg, index: u, client: client,
		log: cfg.Logger.With("origin", u.Redacted()), tag: "origin:" + hex.EncodeToString(sum[:8]),
		entries: make(map[string]*entry), byURL: make(map[string]*entry),
		inflight: make(map[string]*flight), failed: make(map[string]failure),
		lru: list.New(), lruByID: make(map[string]*list.Element), ctx: context.Background(),
		fetchSlots: make(chan struct{}, cfg.MaxFetches),
		readers:    make(map[string]int), deleting: make(map[string]chan struct{}),
		covers: newCoverCache(maxCatalogCoverBytes), limits: newClientLimits(cfg.ClientFetches),
		coverOf: make(map[string]map[string]struct{}), coverFailed: make(map[string]failure),
		coverLimits: newClientLimits(cfg.ClientFetches * coverReadsPerFetch), coverSlots: make(chan struct{}, maxCoverReads),
	}, nil
}

// Run finds the cache's tracks in the store, catalogues the index, and
// reads it again every Refresh until ctx ends; then it waits for the
// fetches under way, which end with it. A failed read is logged and tried
// again at the next refresh; the catalog keeps what it had.
func (o *Origin) Run(ctx context.Context) error {
	o.mu.Lock()
	o.ctx = ctx
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.closed = true // no background work starts after this
		o.mu.Unlock()
		o.background.Wait()
		o.save()
	}()
	if err := o.loadCache(ctx); err != nil {
		return fmt.Errorf("origin: reading the cache: %w", err)
	}
	if n, err := o.restoreCatalog(); err != nil {
		o.log.Warn("origin: catalog file not used", "err", err)
	} else if n > 0 {
		o.mu.Lock()
		o.restored = n
		o.savedGen = o.catalogGen // the file says as much
		o.mu.Unlock()
		o.log.Info("origin: catalog restored; only files it does not name are read", "file", o.cfg.CatalogFile, "tracks", n)
		o.changed()
	}
	retry := firstRetry
	for {
		wait := o.cfg.Refresh
		if err := o.refresh(ctx); err != nil && ctx.Err() == nil {
			o.log.Warn("origin: index not read; the catalog keeps what it had", "err", err)
			if !o.Status().Loaded {
				// Nothing catalogued yet: try again soon, then less often.
				wait, retry = min(retry, o.cfg.Refresh), retry*2
				o.log.Info("origin: reading the index again", "in", wait)
			}
		}
		o.save()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// save writes CatalogFile if the catalog changed, logging a failure.
func (o *Origin) save() {
	if err := o.saveCatalog(); err != nil {
		o.log.Warn("origin: catalog file not written; a restart reads every file's tags again", "err", err)
	}
}

// loadCache finds the tracks an earlier run cached (their Origin tag).
func (o *Origin) loadCache(ctx context.Context) error {
	list, err := o.cache.ListTracks(ctx)
	if err != nil {
		return err
	}
	for _, s := range list {
		m, err := o.cache.Manifest(ctx, s.ID)
		if err != nil || m.Origin != o.tag {
			continue
		}
		o.mu.Lock()
		o.addCached(m.ID, m.Size)
		o.mu.Unlock()
	}
	o.mu.Lock()
	o.report()
	if o.lru.Len() > 0 {
		o.log.Info("origin: cached tracks found", "tracks", o.lru.Len(), "bytes", o.cacheBytes)
	}
	victims := o.victims("") // --origin-cache may be smaller than last time
	o.mu.Unlock()
	for _, c := range victims {
		o.evict(ctx, c)
	}
	return nil
}

// refresh reads the index, catalogues its new files, forgets the files it
// no longer names, and checks the cached files for changes.
func (o *Origin) refresh(ctx context.Context) error {
	items, err := o.readIndex(ctx)
	if err != nil {
		return err
	}
	o.mu.Lock()
	known := make(map[string]*entry, len(o.byURL))
	for u, e := range o.byURL {
		known[u] = e
	}
	o.mu.Unlock()
	var todo []Item
	keep := make(map[string]bool, len(items))
	for _, it := range items {
		u := it.URL.String()
		keep[u] = true
		e, ok := known[u]
		if !ok {
			todo = append(todo, it)
			continue
		}
		if o.isCached(e.id) {
			todo = append(todo, it) // checked: a changed file gets a new id
		}
	}
	changed := false
	o.mu.Lock()
	for u, e := range o.byURL {
		if !keep[u] {
			delete(o.byURL, u)
			delete(o.entries, e.id)
			o.unindexCover(e)
			o.catalogGen++
			changed = true
		}
	}
	o.mu.Unlock()
	grew, failed := o.catalog(ctx, todo)
	if grew || changed {
		o.changed()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if failed == 0 {
		// Every file named was catalogued: a cached track no entry has
		// is of a file gone or changed. (After a failure it may be the
		// failed file's: it waits for a refresh that reads it.)
		o.dropStale(ctx)
	}
	o.mu.Lock()
	o.loaded = true // after dropStale: a loaded catalog has no stale track cached
	n := len(o.entries)
	o.mu.Unlock()
	o.log.Info("origin: catalogued", "tracks", n, "index_entries", len(items))
	return nil
}

// readIndex fetches and parses the index, within its bounds.
func (o *Origin) readIndex(ctx context.Context) ([]Item, error) {
	ctx, cancel := context.WithTimeout(ctx, headerTimeout*2)
	defer cancel()
	start := time.Now()
	req, err := newRequest(ctx, o.index.String())
	if err != nil {
		return nil, err
	}
	resp, err := o.client.Do(req)
	if err != nil {
		err = timeoutErr(err, time.Since(start))
		o.metricError(err)
		return nil, fmt.Errorf("index %s: %w", o.index.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := statusError(resp)
		o.metricError(err)
		return nil, fmt.Errorf("index %s: %w", o.index.Redacted(), err)
	}
	if resp.ContentLength > o.cfg.MaxIndexBytes {
		err := fmt.Errorf("%w: the index has %d bytes, the bound is %d", ErrTooLarge, resp.ContentLength, o.cfg.MaxIndexBytes)
		o.metricError(err)
		return nil, err
	}
	data, err := readBounded(resp.Body, o.cfg.MaxIndexBytes)
	if err != nil {
		err = timeoutErr(err, time.Since(start))
		o.metricError(err)
		return nil, fmt.Errorf("index %s: %w (the bound is %d bytes)", o.index.Redacted(), err, o.cfg.MaxIndexBytes)
	}
	o.metricFetched("index", int64(len(data)), time.Since(start))
	items, skipped := ParseM3U(resp.Request.URL, data, o.cfg.MaxEntries)
	if o.cfg.Transcoder == nil {
		kept := items[:0]
		untranscoded := 0
		for _, it := range items {
			if it.Format == "MP3" {
				kept = append(kept, it)
			} else {
				untranscoded++
			}
		}
		items = kept
		if untranscoded > 0 {
			why := o.cfg.NoTranscoder
			if why == nil {
				why = errors.New("no transcoder configured")
			}
			o.log.Warn("origin: files that need ffmpeg skipped", "count", untranscoded, "reason", why)
		}
	}
	if skipped.Total() > 0 {
		o.log.Warn("origin: index entries skipped", "other_host", skipped.OtherHost, "not_audio", skipped.NotAudio,
			"invalid", skipped.Invalid, "duplicate", skipped.Duplicate, "over_limit", skipped.OverLimit,
			"max_entries", o.cfg.MaxEntries, "example", skipped.Example)
	}
	return items, nil
}

// catalog reads the tags of items on Workers goroutines and adds them;
// it reports whether the catalog changed and how many files failed.
func (o *Origin) catalog(ctx context.Context, items []Item) (grew bool, failures int) {
	if len(items) == 0 {
		return false, 0
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		done     int
		failed   int
		changed  bool // since OnChange was last called
		lastLog  = time.Now()
		lastTell = time.Now()
	)
	next := make(chan Item)
	for range min(o.cfg.Workers, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				e, err := o.readTags(ctx, it)
				mu.Lock()
				done++
				if err != nil {
					failed++
					if ctx.Err() == nil {
						o.log.Warn("origin: file not catalogued", "url", it.URL.Redacted(), "err", err)
					}
				} else if o.add(e) {
					changed, grew = true, true
				}
				if time.Since(lastLog) >= progressEvery {
					lastLog = time.Now()
					o.log.Info("origin: cataloguing", "done", done, "of", len(items), "failed", failed)
				}
				if changed && time.Since(lastTell) >= progressEvery {
					lastTell = time.Now()
					changed = false
					o.changed() // the catalog grows while it is read
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, it := range items {
		select {
		case next <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return grew, failed
}

// add puts e in the catalog, replacing the entry of its URL; it reports
// whether anything changed.
func (o *Origin) add(e *entry) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	u := e.item.URL.String()
	if old, ok := o.byURL[u]; ok {
		if old.id == e.id {
			return false
		}
		delete(o.entries, old.id)
		o.unindexCover(old)
		o.log.Info("origin: file changed; catalogued under a new id", "url", e.item.URL.Redacted(), "old", old.id, "new", e.id)
	}
	o.byURL[u] = e
	o.entries[e.id] = e
	o.indexCover(e)
	o.catalogGen++
	return true
}

// dropStale deletes the cached tracks of files the index no longer names
// (or that changed), once an index was catalogued; tracks being fetched or
// read wait for a later refresh.
func (o *Origin) dropStale(ctx context.Context) {
	o.mu.Lock()
	var stale []cached
	for id, el := range o.lruByID {
		if _, ok := o.entries[id]; !ok && o.inflight[id] == nil && o.readers[id] == 0 {
			stale = append(stale, o.takeOut(el))
		}
	}
	o.mu.Unlock()
	for _, c := range stale {
		o.evict(ctx, c)
	}
	if len(stale) > 0 {
		o.log.Info("origin: cached tracks of files gone or changed dropped", "tracks", len(stale))
	}
}

// changed tells OnChange.
func (o *Origin) changed() {
	if o.cfg.OnChange != nil {
		o.cfg.OnChange()
	}
}

// trackID is the id of a catalogued file: its URL and what the origin said
// of its version, so a changed file is a new track.
func trackID(it Item, etag, lastModified string, size int64, bitrate int) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{"ztream origin v1", it.URL.String(), etag, lastModified,
		strconv.FormatInt(size, 10), it.Format, strconv.Itoa(bitrate)}, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// idOf is the track id of it at version v: trackID with the bitrate the
// file is transcoded at (0 for an MP3).
func (o *Origin) idOf(it Item, v version) string {
	bitrate := 0
	if it.Format != "MP3" {
		bitrate = o.bitrate()
	}
	return trackID(it, v.etag, v.lastModified, v.size, bitrate)
}

// bitrate is the transcoder's bitrate, part of the ids of the files it
// transcodes (0 without one).
func (o *Origin) bitrate() int {
	if o.cfg.Transcoder == nil {
		return 0
	}
	return o.cfg.Transcoder.Bitrate()
}

// ListTracks lists the catalog and the store's own tracks (not the
// cache's), sorted as store.SortSummaries sorts.
func (o *Origin) ListTracks(ctx context.Context) ([]media.Summary, error) {
	own, err := o.cache.ListTracks(ctx)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	out := make([]media.Summary, 0, len(o.entries)+len(own))
	for _, s := range own {
		_, cachedHere := o.lruByID[s.ID]
		_, catalogued := o.entries[s.ID] // cached by another hub on the same store
		if !cachedHere && !catalogued {
			out = append(out, s)
		}
	}
	for _, e := range o.entries {
		out = append(out, e.summary)
	}
	o.mu.Unlock()
	store.SortSummaries(out)
	return out, nil
}

// Manifest returns a track's manifest: from the cache, or fetched from the
// origin on a catalogued file's first play (waiting for it within ctx).
func (o *Origin) Manifest(ctx context.Context, id string) (*media.Manifest, error) {
	o.mu.Lock()
	e := o.entries[id]
	o.mu.Unlock()
	if e == nil {
		return o.cache.Manifest(ctx, id)
	}
	return o.ensure(ctx, e, true)
}

// Summary returns a track's catalog entry without fetching it (it is a
// store.Cataloger): covers and "does the hub have it" do not fetch tracks.
func (o *Origin) Summary(ctx context.Context, id string) (media.Summary, error) {
	o.mu.Lock()
	e := o.entries[id]
	var sum media.Summary
	if e != nil {
		sum = e.summary // a fetch rewrites it, under o.mu
	}
	o.mu.Unlock()
	if e != nil {
		return sum, nil
	}
	return store.SummaryOf(ctx, o.cache, id)
}

// ReadChunks reads a track's chunks from the cache, fetching a catalogued
// file first when it is not there.
func (o *Origin) ReadChunks(ctx context.Context, id string, from, to int) (store.ChunkIterator, error) {
	o.mu.Lock()
	e := o.entries[id]
	o.mu.Unlock()
	if e == nil {
		return o.cache.ReadChunks(ctx, id, from, to)
	}
	if _, err := o.ensure(ctx, e, false); err != nil {
		return nil, err
	}
	o.mu.Lock()
	o.readers[id]++ // spared by evictions until closed
	o.mu.Unlock()
	it, err := o.cache.ReadChunks(ctx, id, from, to)
	if err != nil {
		o.unread(id)
		return nil, err
	}
	return &readerIterator{ChunkIterator: it, done: func() { o.unread(id) }}, nil
}

// unread ends one reader of a track.
func (o *Origin) unread(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.readers[id]--; o.readers[id] <= 0 {
		delete(o.readers, id)
	}
}

// readerIterator tells its Origin when it is closed.
type readerIterator struct {
	store.ChunkIterator
	once sync.Once
	done func()
}

func (it *readerIterator) Close() error {
	it.once.Do(it.done)
	return it.ChunkIterator.Close()
}

// DeleteTrack removes a track from the store and from the cache's account.
func (o *Origin) DeleteTrack(ctx context.Context, id string) error {
	err := o.cache.DeleteTrack(ctx, id)
	o.mu.Lock()
	if el, ok := o.lruByID[id]; ok {
		o.removeCached(el)
		o.report()
	}
	o.mu.Unlock()
	return err
}

func (o *Origin) isCached(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.lruByID[id]
	return ok
}

// ensure returns e's manifest, fetching the file when the cache does not
// hold it. One fetch per track runs at a time; a failed one is not tried
// again for failedFor. Starting a fetch counts against the requester's
// ClientFetches; joining one or a cache hit does not. count: the request
// is a play's (a manifest), told to Metrics; a chunk read is not.
func (o *Origin) ensure(ctx context.Context, e *entry, count bool) (*media.Manifest, error) {
	o.mu.Lock()
	if el, ok := o.lruByID[e.id]; ok {
		o.lru.MoveToFront(el)
		o.mu.Unlock()
		m, err := o.cache.Manifest(ctx, e.id)
		if err == nil {
			if count {
				o.metricCache("hit")
			}
			return m, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		o.mu.Lock() // gone from the store meanwhile: fetch again
		if el, ok := o.lruByID[e.id]; ok {
			o.removeCached(el)
		}
	}
	if f, ok := o.failed[e.id]; ok && time.Now().Before(f.until) {
		o.mu.Unlock()
		return nil, f.err
	}
	f, joined := o.inflight[e.id]
	if !joined {
		if o.closed {
			o.mu.Unlock()
			return nil, &fetchError{file: path.Base(e.item.URL.Path), err: fmt.Errorf("%w: the hub is shutting down", ErrBusy)}
		}
		if len(o.inflight) >= 2*o.cfg.MaxFetches {
			o.mu.Unlock()
			o.metricError(ErrBusy)
			return nil, &fetchError{file: path.Base(e.item.URL.Path), err: fmt.Errorf("%w: %d tracks are being fetched", ErrBusy, 2*o.cfg.MaxFetches)}
		}
		if err := o.limits.take(store.RequesterOf(ctx), time.Now()); err != nil {
			o.mu.Unlock()
			o.metricError(err)
			return nil, &fetchError{file: path.Base(e.item.URL.Path), err: err}
		}
		f = &flight{done: make(chan struct{})}
		o.inflight[e.id] = f
		o.background.Add(1)
		go func() {
			defer o.background.Done()
			o.fetch(e, f)
		}()
	}
	o.mu.Unlock()
	switch {
	case !count:
	case joined:
		o.metricCache("joined")
	default:
		o.metricCache("miss")
	}
	select {
	case <-f.done:
		return f.m, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fetch brings e's file into the cache and ends f. It runs on its own
// context (Run's, with FetchTimeout): a listener who leaves does not waste
// the fetch for the next one.
func (o *Origin) fetch(e *entry, f *flight) {
	o.mu.Lock()
	parent := o.ctx
	deleting := o.deleting[e.id] // an eviction of this very track, under way
	o.mu.Unlock()
	ctx, cancel := context.WithTimeout(parent, o.cfg.FetchTimeout)
	defer cancel()
	start := time.Now()
	if deleting != nil {
		select {
		case <-deleting:
		case <-ctx.Done():
		}
	}
	var m *media.Manifest
	var err error
	stored, serr := o.cache.Manifest(ctx, e.id)
	fromStore := serr == nil && stored.Origin == o.tag
	if fromStore {
		// Another hub in front of this origin, on the same store, fetched
		// it since this one started: the origin is not asked again.
		m = stored
	} else {
		select {
		case o.fetchSlots <- struct{}{}:
			m, err = o.fetchTrack(ctx, e)
			<-o.fetchSlots
		case <-ctx.Done():
			err = fmt.Errorf("waiting for a turn to fetch: %w", ctx.Err())
		}
	}
	if err != nil {
		err = &fetchError{file: path.Base(e.item.URL.Path), err: err}
	}
	o.mu.Lock()
	delete(o.inflight, e.id)
	if err != nil {
		o.failed[e.id] = failure{err: err, until: time.Now().Add(failedFor)}
		forgetExpired(o.failed, time.Now())
	} else {
		delete(o.failed, e.id)
		o.addCached(m.ID, m.Size)
		if cur, ok := o.entries[e.id]; ok {
			o.unindexCover(cur)
			cur.summary = m.Summary() // the exact duration, from the audio
			o.indexCover(cur)
			o.catalogGen++
		}
	}
	victims := o.victims(e.id)
	o.report()
	o.mu.Unlock()
	f.m, f.err = m, err
	close(f.done)
	if err != nil {
		o.metricError(err)
		o.log.Warn("origin: track not fetched", "url", e.item.URL.Redacted(), "id", e.id, "err", err)
		if errors.Is(err, ErrChanged) {
			o.mu.Lock()
			if !o.closed {
				o.background.Add(1)
				go func() {
					defer o.background.Done()
					o.recatalog(e.item)
				}()
			}
			o.mu.Unlock()
		}
		return
	}
	if fromStore {
		o.log.Info("origin: track found in the store, fetched by another hub", "url", e.item.URL.Redacted(), "id", e.id)
	} else {
		o.log.Info("origin: track fetched", "url", e.item.URL.Redacted(), "id", e.id, "bytes", m.Size,
			"format", e.item.Format, "took", time.Since(start).Round(time.Millisecond))
	}
	for _, c := range victims {
		o.evict(parent, c)
	}
}

// recatalog reads a changed file's tags again: it gets its new id.
func (o *Origin) recatalog(it Item) {
	o.mu.Lock()
	ctx := o.ctx
	o.mu.Unlock()
	if grew, _ := o.catalog(ctx, []Item{it}); grew {
		o.changed()
	}
}

// forgetExpired deletes the failures of m whose time is up (o.failed and
// o.coverFailed, under o.mu).
func forgetExpired(m map[string]failure, now time.Time) {
	for k, f := range m {
		if now.After(f.until) {
			delete(m, k)
		}
	}
}

// addCached accounts a track in the cache as the most recent; o.mu is held.
func (o *Origin) addCached(id string, size int64) {
	if el, ok := o.lruByID[id]; ok {
		o.lru.MoveToFront(el)
		return
	}
	o.lruByID[id] = o.lru.PushFront(cached{id: id, size: size})
	o.cacheBytes += size
}

// removeCached forgets a cached track; o.mu is held.
func (o *Origin) removeCached(el *list.Element) {
	c := o.lru.Remove(el).(cached)
	delete(o.lruByID, c.id)
	o.cacheBytes -= c.size
}

// victims picks the least recently used tracks to evict until the cache
// fits CacheBytes, sparing keep, fetches under way and tracks being read;
// o.mu is held. They leave the account now, marked deleting, and the store
// in evict.
func (o *Origin) victims(keep string) []cached {
	var out []cached
	for el := o.lru.Back(); el != nil && o.cacheBytes > o.cfg.CacheBytes; {
		prev := el.Prev()
		c := el.Value.(cached)
		if c.id != keep && o.inflight[c.id] == nil && o.readers[c.id] == 0 {
			out = append(out, o.takeOut(el))
		}
		el = prev
	}
	return out
}

// takeOut removes a cached track from the account and marks it deleting;
// o.mu is held.
func (o *Origin) takeOut(el *list.Element) cached {
	c := el.Value.(cached)
	o.removeCached(el)
	o.deleting[c.id] = make(chan struct{})
	return c
}

// evict deletes a track taken out of the account from the store; a fetch
// of it meanwhile waits for this. A delete that fails puts it back in the
// account: it is still in the store.
func (o *Origin) evict(ctx context.Context, c cached) {
	err := o.cache.DeleteTrack(ctx, c.id)
	o.mu.Lock()
	if done, ok := o.deleting[c.id]; ok {
		delete(o.deleting, c.id)
		close(done)
	}
	failed := err != nil && !errors.Is(err, store.ErrNotFound)
	if failed {
		o.addCached(c.id, c.size)
	}
	o.report()
	o.mu.Unlock()
	if failed {
		o.log.Warn("origin: evicting a cached track failed", "id", c.id, "err", err)
		return
	}
	if o.cfg.Metrics != nil {
		o.cfg.Metrics.OriginEvicted()
	}
}

// report tells Metrics the cache's size; o.mu is held.
func (o *Origin) report() {
	if o.cfg.Metrics != nil {
		o.cfg.Metrics.OriginCacheSize(o.cacheBytes, o.lru.Len())
	}
}

func (o *Origin) metricFetched(kind string, n int64, d time.Duration) {
	if o.cfg.Metrics != nil {
		o.cfg.Metrics.OriginFetched(kind, n, d)
	}
}

func (o *Origin) metricError(err error) {
	if o.cfg.Metrics != nil {
		o.cfg.Metrics.OriginError(Reason(err))
	}
}

func (o *Origin) metricCache(result string) {
	if o.cfg.Metrics != nil {
		o.cfg.Metrics.OriginCacheRequest(result)
	}
}

// Status is what an Origin has done so far.
type Status struct {
	Index        string `json:"index"`
	Loaded       bool   `json:"loaded"` // an index was catalogued (and, if every file was, stale tracks dropped)
	Tracks       int    `json:"tracks"`
	CachedTracks int    `json:"cached_tracks"`
	CachedBytes  int64  `json:"cached_bytes"`
	Fetching     int    `json:"fetching"`
	Restored     int    `json:"restored"` // tracks the catalog file gave at start
}

// Status returns what the Origin has done so far.
func (o *Origin) Status() Status {
	o.mu.Lock()
	defer o.mu.Unlock()
	return Status{Index: o.index.Redacted(), Loaded: o.loaded, Tracks: len(o.entries),
		CachedTracks: o.lru.Len(), CachedBytes: o.cacheBytes, Fetching: len(o.inflight), Restored: o.restored}
}
