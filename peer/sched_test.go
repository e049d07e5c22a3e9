package peer

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

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

// presentUpTo returns n flags with chunks [0, k) present.
func presentUpTo(n, k int) []bool {
	p := make([]bool, n)
	for i := 0; i < k; i++ {
		p[i] = true
	}
	return p
}

func TestSchedule(t *testing.T) {
	tl := uniform(40)
	cfg := SchedConfig{} // defaults: start 10 s, emergency 3 s, urgent 5 s, hub ahead 10 s, peer ahead 300 s, window 16
	withGap := presentUpTo(40, 10)
	withGap[12] = true
	tests := []struct {
		name string
		cfg  SchedConfig
		in   SchedInput
		want SchedDecision
	}{
		{"start, no seeder: 10 s from the hub", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 0)},
			SchedDecision{Hub: Range{0, 10}}},
		{"start, probing connected peers: only the emergency window", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 0), Probing: true},
			SchedDecision{Hub: Range{0, 3}}},
		{"probing, 2 s buffered: wait for the seeder answer", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 3), PlayheadMS: 1000, Probing: true, Hub: SourceState{}},
			SchedDecision{}},
		{"probing, 1 s buffered: emergency, 5 s ahead", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 3), PlayheadMS: 2000, Probing: true},
			SchedDecision{Hub: Range{3, 7}}},
		{"start, seeder connected: hub 3 s, seeder the next window", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 0), SeederConnected: true},
			SchedDecision{Hub: Range{0, 3}, Seeder: Range{3, 19}}},
		{"start in flight at the hub, seeder just connected: seeder after the hub range", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 1), Hub: SourceState{Active: true, From: 0, To: 10, Next: 1}, SeederConnected: true},
			SchedDecision{Seeder: Range{10, 26}}},
		{"hub start range in flight, no seeder: wait", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 2), Hub: SourceState{Active: true, From: 0, To: 10, Next: 2}},
			SchedDecision{}},
		{"steady state: seeder range in flight covering next: nothing", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 12), PlayheadMS: 10500, SeederConnected: true, Seeder: SourceState{Active: true, From: 12, To: 28, Next: 12}},
			SchedDecision{}},
		{"seeder range done: next window", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 19), PlayheadMS: 4000, SeederConnected: true},
			SchedDecision{Seeder: Range{19, 35}}},
		{"seeder range stops at a present chunk", SchedConfig{},
			SchedInput{Present: withGap, PlayheadMS: 1000, SeederConnected: true},
			SchedDecision{Seeder: Range{10, 12}}},
		{"peer look-ahead limit reached: nothing", SchedConfig{PeerAheadMS: 20_000},
			SchedInput{Present: presentUpTo(40, 30), PlayheadMS: 0, SeederConnected: true},
			SchedDecision{}},
		{"stalled seeder and under 3 s buffered: emergency from the hub, seeder moved after it", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 12), PlayheadMS: 10000, SeederConnected: true, Seeder: SourceState{Active: true, From: 12, To: 28, Next: 12, Stalled: true}},
			SchedDecision{Hub: Range{12, 15}, Seeder: Range{15, 31}}},
		{"stalled seeder but plenty buffered: wait", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 12), PlayheadMS: 5000, SeederConnected: true, Seeder: SourceState{Active: true, From: 12, To: 28, Next: 12, Stalled: true}},
			SchedDecision{}},
		{"seeder gone, under 3 s: emergency fills 10 s from the hub", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 12), PlayheadMS: 10000},
			SchedDecision{Hub: Range{12, 20}}},
		{"no seeder, 6 s buffered: no refill yet", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 16), PlayheadMS: 10000},
			SchedDecision{}},
		{"no seeder, 4 s buffered: refill to 10 s ahead", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 14), PlayheadMS: 10000},
			SchedDecision{Hub: Range{14, 20}}},
		{"nobody holds the track: the hub sends the rest at once", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 10), PlayheadMS: 1000, NoHolders: true},
			SchedDecision{Hub: Range{10, 40}}},
		{"nobody holds the track, prefetch disabled: 10 s windows", SchedConfig{FirstCopyAheadMS: -1},
			SchedInput{Present: presentUpTo(40, 14), PlayheadMS: 10000, NoHolders: true},
			SchedDecision{Hub: Range{14, 20}}},
		{"no seeder, hub range in flight: wait", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 12), PlayheadMS: 10000, Hub: SourceState{Active: true, From: 12, To: 20, Next: 12}},
			SchedDecision{}},
		{"emergency range clipped at the end of the track", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 38), PlayheadMS: 37500},
			SchedDecision{Hub: Range{38, 40}}},
		{"everything present: nothing", SchedConfig{},
			SchedInput{Present: presentUpTo(40, 40), PlayheadMS: 1000, SeederConnected: true},
			SchedDecision{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Timeline = tl
			c := cfg
			if tt.cfg != (SchedConfig{}) {
				c = tt.cfg
			}
			got := Schedule(c, tt.in)
			if got != tt.want {
				t.Errorf("Schedule = %+v, want %+v", got, tt.want)
			}
		})
	}
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

func testManifest(id string, chunks [][]byte) *media.Manifest {
	m := &media.Manifest{ID: id}
	for i, c := range chunks {
		s := sha256.Sum256(c)
		m.Chunks = append(m.Chunks, media.ChunkInfo{Seq: i, DurationMS: 1000, StartMS: float64(i) * 1000, Size: len(c), SHA256: hex.EncodeToString(s[:])})
		m.Size += int64(len(c))
	}
	return m
}

func TestVerifyChunk(t *testing.T) {
	m := testManifest("a", [][]byte{[]byte("hello"), []byte("world")})
	if !VerifyChunk(m, 1, []byte("world")) {
		t.Error("good chunk refused")
	}
	for _, c := range []struct {
		seq  int
		data string
	}{{1, "worle"}, {1, "worl"}, {0, "world"}, {2, "world"}, {-1, "hello"}} {
		if VerifyChunk(m, c.seq, []byte(c.data)) {
			t.Errorf("VerifyChunk(%d, %q) accepted", c.seq, c.data)
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
