package tracker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// bitfield returns a bitfield of n chunks with the given chunks set.
func bitfield(n int, set ...int) []byte {
	b := make([]byte, (n+7)/8)
	for _, i := range set {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return b
}

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestHoldPartialValidation(t *testing.T) {
	tr, _, _ := setup(t, Config{MaxChunks: 100}, map[string]int{"a": 4})
	for _, tc := range []struct {
		name string
		have []byte
		n    int
	}{
		{"short", make([]byte, 1), 20},
		{"long", make([]byte, 4), 20},
		{"bits past the end", []byte{0, 0, 0x01}, 20},
		{"no chunks", nil, 0},
		{"over MaxChunks", make([]byte, 13), 101},
	} {
		if ok, err := tr.HoldPartial("a", tA, tc.have, tc.n); ok || !errors.Is(err, ErrBadBitfield) {
			t.Errorf("%s: recorded %v err %v, want ErrBadBitfield", tc.name, ok, err)
		}
	}
	if len(tr.Holders(tA)) != 0 {
		t.Fatal("a refused bitfield was recorded")
	}
	if _, err := tr.HoldPartial("nobody", tA, bitfield(20, 1), 20); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("unknown peer: %v", err)
	}
}

func TestHoldPartialLifecycle(t *testing.T) {
	tr, _, _ := setup(t, Config{}, map[string]int{"a": 4})
	if ok, err := tr.HoldPartial("a", tA, bitfield(20, 0, 1, 2), 20); !ok || err != nil {
		t.Fatalf("partial: %v %v", ok, err)
	}
	if got := tr.Holders(tA); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("holders %v", got)
	}
	// Every bit set: a complete holder, never downgraded by a later partial update.
	if ok, _ := tr.HoldPartial("a", tA, bitfield(20, span(0, 20)...), 20); !ok {
		t.Fatal("full bitfield not recorded")
	}
	if ok, _ := tr.HoldPartial("a", tA, bitfield(20, 3), 20); !ok {
		t.Fatal("update refused")
	}
	tr.mu.Lock()
	ps := tr.peers["a"]
	ts := tr.tracks[tA]
	_, listed := ps.holds[ts]
	i := ts.find(ps)
	complete, partials := i >= 0 && ts.list[i].complete(), len(ps.partial)
	tr.mu.Unlock()
	if !listed || !complete || partials != 0 || ps.complete != 1 {
		t.Fatalf("listed %v, complete %v (%d), partial list %d after a full bitfield", listed, complete, ps.complete, partials)
	}
	// An empty bitfield removes a partial holder (here on tB).
	if ok, _ := tr.HoldPartial("a", tB, bitfield(20, 5), 20); !ok {
		t.Fatal("partial tB refused")
	}
	if ok, _ := tr.HoldPartial("a", tB, bitfield(20), 20); ok || len(tr.Holders(tB)) != 0 {
		t.Fatalf("empty bitfield: recorded %v, holders %v", ok, tr.Holders(tB))
	}
}

func TestPartialTracksPerPeerBounded(t *testing.T) {
	tr, _, _ := setup(t, Config{MaxPartialPerPeer: 2}, map[string]int{"a": 4})
	tracks := []string{tA, tB, "cccccccccccccccccccccccccccccccc"}
	for _, tk := range tracks {
		if ok, err := tr.HoldPartial("a", tk, bitfield(8, 0), 8); !ok || err != nil {
			t.Fatalf("hold %s: %v %v", tk, ok, err)
		}
	}
	// The oldest partial track made room for the newest.
	if len(tr.Holders(tA)) != 0 || len(tr.Holders(tB)) != 1 || len(tr.Holders(tracks[2])) != 1 {
		t.Fatalf("holders: %v %v %v", tr.Holders(tA), tr.Holders(tB), tr.Holders(tracks[2]))
	}
}

func TestLookupRanksByChunksNearPosition(t *testing.T) {
	tr, fa, col := setup(t, Config{AskPerLookup: 2}, map[string]int{"r": 4, "early": 4, "late": 4, "few": 4})
	const n = 100
	mustPartial := func(p string, set []int) {
		t.Helper()
		if ok, err := tr.HoldPartial(p, tA, bitfield(n, set...), n); !ok || err != nil {
			t.Fatalf("hold %s: %v %v", p, ok, err)
		}
	}
	mustPartial("early", span(0, 40))
	mustPartial("late", span(50, 90))
	mustPartial("few", span(60, 62))
	id, err := tr.LookupQuery("r", tA, Query{From: 55, Span: 20, Partial: true})
	if err != nil {
		t.Fatal(err)
	}
	// late holds 20 of [55,75), few 2, early 0: the best two are asked, best first.
	// (A lookup without Partial would have found nobody: see TestLookupCompleteOnly.)
	if got := fa.asked(); !reflect.DeepEqual(got, []string{"late", "few"}) {
		t.Fatalf("asked %v", got)
	}
	tr.Reply("late", id, true)
	if r := col.wait(t); !reflect.DeepEqual(r.Seeders, []string{"late"}) {
		t.Fatalf("result %+v", r)
	}
}

func TestLookupBusyIsNotNoCandidates(t *testing.T) {
	tr, _, col := setup(t, Config{}, map[string]int{"r": 4, "s": 1, "bad": 4})
	if _, err := tr.Lookup("r", tA); err != nil {
		t.Fatal(err)
	}
	if r := col.wait(t); r.Reason != ReasonNoCandidates {
		t.Fatalf("cold track: %+v", r)
	}
	if _, err := tr.Hold("s", tA); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	tr.peers["s"].up.active = 1 // at its cap
	tr.mu.Unlock()
	if _, err := tr.Lookup("r", tA); err != nil {
		t.Fatal(err)
	}
	if r := col.wait(t); r.Reason != ReasonBusy {
		t.Fatalf("holder at its cap: %+v", r)
	}
	// A holder the requester reported is busy for it, too.
	if _, err := tr.Hold("bad", tB); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Report("r", "bad", tB, ReportTimeout); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Lookup("r", tB); err != nil {
		t.Fatal(err)
	}
	if r := col.wait(t); r.Reason != ReasonBusy {
		t.Fatalf("reported holder: %+v", r)
	}
}

func TestLookupSeveralSeeders(t *testing.T) {
	tr, fa, col := setup(t, Config{GatherWindow: 30 * time.Millisecond}, map[string]int{"r": 4, "a": 4, "b": 4, "c": 4})
	for _, p := range []string{"a", "b", "c"} {
		if _, err := tr.Hold(p, tA); err != nil {
			t.Fatal(err)
		}
	}
	id, err := tr.LookupQuery("r", tA, Query{Want: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(fa.asked()); n != 3 {
		t.Fatalf("asked %d", n)
	}
	tr.Reply("c", id, true)
	col.none(t) // wants two: keeps gathering
	tr.Reply("a", id, false)
	tr.Reply("b", id, true)
	r := col.wait(t)
	if !reflect.DeepEqual(r.Seeders, []string{"c", "b"}) || r.Reason != "" {
		t.Fatalf("result %+v", r)
	}
	for _, p := range []string{"b", "c"} {
		if tr.ActiveUploads(p) != 1 {
			t.Errorf("%s active %d", p, tr.ActiveUploads(p))
		}
	}
	// One yes and a silent rest: the gather window ends the lookup with one.
	if _, err := tr.Hold("a", tB); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Hold("c", tB); err != nil {
		t.Fatal(err)
	}
	id3, err := tr.LookupQuery("r", tB, Query{Want: 3})
	if err != nil {
		t.Fatal(err)
	}
	tr.Reply("a", id3, true)
	if r := col.wait(t); !reflect.DeepEqual(r.Seeders, []string{"a"}) {
		t.Fatalf("gathered %+v", r)
	}
}

func TestFullTrackForgetsBusiestHolder(t *testing.T) {
	tr, _, _ := setup(t, Config{HoldersPerTrack: 2}, map[string]int{"busy": 1, "idle": 4, "new": 4})
	if _, err := tr.Hold("busy", tA); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Hold("idle", tA); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	tr.peers["busy"].up.active = 1
	tr.mu.Unlock()
	if _, err := tr.Hold("new", tA); err != nil {
		t.Fatal(err)
	}
	// busy is more recent than nothing but has no free slot: it goes, idle stays.
	if got := tr.Holders(tA); !reflect.DeepEqual(got, []string{"new", "idle"}) {
		t.Fatalf("holders %v", got)
	}
}

// BenchmarkLookup measures lookups on a tracker with 10,000 peers, each
// holding tracks (complete or in part), and 1,000 lookups pending at all
// times: each iteration starts one lookup and ends the oldest pending one.
// The target is ≥ 50,000 lookups/s on one core (go test -cpu 1).
func BenchmarkLookup(b *testing.B) {
	const (
		peers   = 10_000
		tracks  = 2_000
		pending = 1_000
		chunks  = 200
	)
	tr := New(Config{LookupTimeout: time.Hour}, nopAsker{}, func(Result) {})
	defer tr.Close()
	ids := make([]string, peers)
	for i := range ids {
		ids[i] = fmt.Sprintf("p-%016x", i)
		if err := tr.Join(ids[i], 4); err != nil {
			b.Fatal(err)
		}
	}
	trackIDs := make([]string, tracks)
	for i := range trackIDs {
		trackIDs[i] = fmt.Sprintf("%032x", i)
	}
	partial := bitfield(chunks, span(0, chunks/2)...)
	for i, p := range ids {
		for k := 0; k < 8; k++ {
			tk := trackIDs[(i*7+k*131)%tracks]
			if k%2 == 0 {
				if _, err := tr.Hold(p, tk); err != nil {
					b.Fatal(err)
				}
			} else if _, err := tr.HoldPartial(p, tk, partial, chunks); err != nil {
				b.Fatal(err)
			}
		}
	}
	type started struct{ id, requester string }
	ring := make([]started, 0, pending)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := ids[i%peers]
		id, err := tr.LookupQuery(req, trackIDs[(i*17)%tracks], Query{Want: 2, From: i % chunks, Partial: true})
		if err != nil {
			b.Fatal(err)
		}
		ring = append(ring, started{id, req})
		if len(ring) >= pending {
			old := ring[0]
			ring = ring[1:]
			tr.endLookup(old.id)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// nopAsker queues every question and never answers.
type nopAsker struct{}

func (nopAsker) AskUpload(string, string, string, string) bool { return true }

// endLookup ends a pending lookup as its timeout would (benchmark helper).
func (t *Tracker) endLookup(id string) { t.expire(id) }

func TestLookupCompleteOnly(t *testing.T) {
	tr, fa, col := setup(t, Config{}, map[string]int{"r": 4, "part": 4, "full": 4})
	if ok, err := tr.HoldPartial("part", tA, bitfield(10, 0, 1), 10); !ok || err != nil {
		t.Fatalf("partial: %v %v", ok, err)
	}
	if _, err := tr.Lookup("r", tA); err != nil {
		t.Fatal(err)
	}
	if r := col.wait(t); r.Reason != ReasonNoCandidates {
		t.Fatalf("complete-only lookup with a partial holder: %+v", r)
	}
	if _, err := tr.Hold("full", tA); err != nil {
		t.Fatal(err)
	}
	id, err := tr.Lookup("r", tA)
	if err != nil {
		t.Fatal(err)
	}
	if got := fa.asked(); !reflect.DeepEqual(got, []string{"full"}) {
		t.Fatalf("asked %v", got)
	}
	tr.Reply("full", id, true)
	col.wait(t)
}

func TestLookupExcludesPartners(t *testing.T) {
	tr, fa, col := setup(t, Config{}, map[string]int{"r": 4, "a": 4, "b": 4})
	for _, p := range []string{"a", "b"} {
		if _, err := tr.Hold(p, tA); err != nil {
			t.Fatal(err)
		}
	}
	id, err := tr.LookupQuery("r", tA, Query{Exclude: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fa.asked(); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("asked %v", got)
	}
	tr.Reply("b", id, false)
	col.wait(t)
	if _, err := tr.LookupQuery("r", tA, Query{Exclude: []string{"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	if r := col.wait(t); r.Reason != ReasonBusy {
		t.Fatalf("every holder a partner: %+v", r)
	}
}

// BenchmarkJoinAnnounce measures what a listener coming online costs the
// tracker: it joins and announces the 150 tracks of its cache, drawn by Zipf
// popularity from 100,000, while 20,000 others are online (the oldest
// leaves at each join). Popular tracks' holder lists are full, so most
// announcements replace a holder.
func BenchmarkJoinAnnounce(b *testing.B) {
	const (
		online  = 20_000
		tracks  = 100_000
		perPeer = 150
		sets    = 1_000
	)
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.05, 1, tracks-1)
	trackIDs := make([]string, tracks)
	for i := range trackIDs {
		trackIDs[i] = fmt.Sprintf("%032x", i)
	}
	caches := make([][]string, sets)
	for i := range caches {
		for range perPeer {
			caches[i] = append(caches[i], trackIDs[zipf.Uint64()])
		}
	}
	tr := New(Config{}, nopAsker{}, func(Result) {})
	defer tr.Close()
	ring := make([]string, 0, online)
	join := func(prefix string, i int) {
		id := prefix + strconv.Itoa(i)
		if err := tr.Join(id, 4); err != nil {
			b.Fatal(err)
		}
		if _, err := tr.Hold(id, caches[i%sets]...); err != nil {
			b.Fatal(err)
		}
		if len(ring) == online {
			tr.Leave(ring[0])
			ring = ring[1:]
		}
		ring = append(ring, id)
	}
	for i := range online {
		join("warm-", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		join("p-", i)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "joins/s")
}
