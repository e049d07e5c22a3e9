// Package testtrack builds synthetic tracks for tests: a manifest shaped like
// an ingested MP3 (44.1 kHz stereo MPEG-1 Layer III, 38 frames per chunk,
// every field set) whose chunk sizes and SHA-256 sums match deterministic
// pseudo-random chunk bytes. Peers and stores never decode the audio, so the
// bytes need not be MP3 frames.
//
// Chunk bytes are regenerated on demand from the seed, so even a very long
// track costs no memory:
//
//	tr := testtrack.New(1, 40)                       // 40 chunks of 4000 bytes
//	big := testtrack.New(2, 200, testtrack.Size(16<<10))
//	odd := testtrack.New(3, 9, testtrack.Sizes(func(seq int) int { return 1 + seq*100 }))
//	err := st.PutTrack(ctx, tr.Manifest, tr.Source())
package testtrack

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/store"
)

// DefaultSize is the chunk size in bytes when no Size or Sizes option is given.
const DefaultSize = 4000

// Shape of the manifest: MPEG-1 Layer III at 44.1 kHz, 38 frames per chunk
// (about 992.7 ms), the last chunk 17 frames.
const (
	SampleRate      = 44100
	SamplesPerFrame = 1152
	FramesPerChunk  = 38
	LastChunkFrames = 17
	// FrameMS is the duration of one frame in milliseconds.
	FrameMS = float64(SamplesPerFrame) * 1000 / SampleRate
)

// Track is a synthetic track. Manifest may be changed before the track is
// stored (its chunk list must stay consistent with Chunk).
type Track struct {
	Manifest *media.Manifest
	seed     uint64
	size     func(seq int) int
}

// Option changes how New builds a track.
type Option func(*options)

type options struct {
	size   func(seq int) int
	id     string
	modify []func(*media.Manifest)
}

// Size gives every chunk n bytes.
func Size(n int) Option { return Sizes(func(int) int { return n }) }

// Sizes gives chunk seq size(seq) bytes.
func Sizes(size func(seq int) int) Option { return func(o *options) { o.size = size } }

// ID sets the track id instead of deriving it from the chunk bytes.
func ID(id string) Option { return func(o *options) { o.id = id } }

// Modify changes the built manifest (titles, tags...); the chunk list and
// sizes must stay consistent with the chunk bytes.
func Modify(f func(m *media.Manifest)) Option {
	return func(o *options) { o.modify = append(o.modify, f) }
}

// New builds a track of n chunks (n > 0) whose bytes derive from seed.
// Without the ID option its id is 32 lowercase hex digits derived from the
// chunk bytes (as ingestion derives it from the audio), so tracks of
// different seeds have different ids.
func New(seed uint64, n int, opts ...Option) *Track {
	if n <= 0 {
		panic(fmt.Sprintf("testtrack: %d chunks", n))
	}
	o := options{size: func(int) int { return DefaultSize }}
	for _, opt := range opts {
		opt(&o)
	}
	tr := &Track{seed: seed, size: o.size}
	m := &media.Manifest{
		Title: fmt.Sprintf("Synthetic ♪ %d", seed), Artist: "Test Artist", Album: "Test Album ✓",
		Bitrate: 128 + int(seed%64), SampleRate: SampleRate, Channels: 2, MIME: media.MIMEType,
		MPEGVersion: "1", SamplesPerFrame: SamplesPerFrame, FramesPerChunk: FramesPerChunk,
		EncoderDelay: 576 + 529, EncoderPadding: 1234 + int(seed%100),
	}
	all := sha256.New()
	for seq := 0; seq < n; seq++ {
		b := tr.Chunk(seq)
		sum := sha256.Sum256(b)
		all.Write(sum[:])
		frames := FramesPerChunk
		if seq == n-1 {
			frames = LastChunkFrames
		}
		m.Chunks = append(m.Chunks, media.ChunkInfo{
			Seq: seq, StartMS: float64(seq*FramesPerChunk) * FrameMS, DurationMS: float64(frames) * FrameMS,
			Frames: frames, Size: len(b), SHA256: hex.EncodeToString(sum[:]),
			Reservoir: seq%3 != 0,
		})
		m.Size += int64(len(b))
		m.TotalFrames += frames
	}
	m.TotalSamples = int64(m.TotalFrames*m.SamplesPerFrame - m.EncoderDelay - m.EncoderPadding)
	m.DurationMS = m.TotalSamples * 1000 / int64(m.SampleRate)
	m.ID = o.id
	if m.ID == "" {
		m.ID = hex.EncodeToString(all.Sum(nil)[:16])
	}
	for _, f := range o.modify {
		f(m)
	}
	tr.Manifest = m
	return tr
}

// List builds count tracks of n chunks, of seeds 1 to count.
func List(count, n int, opts ...Option) []*Track {
	out := make([]*Track, count)
	for i := range out {
		out[i] = New(uint64(i+1), n, opts...)
	}
	return out
}

// ID returns the track id.
func (tr *Track) ID() string { return tr.Manifest.ID }

// Len returns the number of chunks.
func (tr *Track) Len() int { return len(tr.Manifest.Chunks) }

// Chunk returns the bytes of chunk seq, regenerated from the seed (a new
// slice each call).
func (tr *Track) Chunk(seq int) []byte {
	var key [32]byte
	binary.BigEndian.PutUint64(key[0:], tr.seed)
	binary.BigEndian.PutUint64(key[8:], uint64(seq))
	b := make([]byte, tr.size(seq))
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// Chunks returns the bytes of every chunk.
func (tr *Track) Chunks() [][]byte {
	out := make([][]byte, tr.Len())
	for seq := range out {
		out[seq] = tr.Chunk(seq)
	}
	return out
}

// Source returns the chunks as a store.ChunkSource for PutTrack.
func (tr *Track) Source() store.ChunkSource {
	return func(seq int) ([]byte, error) {
		if seq < 0 || seq >= tr.Len() {
			return nil, fmt.Errorf("testtrack: seq %d out of range [0,%d)", seq, tr.Len())
		}
		return tr.Chunk(seq), nil
	}
}

// Put stores the tracks in st, failing the test on error.
func Put(tb testing.TB, st store.Store, tracks ...*Track) {
	tb.Helper()
	for _, tr := range tracks {
		if err := st.PutTrack(context.Background(), tr.Manifest, tr.Source()); err != nil {
			tb.Fatalf("storing synthetic track %s: %v", tr.ID(), err)
		}
	}
}

// Manifests returns the manifests of tracks.
func Manifests(tracks ...*Track) []*media.Manifest {
	out := make([]*media.Manifest, len(tracks))
	for i, tr := range tracks {
		out[i] = tr.Manifest
	}
	return out
}
