package peer

import (
	"sync"

	"github.com/ztream/ztream/media"
)

// chunkSource is a track whose chunks a peer may serve: complete (cached)
// or in part (being downloaded).
type chunkSource interface {
	// Len returns the track's number of chunks.
	Len() int
	// Chunk returns the verified bytes of chunk seq, if held.
	Chunk(seq int) ([]byte, bool)
}

// Len implements chunkSource.
func (t *CachedTrack) Len() int { return len(t.Chunks) }

// Chunk implements chunkSource: a cached track holds every chunk.
func (t *CachedTrack) Chunk(seq int) ([]byte, bool) {
	if seq < 0 || seq >= len(t.Chunks) {
		return nil, false
	}
	return t.Chunks[seq], true
}

// trackData holds the verified chunks of a track being downloaded. Its
// session is the only writer; endpoints serving other peers read it
// concurrently (PROTOCOL.md §8.1: a peer serves every verified chunk it
// holds, of tracks it is still downloading too).
type trackData struct {
	m *media.Manifest

	mu      sync.RWMutex
	present []bool
	data    [][]byte
	have    int
}

func newTrackData(m *media.Manifest) *trackData {
	return &trackData{m: m, present: make([]bool, len(m.Chunks)), data: make([][]byte, len(m.Chunks))}
}

// Len implements chunkSource.
func (t *trackData) Len() int { return len(t.present) }

// Chunk implements chunkSource.
func (t *trackData) Chunk(seq int) ([]byte, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if seq < 0 || seq >= len(t.present) || !t.present[seq] {
		return nil, false
	}
	return t.data[seq], true
}

// put stores verified chunk seq; it reports whether the chunk was new.
func (t *trackData) put(seq int, data []byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.present[seq] {
		return false
	}
	t.present[seq] = true
	t.data[seq] = data
	t.have++
	return true
}

// count returns how many chunks are held.
func (t *trackData) count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.have
}

// flags returns a copy of the held-chunk flags.
func (t *trackData) flags() []bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]bool(nil), t.present...)
}
