package peer

import (
	"slices"
	"testing"
	"time"

	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/media"
)

// uniform returns a timeline of n chunks of 1 s each.
func uniform(n int) *Timeline {
	d := make([]float64, n)
	for i := range d {
		d[i] = 1000
	}
	return timelineFromDurations(d...)
}

func TestTimeline(t *testing.T) {
	tl := timelineFromDurations(500, 1000, 250)
	if got := tl.TotalMS(); got != 1750 {
		t.Fatalf("TotalMS = %v", got)
	}
	for _, c := range []struct {
		pos  float64
		want int
	}{{0, 0}, {499.9, 0}, {500, 1}, {1499, 1}, {1500, 2}, {1750, 3}, {9999, 3}} {
		if got := tl.ChunkAt(c.pos); got != c.want {
			t.Errorf("ChunkAt(%v) = %d, want %d", c.pos, got, c.want)
		}
	}
	if got := tl.AheadMS([]bool{true, true, false}, 200); got != 1300 {
		t.Errorf("AheadMS = %v, want 1300", got)
	}
	if got := tl.AheadMS([]bool{false, true, true}, 0); got != 0 {
		t.Errorf("AheadMS with chunk 0 missing = %v, want 0", got)
	}
}

func TestPlayback(t *testing.T) {
	tl := uniform(4)         // 4 s
	p := NewPlayback(tl, 10) // 1 chunk per 100 ms of real time
	t0 := time.Unix(1000, 0)
	present := []bool{true, true, false, true}
	p.Advance(t0.Add(time.Second), present)
	if p.Position() != 0 {
		t.Fatalf("advanced before Start: %v", p.Position())
	}
	p.Start(t0)
	p.Advance(t0.Add(150*time.Millisecond), present)
	if p.Position() != 1500 || p.Stalled() {
		t.Fatalf("position %v stalled %v, want 1500 playing", p.Position(), p.Stalled())
	}
	if got := p.UntilNeed(present); got != 50*time.Millisecond {
		t.Errorf("UntilNeed = %v, want 50ms", got)
	}
	p.Advance(t0.Add(300*time.Millisecond), present) // reaches chunk 2 at 200 ms
	if !p.Stalled() || p.Stalls() != 1 || p.Position() != 2000 {
		t.Fatalf("want a stall at 2000: pos %v stalled %v stalls %d", p.Position(), p.Stalled(), p.Stalls())
	}
	present[2] = true
	p.Advance(t0.Add(400*time.Millisecond), present) // chunk 2 arrives: 200 ms stalled
	if p.Stalled() || p.StalledTime() != 200*time.Millisecond {
		t.Fatalf("stalled %v for %v, want resumed after 200ms", p.Stalled(), p.StalledTime())
	}
	p.Advance(t0.Add(time.Second), present)
	if !p.Done() || p.Stalls() != 1 {
		t.Fatalf("done %v stalls %d, want done with 1 stall", p.Done(), p.Stalls())
	}
}

func TestVerifyChunk(t *testing.T) {
	tr := testtrack.New(1, 2, testtrack.Size(5))
	m, c0, c1 := tr.Manifest, tr.Chunk(0), tr.Chunk(1)
	if !VerifyChunk(m, 1, c1) {
		t.Error("good chunk refused")
	}
	changed := slices.Clone(c1)
	changed[4] ^= 1
	for _, c := range []struct {
		seq  int
		data []byte
	}{{1, changed}, {1, c1[:4]}, {0, c1}, {2, c1}, {-1, c0}} {
		if VerifyChunk(m, c.seq, c.data) {
			t.Errorf("VerifyChunk(%d, %x) accepted", c.seq, c.data)
		}
	}
}

func TestCacheLRU(t *testing.T) {
	c := NewCache(10)
	mk := func(id string, size int) *CachedTrack {
		return &CachedTrack{Manifest: &media.Manifest{ID: id, Size: int64(size)}}
	}
	c.Put(mk("a", 4))
	c.Put(mk("b", 4))
	if _, ok := c.Get("a"); !ok { // a becomes most recent
		t.Fatal("a missing")
	}
	ev := c.Put(mk("c", 4))
	if len(ev) != 1 || ev[0] != "b" {
		t.Fatalf("evicted %v, want [b]", ev)
	}
	if got := c.IDs(); len(got) != 2 || got[0] != "c" || got[1] != "a" {
		t.Fatalf("IDs = %v", got)
	}
	if c.Used() != 8 {
		t.Fatalf("Used = %d", c.Used())
	}
	if ev := c.Put(mk("huge", 11)); ev != nil {
		t.Fatalf("oversized put evicted %v", ev)
	}
	if _, ok := c.Peek("huge"); ok {
		t.Fatal("oversized track kept")
	}
	c.Put(mk("a", 6)) // replace a with a bigger version
	if c.Used() != 10 {
		t.Fatalf("Used after replace = %d", c.Used())
	}
}
