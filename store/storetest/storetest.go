// Package storetest is the conformance suite that every store.Store
// implementation must pass. It stores synthetic tracks (package
// internal/testtrack: pseudo-random chunk bytes with correct SHA-256 in the
// manifest), so it depends on nothing but the store and media contracts.
//
// An implementation's test calls:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t) })
//	}
//
// newStore must return an empty store and arrange (with t.Cleanup) for it to
// be closed and removed; Run calls it once per subtest.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/store"
)

// ChunkRecordCounter is implemented by stores that can report how many chunk
// records they hold for a track id, counting unreferenced leftovers of failed
// or replaced puts too. When a store implements it, the suite uses it to check
// that no orphan chunks remain after a failed put, a re-put or a delete.
type ChunkRecordCounter interface {
	ChunkRecords(ctx context.Context, id string) (int, error)
}

// Options tunes Run for a particular backend.
type Options struct {
	// SkipMemory skips the bounded-memory test. Use it only when the heap of
	// the test process cannot measure the store's client side alone (for
	// example an embedded database server that buffers a whole query result).
	SkipMemory bool
	// MemoryChunks and MemoryChunkSize size the bounded-memory track;
	// defaults 3000 and 32 KiB (about 96 MiB).
	MemoryChunks, MemoryChunkSize int
	// MemoryLimit is the heap growth the bounded-memory read may not exceed;
	// default 24 MiB.
	MemoryLimit uint64
	// LargeChunks is the number of 32 KiB chunks of the "large" tracks of the
	// atomicity tests; default 600 (about 19 MiB, more than the bbolt
	// store's default write batch). Lower it for slow test backends.
	LargeChunks int
}

// Run runs the full conformance suite with default options.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	RunWithOptions(t, newStore, Options{})
}

// RunWithOptions runs the conformance suite with opts.
func RunWithOptions(t *testing.T, newStore func(t *testing.T) store.Store, opts Options) {
	if opts.MemoryChunks <= 0 {
		opts.MemoryChunks = 3000
	}
	if opts.MemoryChunkSize <= 0 {
		opts.MemoryChunkSize = 32 << 10
	}
	if opts.MemoryLimit == 0 {
		opts.MemoryLimit = 24 << 20
	}
	if opts.LargeChunks <= 0 {
		opts.LargeChunks = 600
	}
	t.Run("ManifestRoundTrip", func(t *testing.T) { testManifestRoundTrip(t, newStore(t)) })
	t.Run("ListSorted", func(t *testing.T) { testListSorted(t, newStore(t)) })
	t.Run("ReadRanges", func(t *testing.T) { testReadRanges(t, newStore(t)) })
	t.Run("RangeValidation", func(t *testing.T) { testRangeValidation(t, newStore(t)) })
	t.Run("PutInvalidManifest", func(t *testing.T) { testPutInvalidManifest(t, newStore(t)) })
	t.Run("PutAtomicity", func(t *testing.T) { testPutAtomicity(t, newStore(t), opts.LargeChunks) })
	t.Run("FailedRePutKeepsNoPartialTrack", func(t *testing.T) { testFailedRePut(t, newStore(t), opts.LargeChunks) })
	t.Run("IdempotentRePut", func(t *testing.T) { testIdempotentRePut(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore(t)) })
	t.Run("ContextCancel", func(t *testing.T) { testContextCancel(t, newStore(t)) })
	t.Run("ConcurrentReadersDuringPut", func(t *testing.T) { testConcurrentReaders(t, newStore(t)) })
	t.Run("ManyChunks", func(t *testing.T) { testManyChunks(t, newStore(t)) })
	t.Run("Covers", func(t *testing.T) { testCovers(t, newStore(t)) })
	t.Run("BoundedMemoryRead", func(t *testing.T) {
		if opts.SkipMemory {
			t.Skip("bounded-memory test disabled for this backend")
		}
		if testing.Short() {
			t.Skip("long track skipped in -short mode")
		}
		testBoundedMemory(t, newStore(t), opts)
	})
}

// source returns a ChunkSource of tr's chunks (regenerated on demand, so
// that even a very long track costs no memory in the test) that fails the
// test if PutTrack asks for chunks out of order.
func source(t *testing.T, tr *testtrack.Track) store.ChunkSource {
	next := 0
	src := tr.Source()
	return func(seq int) ([]byte, error) {
		if seq != next {
			t.Errorf("ChunkSource called with seq %d, want %d (in order, once each)", seq, next)
		}
		next = seq + 1
		return src(seq)
	}
}

// newTrack builds a track (package testtrack) of n chunks with id, whose
// every manifest field is set to a non-zero value, with sizes(seq) bytes per
// chunk.
func newTrack(id string, seed uint64, n int, sizes func(seq int) int) *testtrack.Track {
	return testtrack.New(seed, n, testtrack.ID(id), testtrack.Sizes(sizes), testtrack.Modify(func(m *media.Manifest) {
		m.Title, m.Artist, m.Album = "Title ✓ "+id, "Artist "+id, "Album ♪ "+id
	}))
}

// varied gives chunk sizes between 1 and about 3 KiB that differ per seq.
func varied(seq int) int { return 1 + (seq*977+131)%3000 }

func fixed(size int) func(int) int { return func(int) int { return size } }

func put(t *testing.T, s store.Store, tr *testtrack.Track) {
	t.Helper()
	if err := s.PutTrack(context.Background(), tr.Manifest, source(t, tr)); err != nil {
		t.Fatalf("PutTrack(%s): %v", tr.Manifest.ID, err)
	}
}

// readAll reads chunks [from, to) of id and returns them, failing the test on error.
func readAll(t *testing.T, s store.Store, id string, from, to int) []store.Chunk {
	t.Helper()
	it, err := s.ReadChunks(context.Background(), id, from, to)
	if err != nil {
		t.Fatalf("ReadChunks(%s, %d, %d): %v", id, from, to, err)
	}
	defer func() {
		if err := it.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := it.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}()
	var out []store.Chunk
	for it.Next() {
		out = append(out, it.Chunk())
		if len(out) > to-from {
			t.Fatalf("ReadChunks(%s, %d, %d) yields more than %d chunks", id, from, to, to-from)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatalf("ReadChunks(%s, %d, %d) iteration: %v", id, from, to, err)
	}
	return out
}

// checkRange reads [from, to) and compares every chunk with the expected bytes.
func checkRange(t *testing.T, s store.Store, tr *testtrack.Track, from, to int) {
	t.Helper()
	got := readAll(t, s, tr.Manifest.ID, from, to)
	if len(got) != to-from {
		t.Fatalf("ReadChunks(%s, %d, %d): got %d chunks, want %d", tr.Manifest.ID, from, to, len(got), to-from)
	}
	// Data must stay valid after Next: compare only once all are read.
	for i, c := range got {
		if c.Seq != from+i {
			t.Fatalf("chunk %d of range [%d,%d): seq %d, want %d", i, from, to, c.Seq, from+i)
		}
		if want := tr.Chunk(c.Seq); !bytes.Equal(c.Data, want) {
			t.Fatalf("chunk seq %d: %d bytes differ from the %d bytes put", c.Seq, len(c.Data), len(want))
		}
	}
}

func checkAbsent(t *testing.T, s store.Store, id string) {
	t.Helper()
	ctx := context.Background()
	if m, err := s.Manifest(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Manifest(%s) = %v, %v; want ErrNotFound", id, m != nil, err)
	}
	if it, err := s.ReadChunks(ctx, id, 0, 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReadChunks(%s, 0, 1) error = %v; want ErrNotFound", id, err)
		if err == nil {
			_ = it.Close()
		}
	}
	list, err := s.ListTracks(ctx)
	if err != nil {
		t.Fatalf("ListTracks: %v", err)
	}
	for _, sum := range list {
		if sum.ID == id {
			t.Errorf("ListTracks lists %s, which should be absent", id)
		}
	}
	checkRecords(t, s, id, 0)
}

// checkRecords checks the raw chunk record count when the store exposes it.
func checkRecords(t *testing.T, s store.Store, id string, want int) {
	t.Helper()
	c, ok := s.(ChunkRecordCounter)
	if !ok {
		return
	}
	n, err := c.ChunkRecords(context.Background(), id)
	if err != nil {
		t.Fatalf("ChunkRecords(%s): %v", id, err)
	}
	if n != want {
		t.Errorf("ChunkRecords(%s) = %d, want %d (orphan or missing chunks)", id, n, want)
	}
}

func testManifestRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	tr := newTrack("a1b2c3d4e5f60718", 1, 7, varied)
	put(t, s, tr)
	got, err := s.Manifest(ctx, tr.Manifest.ID)
	if err != nil {
		t.Fatalf("Manifest: %v", err)
	}
	if !reflect.DeepEqual(got, tr.Manifest) {
		t.Errorf("Manifest round trip differs:\n got  %+v\n want %+v", got, tr.Manifest)
	}
	// The caller owns the returned manifest: mutating it must not change the store.
	got.Title = "changed"
	got.Chunks[0].Size = -1
	again, err := s.Manifest(ctx, tr.Manifest.ID)
	if err != nil {
		t.Fatalf("Manifest: %v", err)
	}
	if !reflect.DeepEqual(again, tr.Manifest) {
		t.Errorf("mutating a returned manifest changed the stored one")
	}
	list, err := s.ListTracks(ctx)
	if err != nil {
		t.Fatalf("ListTracks: %v", err)
	}
	if want := []media.Summary{tr.Manifest.Summary()}; !reflect.DeepEqual(list, want) {
		t.Errorf("ListTracks = %+v, want %+v", list, want)
	}
	checkRecords(t, s, tr.Manifest.ID, len(tr.Manifest.Chunks))
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func testListSorted(t *testing.T, s store.Store) {
	ctx := context.Background()
	if list, err := s.ListTracks(ctx); err != nil || len(list) != 0 {
		t.Fatalf("empty store: ListTracks = %v, %v; want empty, nil", list, err)
	}
	type key struct{ artist, album, title, id string }
	keys := []key{
		{"Beta", "A", "x", "0005"}, {"Alpha", "Z", "a", "0001"}, {"Alpha", "B", "z", "0002"},
		{"Alpha", "B", "b", "0003"}, {"Alpha", "B", "b", "0000"}, {"", "", "", "0004"},
		{"alpha", "A", "a", "0006"}, {"Beta", "A", "x", "0007"},
	}
	var want []media.Summary
	for i, k := range keys {
		tr := newTrack(k.id, uint64(100+i), 2, varied)
		tr.Manifest.Artist, tr.Manifest.Album, tr.Manifest.Title = k.artist, k.album, k.title
		put(t, s, tr)
		want = append(want, tr.Manifest.Summary())
	}
	// Byte-wise order on artist, album, title, then id.
	sort.Slice(want, func(i, j int) bool {
		a, b := want[i], want[j]
		if a.Artist != b.Artist {
			return a.Artist < b.Artist
		}
		if a.Album != b.Album {
			return a.Album < b.Album
		}
		if a.Title != b.Title {
			return a.Title < b.Title
		}
		return a.ID < b.ID
	})
	got, err := s.ListTracks(ctx)
	if err != nil {
		t.Fatalf("ListTracks: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListTracks order:\n got  %+v\n want %+v", got, want)
	}
}

func testReadRanges(t *testing.T, s store.Store) {
	tr := newTrack("00ff00ff00ff00ff", 2, 23, varied)
	put(t, s, tr)
	n := len(tr.Manifest.Chunks)
	for _, r := range [][2]int{{0, n}, {0, 1}, {n - 1, n}, {5, 6}, {3, 17}, {8, 16}, {7, 20}, {1, n}} {
		checkRange(t, s, tr, r[0], r[1])
	}
}

func testRangeValidation(t *testing.T, s store.Store) {
	ctx := context.Background()
	tr := newTrack("1111222233334444", 3, 5, varied)
	put(t, s, tr)
	n := len(tr.Manifest.Chunks)
	for _, r := range [][2]int{{-1, 2}, {0, n + 1}, {2, 2}, {3, 1}, {n, n + 1}, {n, n}, {-5, -1}, {0, 0}} {
		it, err := s.ReadChunks(ctx, tr.Manifest.ID, r[0], r[1])
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("ReadChunks(%d, %d) error = %v, want ErrInvalid", r[0], r[1], err)
		}
		if err == nil {
			_ = it.Close()
		}
	}
	for _, id := range []string{"ffffffffffffffff", "", "1111222233334444x", "111122223333444"} {
		it, err := s.ReadChunks(ctx, id, 0, 1)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ReadChunks(%q) error = %v, want ErrNotFound", id, err)
		}
		if err == nil {
			_ = it.Close()
		}
		if _, err := s.Manifest(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Manifest(%q) error = %v, want ErrNotFound", id, err)
		}
		if err := s.DeleteTrack(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteTrack(%q) error = %v, want ErrNotFound", id, err)
		}
	}
	// The valid track is unaffected by the failed calls.
	checkRange(t, s, tr, 0, n)
}

func testPutInvalidManifest(t *testing.T, s store.Store) {
	ctx := context.Background()
	good := newTrack("abcdabcdabcdabcd", 4, 4, varied)
	if err := s.PutTrack(ctx, nil, source(t, good)); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("PutTrack(nil manifest) error = %v, want ErrInvalid", err)
	}
	cases := map[string]func(m *media.Manifest){
		"empty id":        func(m *media.Manifest) { m.ID = "" },
		"no chunks":       func(m *media.Manifest) { m.Chunks = nil; m.Size = 0 },
		"seq gap":         func(m *media.Manifest) { m.Chunks[2].Seq = 3 },
		"negative size":   func(m *media.Manifest) { m.Chunks[1].Size = -1 },
		"size sum":        func(m *media.Manifest) { m.Size++ },
		"bad sha256 text": func(m *media.Manifest) { m.Chunks[0].SHA256 = "xyz" },
	}
	for name, mutate := range cases {
		tr := newTrack("abcdabcdabcdabcd", 4, 4, varied)
		mutate(tr.Manifest)
		err := s.PutTrack(ctx, tr.Manifest, func(seq int) ([]byte, error) { return tr.Chunk(seq), nil })
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: PutTrack error = %v, want ErrInvalid", name, err)
		}
		if tr.Manifest.ID != "" {
			checkAbsent(t, s, tr.Manifest.ID)
		}
	}
}

// failingPuts returns puts of tr that must all fail, with a check of the error.
func failingPuts(tr *testtrack.Track) map[string]struct {
	src   store.ChunkSource
	check func(error) bool
} {
	boom := errors.New("source broke")
	n := len(tr.Manifest.Chunks)
	mid := n * 9 / 10
	return map[string]struct {
		src   store.ChunkSource
		check func(error) bool
	}{
		"source error midway": {
			src: func(seq int) ([]byte, error) {
				if seq == mid {
					return nil, boom
				}
				return tr.Chunk(seq), nil
			},
			check: func(err error) bool { return errors.Is(err, boom) },
		},
		"size mismatch": {
			src: func(seq int) ([]byte, error) {
				b := tr.Chunk(seq)
				if seq == mid {
					b = b[:len(b)-1]
				}
				return b, nil
			},
			check: func(err error) bool { return errors.Is(err, store.ErrInvalid) },
		},
		"sha256 mismatch": {
			src: func(seq int) ([]byte, error) {
				b := tr.Chunk(seq)
				if seq == mid {
					b[len(b)/2] ^= 0x40
				}
				return b, nil
			},
			check: func(err error) bool { return errors.Is(err, store.ErrInvalid) },
		},
		"last chunk sha256 mismatch": {
			src: func(seq int) ([]byte, error) {
				b := tr.Chunk(seq)
				if seq == n-1 {
					b[0] ^= 1
				}
				return b, nil
			},
			check: func(err error) bool { return errors.Is(err, store.ErrInvalid) },
		},
	}
}

func testPutAtomicity(t *testing.T, s store.Store, large int) {
	ctx := context.Background()
	// A short track and one long enough (by default about 19 MiB) that a
	// store writing in batches must take its multi-transaction path.
	for _, tr := range []*testtrack.Track{
		newTrack("5555aaaa5555aaaa", 5, 12, varied),
		newTrack("6666bbbb6666bbbb", 6, large, fixed(32<<10)),
	} {
		for name, fp := range failingPuts(tr) {
			err := s.PutTrack(ctx, tr.Manifest, fp.src)
			if err == nil || !fp.check(err) {
				t.Errorf("%d chunks, %s: PutTrack error = %v", len(tr.Manifest.Chunks), name, err)
			}
			checkAbsent(t, s, tr.Manifest.ID)
		}
		// A cancelled context fails the put too, leaving nothing behind.
		cctx, cancel := context.WithCancel(ctx)
		src := source(t, tr)
		err := s.PutTrack(cctx, tr.Manifest, func(seq int) ([]byte, error) {
			if seq == len(tr.Manifest.Chunks)/2 {
				cancel()
			}
			return src(seq)
		})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%d chunks, cancelled put: error = %v, want context.Canceled", len(tr.Manifest.Chunks), err)
		}
		checkAbsent(t, s, tr.Manifest.ID)
		// The store is still usable and the same track can now be stored.
		put(t, s, tr)
		checkRange(t, s, tr, 0, len(tr.Manifest.Chunks))
		checkRecords(t, s, tr.Manifest.ID, len(tr.Manifest.Chunks))
	}
}

// checkWholeOrAbsent checks that id is either absent or complete and exact.
func checkWholeOrAbsent(t *testing.T, s store.Store, tr *testtrack.Track) (present bool) {
	t.Helper()
	m, err := s.Manifest(context.Background(), tr.Manifest.ID)
	if errors.Is(err, store.ErrNotFound) {
		checkAbsent(t, s, tr.Manifest.ID)
		return false
	}
	if err != nil {
		t.Fatalf("Manifest: %v", err)
	}
	if !reflect.DeepEqual(m, tr.Manifest) {
		t.Fatalf("Manifest after failed re-put is neither absent nor the previous one")
	}
	checkRange(t, s, tr, 0, len(tr.Manifest.Chunks))
	checkRecords(t, s, tr.Manifest.ID, len(tr.Manifest.Chunks))
	return true
}

func testFailedRePut(t *testing.T, s store.Store, large int) {
	ctx := context.Background()
	for _, tr := range []*testtrack.Track{
		newTrack("7777cccc7777cccc", 7, 9, varied),
		newTrack("8888dddd8888dddd", 8, large, fixed(32<<10)),
	} {
		for name, fp := range failingPuts(tr) {
			if _, err := s.Manifest(ctx, tr.Manifest.ID); errors.Is(err, store.ErrNotFound) {
				put(t, s, tr)
			}
			if err := s.PutTrack(ctx, tr.Manifest, fp.src); err == nil || !fp.check(err) {
				t.Errorf("%d chunks, re-put with %s: error = %v", len(tr.Manifest.Chunks), name, err)
			}
			// Atomic replacement keeps the old version; a store that must
			// hide a huge track while rewriting it may leave it absent. A
			// partial track is never acceptable.
			present := checkWholeOrAbsent(t, s, tr)
			t.Logf("%d chunks, %s: previous version kept: %v", len(tr.Manifest.Chunks), name, present)
		}
	}
}

func testIdempotentRePut(t *testing.T, s store.Store) {
	ctx := context.Background()
	tr := newTrack("9999eeee9999eeee", 9, 30, varied)
	other := newTrack("0000111100001111", 10, 3, varied)
	put(t, s, other)
	put(t, s, tr)
	put(t, s, tr)
	list, err := s.ListTracks(ctx)
	if err != nil {
		t.Fatalf("ListTracks: %v", err)
	}
	if len(list) != 2 {
		t.Errorf("after re-put ListTracks has %d entries, want 2: %+v", len(list), list)
	}
	checkRange(t, s, tr, 0, len(tr.Manifest.Chunks))
	checkRecords(t, s, tr.Manifest.ID, len(tr.Manifest.Chunks))

	// Replacing with different metadata and fewer, different chunks.
	repl := newTrack(tr.Manifest.ID, 11, 12, fixed(700))
	repl.Manifest.Title = "Replaced"
	put(t, s, repl)
	got, err := s.Manifest(ctx, tr.Manifest.ID)
	if err != nil {
		t.Fatalf("Manifest: %v", err)
	}
	if !reflect.DeepEqual(got, repl.Manifest) {
		t.Errorf("Manifest after replacement is not the new one")
	}
	checkRange(t, s, repl, 0, len(repl.Manifest.Chunks))
	checkRecords(t, s, tr.Manifest.ID, len(repl.Manifest.Chunks))
	if it, err := s.ReadChunks(ctx, tr.Manifest.ID, 0, len(tr.Manifest.Chunks)); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("reading the old, longer range: error = %v, want ErrInvalid", err)
		if err == nil {
			_ = it.Close()
		}
	}
	checkRange(t, s, other, 0, len(other.Manifest.Chunks))
}

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newTrack("aaaa0000aaaa0000", 12, 20, varied)
	b := newTrack("aaaa0000aaaa0001", 13, 20, varied) // shares a key prefix with a
	c := newTrack("aaaa0000aaaa000", 14, 5, varied)   // a prefix of a's id
	put(t, s, a)
	put(t, s, b)
	put(t, s, c)
	if err := s.DeleteTrack(ctx, a.Manifest.ID); err != nil {
		t.Fatalf("DeleteTrack: %v", err)
	}
	checkAbsent(t, s, a.Manifest.ID)
	if err := s.DeleteTrack(ctx, a.Manifest.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteTrack error = %v, want ErrNotFound", err)
	}
	checkRange(t, s, b, 0, len(b.Manifest.Chunks))
	checkRange(t, s, c, 0, len(c.Manifest.Chunks))
	checkRecords(t, s, b.Manifest.ID, len(b.Manifest.Chunks))
	checkRecords(t, s, c.Manifest.ID, len(c.Manifest.Chunks))
	list, err := s.ListTracks(ctx)
	if err != nil {
		t.Fatalf("ListTracks: %v", err)
	}
	if len(list) != 2 {
		t.Errorf("ListTracks after delete = %+v, want 2 entries", list)
	}
	// A deleted track can be stored again.
	put(t, s, a)
	checkRange(t, s, a, 0, len(a.Manifest.Chunks))
}

func testContextCancel(t *testing.T, s store.Store) {
	tr := newTrack("cccc0000cccc0000", 15, 64, fixed(1000))
	put(t, s, tr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	it, err := s.ReadChunks(ctx, tr.Manifest.ID, 0, len(tr.Manifest.Chunks))
	if err != nil {
		t.Fatalf("ReadChunks: %v", err)
	}
	defer it.Close()
	for i := 0; i < 3; i++ {
		if !it.Next() {
			t.Fatalf("Next %d: false, err %v", i, it.Err())
		}
	}
	cancel()
	if it.Next() {
		t.Errorf("Next after cancel returned true (seq %d)", it.Chunk().Seq)
	}
	if err := it.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err after cancel = %v, want context.Canceled", err)
	}
	if it.Next() {
		t.Errorf("Next after a failed Next returned true")
	}
	if err := it.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	// A context cancelled before the call stops the iteration at once.
	it2, err := s.ReadChunks(ctx, tr.Manifest.ID, 0, 4)
	if err == nil {
		if it2.Next() {
			t.Errorf("iterator with a cancelled context yielded a chunk")
		}
		err = it2.Err()
		_ = it2.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ReadChunks with cancelled context: error = %v, want context.Canceled", err)
	}
}

func testConcurrentReaders(t *testing.T, s store.Store) {
	ctx := context.Background()
	stable := newTrack("dddd0000dddd0000", 16, 40, varied)
	incoming := newTrack("dddd1111dddd1111", 17, 300, fixed(16<<10))
	put(t, s, stable)

	done := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	report := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for round := 0; round < 10000; round++ {
				select {
				case <-done:
					return
				default:
				}
				if err := verifyTrack(ctx, s, stable, round%len(stable.Manifest.Chunks)); err != nil {
					report(fmt.Errorf("reader %d, stable track: %w", r, err))
					return
				}
				// The incoming track is either invisible or complete.
				err := verifyTrack(ctx, s, incoming, round%len(incoming.Manifest.Chunks))
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					report(fmt.Errorf("reader %d, track being put: %w", r, err))
					return
				}
				if _, err := s.ListTracks(ctx); err != nil {
					report(fmt.Errorf("reader %d: ListTracks: %w", r, err))
					return
				}
			}
		}(r)
	}
	putErr := s.PutTrack(ctx, incoming.Manifest, source(t, incoming))
	close(done)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if putErr != nil {
		t.Fatalf("PutTrack during reads: %v", putErr)
	}
	checkRange(t, s, incoming, 0, len(incoming.Manifest.Chunks))
	checkRange(t, s, stable, 0, len(stable.Manifest.Chunks))
}

// verifyTrack checks that the manifest of tr is the expected one and that
// chunks [from, n) read back exactly. It returns an error wrapping
// store.ErrNotFound when the manifest does not exist.
func verifyTrack(ctx context.Context, s store.Store, tr *testtrack.Track, from int) error {
	m, err := s.Manifest(ctx, tr.Manifest.ID)
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if !reflect.DeepEqual(m, tr.Manifest) {
		return errors.New("manifest differs from the one put")
	}
	it, err := s.ReadChunks(ctx, tr.Manifest.ID, from, len(m.Chunks))
	if err != nil {
		return fmt.Errorf("visible manifest but ReadChunks(%d, %d) failed: %v", from, len(m.Chunks), err)
	}
	defer it.Close()
	want := from
	for it.Next() {
		c := it.Chunk()
		if c.Seq != want {
			return fmt.Errorf("chunk seq %d, want %d", c.Seq, want)
		}
		sum := sha256.Sum256(c.Data)
		if hex.EncodeToString(sum[:]) != m.Chunks[c.Seq].SHA256 {
			return fmt.Errorf("chunk %d does not match its sha256", c.Seq)
		}
		want++
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("visible manifest but reading failed at chunk %d: %v", want, err)
	}
	if want != len(m.Chunks) {
		return fmt.Errorf("read ended at chunk %d of %d", want, len(m.Chunks))
	}
	return nil
}

func testManyChunks(t *testing.T, s store.Store) {
	tr := newTrack("eeee0000eeee0000", 18, 2500, func(seq int) int { return 50 + seq%400 })
	put(t, s, tr)
	n := len(tr.Manifest.Chunks)
	checkRange(t, s, tr, 0, n)
	checkRange(t, s, tr, 1999, n)
	checkRange(t, s, tr, 1234, 1301)
	checkRecords(t, s, tr.Manifest.ID, n)
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func testBoundedMemory(t *testing.T, s store.Store, opts Options) {
	ctx := context.Background()
	n, size := opts.MemoryChunks, opts.MemoryChunkSize
	tr := newTrack("ffff0000ffff0000", 19, n, fixed(size))
	trackBytes := uint64(n) * uint64(size)
	const every = 64

	base := heapInUse()
	var putPeak uint64
	src := source(t, tr)
	err := s.PutTrack(ctx, tr.Manifest, func(seq int) ([]byte, error) {
		if seq%every == 0 {
			if h := heapInUse(); h > base && h-base > putPeak {
				putPeak = h - base
			}
		}
		return src(seq)
	})
	if err != nil {
		t.Fatalf("PutTrack of the long track: %v", err)
	}
	t.Logf("put %d chunks x %d B = %.1f MiB; peak heap growth during put %.1f MiB",
		n, size, mib(trackBytes), mib(putPeak))

	base = heapInUse()
	var peak uint64
	it, err := s.ReadChunks(ctx, tr.Manifest.ID, 0, n)
	if err != nil {
		t.Fatalf("ReadChunks: %v", err)
	}
	defer it.Close()
	read := 0
	for it.Next() {
		c := it.Chunk()
		if c.Seq != read || len(c.Data) != size {
			t.Fatalf("chunk %d: seq %d, %d bytes", read, c.Seq, len(c.Data))
		}
		sum := sha256.Sum256(c.Data)
		if hex.EncodeToString(sum[:]) != tr.Manifest.Chunks[read].SHA256 {
			t.Fatalf("chunk %d: sha256 mismatch", read)
		}
		read++
		if read%every == 1 {
			if h := heapInUse(); h > base && h-base > peak {
				peak = h - base
			}
		}
	}
	if err := it.Err(); err != nil {
		t.Fatalf("reading the long track: %v", err)
	}
	if read != n {
		t.Fatalf("read %d chunks, want %d", read, n)
	}
	t.Logf("read %.1f MiB one chunk at a time; peak heap growth %.2f MiB (limit %.0f MiB)",
		mib(trackBytes), mib(peak), mib(opts.MemoryLimit))
	if peak >= opts.MemoryLimit {
		t.Errorf("reading held %.1f MiB of heap, limit %.0f MiB: the range is not streamed",
			mib(peak), mib(opts.MemoryLimit))
	}
	if err := s.DeleteTrack(ctx, tr.Manifest.ID); err != nil {
		t.Errorf("DeleteTrack of the long track: %v", err)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// testCovers: a cover is stored under its SHA-256 once, read back with its
// content type, shared by tracks that name it, kept when a track is
// deleted; bad covers are refused; the catalog and the manifest carry the
// tags and the cover reference.
func testCovers(t *testing.T, s store.Store) {
	ctx := context.Background()
	pic := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 5000)...)
	sum := sha256.Sum256(pic)
	ref := media.CoverRef{SHA256: hex.EncodeToString(sum[:]), MIME: "image/png", Size: len(pic)}
	if _, _, err := s.Cover(ctx, ref.SHA256); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Cover before any put: %v, want ErrNotFound", err)
	}
	for name, bad := range map[string]struct {
		ref  media.CoverRef
		data []byte
	}{
		"wrong hash":  {media.CoverRef{SHA256: strings.Repeat("0", 64), MIME: "image/png", Size: len(pic)}, pic},
		"wrong size":  {media.CoverRef{SHA256: ref.SHA256, MIME: "image/png", Size: len(pic) - 1}, pic},
		"not a image": {media.CoverRef{SHA256: ref.SHA256, MIME: "text/html", Size: len(pic)}, pic},
		"too large":   {media.CoverRef{SHA256: ref.SHA256, MIME: "image/png", Size: media.MaxCoverBytes + 1}, pic},
	} {
		if err := s.PutCover(ctx, bad.ref, bad.data); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("PutCover (%s): %v, want ErrInvalid", name, err)
		}
	}
	for range 2 { // the second put changes nothing
		if err := s.PutCover(ctx, ref, pic); err != nil {
			t.Fatalf("PutCover: %v", err)
		}
	}
	a := newTrack("c0c0c0c0c0c0c0c1", 11, 3, varied)
	b := newTrack("c0c0c0c0c0c0c0c2", 12, 3, varied)
	for i, tr := range []*testtrack.Track{a, b} {
		m := tr.Manifest
		m.Album, m.AlbumArtist, m.Year, m.DiscNo, m.TrackNo = "Covered", "Band", 2026, 1, i+1
		m.Cover = &ref
		m.Origin = "music:0123456789abcdef" // a followed folder's tag (musicdir)
		if i == 1 {                         // a transcoded track (package transcode)
			m.Source = &media.SourceInfo{Format: "flac", Bitrate: 905, SampleRate: 44100, Channels: 2,
				SHA256: strings.Repeat("ab", 32), Size: 1234567}
		}
		put(t, s, tr)
	}
	if err := s.DeleteTrack(ctx, a.Manifest.ID); err != nil {
		t.Fatal(err)
	}
	mime, data, err := s.Cover(ctx, ref.SHA256)
	if err != nil || mime != "image/png" || !bytes.Equal(data, pic) {
		t.Fatalf("Cover = %q, %d bytes, %v; want image/png, %d bytes", mime, len(data), err, len(pic))
	}
	got, err := s.Manifest(ctx, b.Manifest.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b.Manifest) {
		t.Errorf("manifest with tags, cover, origin and source: got %+v, want %+v", got, b.Manifest)
	}
	list, err := s.ListTracks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []media.Summary{b.Manifest.Summary()}; !reflect.DeepEqual(list, want) {
		t.Errorf("ListTracks = %+v, want %+v", list, want)
	}
	if list[0].Cover != ref.SHA256 || list[0].TrackNo != 2 || list[0].AlbumArtist != "Band" {
		t.Errorf("catalog entry %+v lacks the cover or the tags", list[0])
	}
	// A manifest naming a malformed cover is refused.
	c := newTrack("c0c0c0c0c0c0c0c3", 13, 2, varied)
	c.Manifest.Cover = &media.CoverRef{SHA256: "nothex", MIME: "image/png", Size: 10}
	if err := s.PutTrack(ctx, c.Manifest, source(t, c)); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("PutTrack with a malformed cover reference: %v, want ErrInvalid", err)
	}
}
