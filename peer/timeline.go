package peer

import (
	"sort"

	"github.com/ztream/ztream/media"
)

// Timeline maps chunks of a track to media time. Chunk starts are cumulative
// sums of the manifest's chunk durations, so chunk c ends exactly where chunk
// c+1 starts.
type Timeline struct {
	starts []float64 // starts[c] in ms; starts[len] = total
	sizes  []int
}

// NewTimeline builds the timeline of m.
func NewTimeline(m *media.Manifest) *Timeline {
	t := &Timeline{starts: make([]float64, len(m.Chunks)+1), sizes: make([]int, len(m.Chunks))}
	for i, c := range m.Chunks {
		t.starts[i+1] = t.starts[i] + c.DurationMS
		t.sizes[i] = c.Size
	}
	return t
}

// timelineFromDurations builds a timeline from chunk durations (ms); tests use it.
func timelineFromDurations(durs ...float64) *Timeline {
	return NewUniformTimeline(len(durs), 0, 1000, durs...)
}

// NewUniformTimeline builds the timeline of a track without its manifest
// (the simulator's tracks): n chunks of chunkMS ms and size bytes each, or
// of the durations durs when given (n is then len(durs)).
func NewUniformTimeline(n int, chunkMS float64, size int, durs ...float64) *Timeline {
	if len(durs) > 0 {
		n = len(durs)
	}
	t := &Timeline{starts: make([]float64, n+1), sizes: make([]int, n)}
	for i := range n {
		d := chunkMS
		if len(durs) > 0 {
			d = durs[i]
		}
		t.starts[i+1] = t.starts[i] + d
		t.sizes[i] = size
	}
	return t
}

// Len returns the number of chunks.
func (t *Timeline) Len() int { return len(t.sizes) }

// TotalMS returns the duration of the track in ms.
func (t *Timeline) TotalMS() float64 { return t.starts[len(t.starts)-1] }

// Start returns the start of chunk c in ms.
func (t *Timeline) Start(c int) float64 { return t.starts[c] }

// End returns the end of chunk c in ms.
func (t *Timeline) End(c int) float64 { return t.starts[c+1] }

// ChunkAt returns the chunk playing at position pos (ms), or Len() at or
// after the end.
func (t *Timeline) ChunkAt(pos float64) int {
	n := t.Len()
	if pos >= t.TotalMS() {
		return n
	}
	if pos <= 0 {
		return 0
	}
	// First chunk whose end is > pos.
	return sort.Search(n, func(i int) bool { return t.starts[i+1] > pos })
}

// FirstMissing returns the first chunk ≥ from not present, or Len().
func FirstMissing(present []bool, from int) int {
	for i := max(from, 0); i < len(present); i++ {
		if !present[i] {
			return i
		}
	}
	return len(present)
}

// AheadMS returns how many ms of audio are buffered contiguously ahead of
// position pos.
func (t *Timeline) AheadMS(present []bool, pos float64) float64 {
	c := t.ChunkAt(pos)
	if c >= t.Len() {
		return 0
	}
	m := FirstMissing(present, c)
	if m == c {
		return 0
	}
	return t.starts[m] - pos
}
