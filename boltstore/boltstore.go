// Package boltstore is the embedded default store.Store: one bbolt file,
// <dataDir>/ztream.db, holding the catalog and the chunk bytes.
//
// Why bbolt (go.etcd.io/bbolt): the workload is write-once at ingest and
// read-many while streaming, with small blobs (~16-32 KiB chunks) addressed by
// (track, seq). bbolt is a pure-Go, single-file, ACID B+tree with ordered keys
// on an mmap: with key = track id ‖ uint32 big-endian seq, a chunk range is a
// Cursor.Seek followed by Next calls; many readers run concurrently with one
// writer, there is no cgo, no compaction to tune and no server to operate. In
// the measurements of the shared storage notes (§5) it had the fastest point
// and range reads of bbolt, Pebble, SQLite and plain files, with the smallest
// binary cost. Its caveats: values are valid only inside a transaction (we
// copy them out), and the file does not shrink after deletes (`bbolt compact`).
//
// Layout (buckets):
//
//	tracks   id → manifest JSON (media.Manifest)
//	index    id → catalog entry JSON (summary + chunk count), so that listing
//	             and range validation do not decode whole manifests
//	chunks   id bytes ‖ uint32 BE seq → chunk bytes
//	pending  id → start time (RFC 3339) of a multi-transaction put in progress
//	covers   SHA-256 hex of a picture → content type length (1 byte) ‖ content
//	             type ‖ picture bytes (shared by the tracks of an album)
//
// Atomicity. A track is visible exactly when its index and tracks entries
// exist; both are written in the same transaction as (or after) its last
// chunk, so readers never see a partial track.
//
//   - A track whose chunks total at most the batch size (16 MiB by default,
//     which covers ordinary songs) is verified in memory and then written in
//     ONE bbolt transaction that also removes the previous version, so a
//     re-put replaces atomically and a failed put leaves the previous version
//     intact.
//   - bbolt keeps every dirty page of a write transaction in memory until
//     commit, so a larger track is written in several transactions of at most
//     the batch size each. The first one records the id in the pending bucket
//     and removes any previous version (manifest and chunks) of the track; the
//     last one writes the manifest and clears the pending marker. On failure
//     the chunks written so far and the marker are deleted; leftovers of a
//     crash are deleted by Open. Such a put therefore never exposes a partial
//     track, but during it, and after it fails, the previous version of that
//     track is absent rather than kept.
//
// Puts are serialized by a mutex (bbolt has one writer anyway). Range reads
// open a short read transaction per batch of 8 chunks and copy the values
// out, so a slow consumer never pins a transaction (and the file's old pages)
// for long and memory stays bounded by one batch.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/store"
)

// FileName is the name of the database file inside the data directory.
const FileName = "ztream.db"

// DefaultBatchBytes is the default maximum amount of chunk bytes written in
// one bbolt transaction.
const DefaultBatchBytes = 16 << 20

// readBatch is the number of chunks a range iterator copies per read transaction.
const readBatch = 8

var (
	bucketTracks  = []byte("tracks")
	bucketIndex   = []byte("index")
	bucketChunks  = []byte("chunks")
	bucketPending = []byte("pending")
	bucketCovers  = []byte("covers")
)

// Option configures Open.
type Option func(*config)

type config struct {
	batchBytes  int
	lockTimeout time.Duration
	logger      *slog.Logger
}

// WithBatchBytes sets the maximum chunk bytes per write transaction; tracks
// up to this size are written in a single transaction (default 16 MiB).
func WithBatchBytes(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.batchBytes = n
		}
	}
}

// WithLockTimeout sets how long Open waits for the file lock held by another
// process (default 1 s).
func WithLockTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.lockTimeout = d
		}
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// Store is a store.Store backed by a bbolt file. It is safe for concurrent use.
type Store struct {
	db  *bolt.DB
	cfg config
	// putMu serializes PutTrack: a multi-transaction put must not interleave
	// with another put of the same id.
	putMu sync.Mutex
}

var _ store.Store = (*Store)(nil)

// indexEntry is the value of the index bucket.
type indexEntry struct {
	media.Summary
	Chunks int `json:"chunks"`
}

// Open opens (creating if needed) dir and the database file dir/ztream.db,
// and deletes the leftovers of puts interrupted by a crash.
func Open(dir string, opts ...Option) (*Store, error) {
	cfg := config{batchBytes: DefaultBatchBytes, lockTimeout: time.Second, logger: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("boltstore: create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: cfg.lockTimeout, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: %s is locked (is another ztream running with --data %s?): %w", path, dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	s := &Store{db: db, cfg: cfg}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketTracks, bucketIndex, bucketChunks, bucketPending, bucketCovers} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	})
	if err == nil {
		err = s.cleanPending()
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: init %s: %w", path, err)
	}
	return s, nil
}

// cleanPending deletes what interrupted multi-transaction puts left behind.
func (s *Store) cleanPending() error {
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("list pending puts: %w", err)
	}
	for _, id := range ids {
		s.cfg.logger.Warn("boltstore: removing the leftovers of an interrupted put", "track", id)
		if err := s.discard(id); err != nil {
			return err
		}
	}
	return nil
}

// chunkKey returns id ‖ uint32 BE seq.
func chunkKey(id string, seq int) []byte {
	k := make([]byte, len(id)+4)
	copy(k, id)
	binary.BigEndian.PutUint32(k[len(id):], uint32(seq))
	return k
}

// isChunkOf reports whether key k is a chunk key of id (and not of a longer
// id that starts with the same bytes).
func isChunkOf(k []byte, id string) bool {
	return len(k) == len(id)+4 && string(k[:len(id)]) == id
}

// deleteChunks deletes up to limit chunk keys of id in tx (all when limit <= 0)
// and reports how many it deleted.
func deleteChunks(tx *bolt.Tx, id string, limit int) (int, error) {
	b := tx.Bucket(bucketChunks)
	var keys [][]byte
	c := b.Cursor()
	prefix := []byte(id)
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if isChunkOf(k, id) {
			keys = append(keys, bytes.Clone(k))
			if limit > 0 && len(keys) >= limit {
				break
			}
		}
	}
	// Deleting after the scan: a cursor must not be moved across deletions.
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, fmt.Errorf("delete chunk: %w", err)
		}
	}
	return len(keys), nil
}

// discard deletes every trace of id's uncommitted put: its chunks, its
// pending marker, and a manifest if one exists (none should).
func (s *Store) discard(id string) error {
	for {
		var n int
		err := s.db.Update(func(tx *bolt.Tx) error {
			var err error
			n, err = deleteChunks(tx, id, 4096)
			return err
		})
		if err != nil {
			return fmt.Errorf("boltstore: discard chunks of %s: %w", id, err)
		}
		if n == 0 {
			break
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketTracks, bucketIndex, bucketPending} {
			if err := tx.Bucket(b).Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("boltstore: discard %s: %w", id, err)
	}
	return nil
}

// commitManifest writes the manifest and catalog entry of m in tx and clears
// its pending marker: the commit point that makes the track visible.
func commitManifest(tx *bolt.Tx, m *media.Manifest, mj, ij []byte) error {
	if err := tx.Bucket(bucketTracks).Put([]byte(m.ID), mj); err != nil {
		return fmt.Errorf("put manifest: %w", err)
	}
	if err := tx.Bucket(bucketIndex).Put([]byte(m.ID), ij); err != nil {
		return fmt.Errorf("put catalog entry: %w", err)
	}
	if err := tx.Bucket(bucketPending).Delete([]byte(m.ID)); err != nil {
		return fmt.Errorf("clear pending marker: %w", err)
	}
	return nil
}

type pendingChunk struct {
	seq  int
	data []byte
}

// PutTrack stores m and its chunks atomically (see the package comment),
// replacing any previous version of the track.
func (s *Store) PutTrack(ctx context.Context, m *media.Manifest, chunks store.ChunkSource) error {
	if err := store.ValidateManifest(m); err != nil {
		return fmt.Errorf("boltstore: put: %w", err)
	}
	mj, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("boltstore: put %s: encode manifest: %w", m.ID, err)
	}
	ij, err := json.Marshal(indexEntry{Summary: m.Summary(), Chunks: len(m.Chunks)})
	if err != nil {
		return fmt.Errorf("boltstore: put %s: encode catalog entry: %w", m.ID, err)
	}
	s.putMu.Lock()
	defer s.putMu.Unlock()

	// next reads, copies and verifies the chunks of one batch.
	seq := 0
	next := func() ([]pendingChunk, error) {
		var batch []pendingChunk
		size := 0
		for seq < len(m.Chunks) && (len(batch) == 0 || size+m.Chunks[seq].Size <= s.cfg.batchBytes) {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("boltstore: put %s: %w", m.ID, err)
			}
			data, err := chunks(seq)
			if err != nil {
				return nil, fmt.Errorf("boltstore: put %s: read chunk %d: %w", m.ID, seq, err)
			}
			if err := store.CheckChunk(m, seq, data); err != nil {
				return nil, fmt.Errorf("boltstore: put: %w", err)
			}
			// bbolt keeps the value slice until commit: own a copy.
			batch = append(batch, pendingChunk{seq: seq, data: bytes.Clone(data)})
			size += len(data)
			seq++
		}
		return batch, nil
	}
	putBatch := func(tx *bolt.Tx, batch []pendingChunk) error {
		b := tx.Bucket(bucketChunks)
		for _, c := range batch {
			if err := b.Put(chunkKey(m.ID, c.seq), c.data); err != nil {
				return fmt.Errorf("put chunk %d: %w", c.seq, err)
			}
		}
		return nil
	}

	first, err := next()
	if err != nil {
		return err
	}
	if seq == len(m.Chunks) {
		// The whole track fits one batch: one transaction replaces it.
		err := s.db.Update(func(tx *bolt.Tx) error {
			if _, err := deleteChunks(tx, m.ID, 0); err != nil {
				return err
			}
			if err := putBatch(tx, first); err != nil {
				return err
			}
			return commitManifest(tx, m, mj, ij)
		})
		if err != nil {
			return fmt.Errorf("boltstore: put %s: %w", m.ID, err)
		}
		return nil
	}

	// Multi-transaction put.
	err = s.db.Update(func(tx *bolt.Tx) error {
		stamp := []byte(time.Now().UTC().Format(time.RFC3339))
		if err := tx.Bucket(bucketPending).Put([]byte(m.ID), stamp); err != nil {
			return fmt.Errorf("mark pending: %w", err)
		}
		for _, b := range [][]byte{bucketTracks, bucketIndex} {
			if err := tx.Bucket(b).Delete([]byte(m.ID)); err != nil {
				return fmt.Errorf("hide previous version: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("boltstore: put %s: %w", m.ID, err)
	}
	fail := func(cause error) error {
		if err := s.discard(m.ID); err != nil {
			s.cfg.logger.Error("boltstore: cleaning up a failed put", "track", m.ID, "err", err)
		}
		return cause
	}
	// Remove the previous version's chunks, a bounded number per transaction.
	for {
		var n int
		err := s.db.Update(func(tx *bolt.Tx) error {
			var err error
			n, err = deleteChunks(tx, m.ID, 4096)
			return err
		})
		if err != nil {
			return fail(fmt.Errorf("boltstore: put %s: remove previous chunks: %w", m.ID, err))
		}
		if n == 0 {
			break
		}
	}
	batch := first
	for {
		last := seq == len(m.Chunks)
		err := s.db.Update(func(tx *bolt.Tx) error {
			if err := putBatch(tx, batch); err != nil {
				return err
			}
			if last {
				return commitManifest(tx, m, mj, ij)
			}
			return nil
		})
		if err != nil {
			return fail(fmt.Errorf("boltstore: put %s: %w", m.ID, err))
		}
		if last {
			return nil
		}
		batch = nil // let the previous batch be collected while reading the next
		if batch, err = next(); err != nil {
			return fail(err)
		}
	}
}

// ListTracks returns the catalog sorted by artist, album, title, id.
func (s *Store) ListTracks(ctx context.Context) ([]media.Summary, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("boltstore: list: %w", err)
	}
	list := []media.Summary{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIndex).ForEach(func(k, v []byte) error {
			var e indexEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode catalog entry %q: %w", k, err)
			}
			list = append(list, e.Summary)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: list: %w", err)
	}
	store.SortSummaries(list)
	return list, nil
}

// Manifest returns the manifest of track id, or an error wrapping store.ErrNotFound.
func (s *Store) Manifest(ctx context.Context, id string) (*media.Manifest, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("boltstore: manifest %s: %w", id, err)
	}
	var m media.Manifest
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTracks).Get([]byte(id))
		if v == nil {
			return store.ErrNotFound
		}
		// Unmarshal copies out of the mmap.
		return json.Unmarshal(v, &m)
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: manifest %q: %w", id, err)
	}
	return &m, nil
}

// chunkCount returns the number of chunks of a visible track in tx.
func chunkCount(tx *bolt.Tx, id string) (int, error) {
	v := tx.Bucket(bucketIndex).Get([]byte(id))
	if v == nil {
		return 0, store.ErrNotFound
	}
	var e indexEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return 0, fmt.Errorf("decode catalog entry: %w", err)
	}
	return e.Chunks, nil
}

// ReadChunks streams chunks [from, to) of track id.
func (s *Store) ReadChunks(ctx context.Context, id string, from, to int) (store.ChunkIterator, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("boltstore: read %s: %w", id, err)
	}
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = chunkCount(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: read %q: %w", id, err)
	}
	if err := store.CheckRange(id, n, from, to); err != nil {
		return nil, fmt.Errorf("boltstore: read: %w", err)
	}
	return &iterator{s: s, ctx: ctx, id: id, next: from, to: to}, nil
}

// iterator reads readBatch chunks per short read transaction.
type iterator struct {
	s      *Store
	ctx    context.Context
	id     string
	next   int // next seq to fetch
	to     int
	buf    []store.Chunk
	cur    store.Chunk
	err    error
	closed bool
}

func (it *iterator) Next() bool {
	if it.err != nil || it.closed {
		return false
	}
	if err := it.ctx.Err(); err != nil {
		it.err = fmt.Errorf("boltstore: read %s: %w", it.id, err)
		return false
	}
	if len(it.buf) == 0 {
		if it.next >= it.to {
			return false
		}
		if err := it.fill(); err != nil {
			it.err = err
			return false
		}
	}
	it.cur, it.buf = it.buf[0], it.buf[1:]
	return true
}

// fill copies the next batch of chunks out of one read transaction.
func (it *iterator) fill() error {
	end := min(it.next+readBatch, it.to)
	buf := make([]store.Chunk, 0, end-it.next)
	err := it.s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketChunks).Cursor()
		var k, v []byte
		for seq := it.next; seq < end; seq++ {
			want := chunkKey(it.id, seq)
			if seq == it.next || !bytes.Equal(k, want) {
				k, v = c.Seek(want)
			}
			if !bytes.Equal(k, want) {
				return fmt.Errorf("chunk %d missing (track deleted or replaced during the read?): %w",
					seq, store.ErrNotFound)
			}
			buf = append(buf, store.Chunk{Seq: seq, Data: bytes.Clone(v)})
			k, v = c.Next()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("boltstore: read %s: %w", it.id, err)
	}
	it.buf = buf
	it.next = end
	return nil
}

func (it *iterator) Chunk() store.Chunk { return it.cur }

func (it *iterator) Err() error { return it.err }

func (it *iterator) Close() error {
	it.closed = true
	it.buf = nil
	return nil
}

// DeleteTrack removes track id and its chunks in one transaction.
func (s *Store) DeleteTrack(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: delete %s: %w", id, err)
	}
	s.putMu.Lock()
	defer s.putMu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketTracks).Get([]byte(id)) == nil {
			return store.ErrNotFound
		}
		if _, err := deleteChunks(tx, id, 0); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketTracks, bucketIndex} {
			if err := tx.Bucket(b).Delete([]byte(id)); err != nil {
				return fmt.Errorf("delete %s entry: %w", b, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("boltstore: delete %q: %w", id, err)
	}
	return nil
}

// PutCover stores a cover picture under its SHA-256; one that is there
// already is left as it is.
func (s *Store) PutCover(ctx context.Context, c media.CoverRef, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: put cover: %w", err)
	}
	if err := store.ValidateCover(c, data); err != nil {
		return fmt.Errorf("boltstore: %w", err)
	}
	s.putMu.Lock()
	defer s.putMu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCovers)
		if b.Get([]byte(c.SHA256)) != nil {
			return nil
		}
		v := make([]byte, 0, 1+len(c.MIME)+len(data))
		v = append(append(append(v, byte(len(c.MIME))), c.MIME...), data...)
		return b.Put([]byte(c.SHA256), v)
	})
	if err != nil {
		return fmt.Errorf("boltstore: put cover %s: %w", c.SHA256, err)
	}
	return nil
}

// Cover returns the picture stored under sha and its content type, or an
// error wrapping store.ErrNotFound.
func (s *Store) Cover(ctx context.Context, sha string) (string, []byte, error) {
	if err := ctx.Err(); err != nil {
		return "", nil, fmt.Errorf("boltstore: cover: %w", err)
	}
	var mime string
	var data []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCovers).Get([]byte(sha))
		if v == nil {
			return store.ErrNotFound
		}
		if len(v) < 1 || len(v) < 1+int(v[0]) {
			return fmt.Errorf("corrupt cover record (%d bytes)", len(v))
		}
		mime = string(v[1 : 1+int(v[0])])
		data = bytes.Clone(v[1+int(v[0]):])
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("boltstore: cover %q: %w", sha, err)
	}
	return mime, data, nil
}

// ChunkRecords returns the number of chunk records stored under id, including
// leftovers not referenced by a manifest (for diagnostics and tests).
func (s *Store) ChunkRecords(ctx context.Context, id string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("boltstore: count chunks of %s: %w", id, err)
	}
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketChunks).Cursor()
		prefix := []byte(id)
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if isChunkOf(k, id) {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("boltstore: count chunks of %s: %w", id, err)
	}
	return n, nil
}

// Ping checks that the database file can be read.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: ping: %w", err)
	}
	if err := s.db.View(func(*bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("boltstore: ping: %w", err)
	}
	return nil
}

// Close closes the database file. Iterators still open fail afterwards.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return nil
}
