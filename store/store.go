// Package store defines the track store that every Ztream component reads
// chunks from: a catalog of manifests plus the chunk bytes, written once at
// ingest and read many times. Implementations: boltstore (embedded default)
// and mongostore (production). Both pass the conformance suite in storetest.
package store

import (
	"context"
	"errors"

	"github.com/ztream/ztream/media"
)

// ErrNotFound is returned (possibly wrapped) when a track or chunk does not exist.
var ErrNotFound = errors.New("not found")

// ErrUpstream is returned (possibly wrapped) by a store that fetches tracks
// from elsewhere (package origin) when that failed: the error says why.
var ErrUpstream = errors.New("upstream failed")

// ErrLimited is returned (possibly wrapped) by a store that does work on a
// read (package origin fetches a track on its first play) when the
// requester (WithRequester) asked for too much of it lately: try again later.
// The error's RetryAfter method, when it has one, says when.
var ErrLimited = errors.New("too many requests")

// ErrInvalid is returned (possibly wrapped) for a malformed request, such as a
// chunk range outside the manifest or a manifest inconsistent with its chunks.
var ErrInvalid = errors.New("invalid argument")

// ChunkSource yields the bytes of chunk seq of the track being stored.
// PutTrack calls it once per chunk, in seq order.
type ChunkSource func(seq int) ([]byte, error)

// Chunk is one chunk read back from the store.
type Chunk struct {
	Seq  int
	Data []byte
}

// ChunkIterator pulls chunks of a range in seq order; the consumer's pace
// drives the reads, so at most a small bounded window is held in memory.
// Typical use:
//
//	it, err := s.ReadChunks(ctx, id, from, to)
//	defer it.Close()
//	for it.Next() { use(it.Chunk()) }
//	if err := it.Err(); err != nil { ... }
type ChunkIterator interface {
	// Next advances to the next chunk; false at the end or on error.
	Next() bool
	// Chunk returns the current chunk. Its Data stays valid after Next.
	Chunk() Chunk
	// Err returns the first error met, if any.
	Err() error
	// Close releases the iterator's resources; it is safe to call twice.
	Close() error
}

// Store is a catalog of tracks and their chunks.
type Store interface {
	// PutTrack stores m and its chunks atomically: after an error nothing of
	// the track is visible. Putting a track whose ID exists already replaces it
	// (ingest is idempotent). Each chunk's size and SHA-256 must match m.
	PutTrack(ctx context.Context, m *media.Manifest, chunks ChunkSource) error
	// ListTracks returns the catalog, sorted by artist, album, title, id.
	ListTracks(ctx context.Context) ([]media.Summary, error)
	// Manifest returns the manifest of a track, or ErrNotFound.
	Manifest(ctx context.Context, id string) (*media.Manifest, error)
	// ReadChunks streams chunks [from, to) of a track in order. A range outside
	// the track's chunks gives ErrInvalid, an unknown track ErrNotFound.
	ReadChunks(ctx context.Context, id string, from, to int) (ChunkIterator, error)
	// DeleteTrack removes a track and its chunks, or returns ErrNotFound.
	// Its cover stays (other tracks of the album may share it).
	DeleteTrack(ctx context.Context, id string) error
	// PutCover stores a cover picture under c.SHA256 (ValidateCover must
	// pass); putting one that exists already changes nothing. Ingest puts a
	// track's cover before the track.
	PutCover(ctx context.Context, c media.CoverRef, data []byte) error
	// Cover returns the content type and bytes of the picture stored under
	// sha, or ErrNotFound.
	Cover(ctx context.Context, sha string) (mime string, data []byte, err error)
	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}

// Cataloger is implemented by a store that knows tracks it does not hold
// yet (package origin, which fetches a track on its first play): Summary
// returns a track's catalog entry without reading, or fetching, its
// manifest; ErrNotFound for an unknown track. Showing a cover or answering
// whether a track exists must not fetch it.
type Cataloger interface {
	Summary(ctx context.Context, id string) (media.Summary, error)
}

// SummaryOf returns track id's catalog entry: st's Summary when st is a
// Cataloger, else its manifest's.
func SummaryOf(ctx context.Context, st Store, id string) (media.Summary, error) {
	if c, ok := st.(Cataloger); ok {
		return c.Summary(ctx, id)
	}
	m, err := st.Manifest(ctx, id)
	if err != nil {
		return media.Summary{}, err
	}
	return m.Summary(), nil
}

// requesterKey is the context key of WithRequester.
type requesterKey struct{}

// WithRequester returns ctx naming the client a store call is made for (its
// address key, clientip.Key), so that a store doing work on a read can bound
// each client's share (ErrLimited). Calls without one are the server's own.
func WithRequester(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, requesterKey{}, key)
}

// RequesterOf returns the client WithRequester named in ctx, or "".
func RequesterOf(ctx context.Context) string {
	key, _ := ctx.Value(requesterKey{}).(string)
	return key
}
