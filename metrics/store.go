package metrics

import (
	"context"
	"time"

	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/store"
)

// InstrumentStore returns st with its reads timed into
// ztream_store_read_duration_seconds: every Manifest call (op="manifest") and
// every chunk pulled from a ReadChunks iterator (op="chunk": the time each
// successful Next takes, the first one including the ReadChunks call). Writes and other calls pass through untimed;
// a store.Cataloger stays one.
func (m *Metrics) InstrumentStore(st store.Store) store.Store {
	t := &timedStore{Store: st, m: m}
	if c, ok := st.(store.Cataloger); ok {
		return &timedCatalog{timedStore: t, c: c}
	}
	return t
}

type timedStore struct {
	store.Store
	m *Metrics
}

func (s *timedStore) Manifest(ctx context.Context, id string) (*media.Manifest, error) {
	start := time.Now()
	man, err := s.Store.Manifest(ctx, id)
	s.m.storeRead.WithLabelValues(OpManifest).Observe(time.Since(start).Seconds())
	return man, err
}

// timedCatalog is a timedStore over a store.Cataloger, which stays one.
type timedCatalog struct {
	*timedStore
	c store.Cataloger
}

// Summary passes the catalog lookup through, untimed.
func (s *timedCatalog) Summary(ctx context.Context, id string) (media.Summary, error) {
	return s.c.Summary(ctx, id)
}

func (s *timedStore) ReadChunks(ctx context.Context, id string, from, to int) (store.ChunkIterator, error) {
	start := time.Now()
	it, err := s.Store.ReadChunks(ctx, id, from, to)
	if err != nil {
		return nil, err
	}
	return &timedIterator{ChunkIterator: it, m: s.m, start: start}, nil
}

// timedIterator times each successful Next of the iterator it wraps.
type timedIterator struct {
	store.ChunkIterator
	m     *Metrics
	start time.Time
}

func (it *timedIterator) Next() bool {
	if it.start.IsZero() {
		it.start = time.Now()
	}
	ok := it.ChunkIterator.Next()
	if ok {
		it.m.StoreRead(time.Since(it.start))
	}
	it.start = time.Time{}
	return ok
}
