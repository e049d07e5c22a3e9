package tracker

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

type ask struct{ peer, track, lookup string }

type fakeAsker struct {
	mu   sync.Mutex
	asks []ask
	full map[string]bool // peers whose queue is full
}

func (f *fakeAsker) AskUpload(peer, track, lookupID, _ string) bool {
	f.mu.Lock()
	f.asks = append(f.asks, ask{peer, track, lookupID})
	full := f.full[peer]
	f.mu.Unlock()
	return !full
}

func (f *fakeAsker) asked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, a := range f.asks {
		out = append(out, a.peer)
	}
	return out
}

type collector struct {
	ch chan Result
}

func newCollector() *collector { return &collector{ch: make(chan Result, 100)} }

func (c *collector) on(r Result) { c.ch <- r }

func (c *collector) wait(t *testing.T) Result {
	t.Helper()
	select {
	case r := <-c.ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no lookup result within 5s")
		return Result{}
	}
}

func (c *collector) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-c.ch:
		t.Fatalf("unexpected result %+v", r)
	default:
	}
}

const (
	tA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	tB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func setup(t *testing.T, cfg Config, peers map[string]int) (*Tracker, *fakeAsker, *collector) {
	t.Helper()
	fa := &fakeAsker{full: map[string]bool{}}
	col := newCollector()
	if cfg.LookupTimeout == 0 {
		cfg.LookupTimeout = time.Hour // tests that want a timeout set it
	}
	tr := New(cfg, fa, col.on)
	t.Cleanup(tr.Close)
	for p, c := range peers {
		if err := tr.Join(p, c); err != nil {
			t.Fatal(err)
		}
	}
	return tr, fa, col
}

func TestHoldersMostRecentFirstAndBounded(t *testing.T) {
	tr, _, _ := setup(t, Config{HoldersPerTrack: 3}, map[string]int{"a": 4, "b": 4, "c": 4, "d": 4})
	for _, step := range []struct {
		peer string
		want []string
	}{
		{"a", []string{"a"}},
		{"b", []string{"b", "a"}},
		{"a", []string{"a", "b"}},
		{"c", []string{"c", "a", "b"}},
		{"d", []string{"d", "c", "a"}},
	} {
		if _, err := tr.Hold(step.peer, tA); err != nil {
			t.Fatal(err)
		}
		if got := tr.Holders(tA); !reflect.DeepEqual(got, step.want) {
			t.Fatalf("after %s: holders %v want %v", step.peer, got, step.want)
		}
	}
	// b was evicted: its track set no longer lists tA, so it can take another.
	tr.Leave("c")
	if got := tr.Holders(tA); !reflect.DeepEqual(got, []string{"d", "a"}) {
		t.Fatalf("after leave: %v", got)
	}
	if _, err := tr.Hold("zz", tA); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("hold by unknown peer: %v", err)
	}
}

func TestMaxTracksPerPeer(t *testing.T) {
	tr, _, _ := setup(t, Config{MaxTracksPerPeer: 1}, map[string]int{"a": 4})
	n, err := tr.Hold("a", tA, tB)
	if err != nil || n != 1 {
		t.Fatalf("hold: n=%d err=%v", n, err)
	}
	if len(tr.Holders(tB)) != 0 {
		t.Fatal("second track recorded beyond the cap")
	}
}

func TestLookupOutcomes(t *testing.T) {
	type reply struct {
		peer string
		ok   bool
	}
	for _, tc := range []struct {
		name       string
		caps       map[string]int
		holders    []string // Hold order; last is most recent
		active     map[string]int
		full       []string
		replies    []reply
		timeout    time.Duration
		wantAsked  []string
		wantSeeder string
		wantReason string
	}{
		{name: "no holders", caps: map[string]int{"r": 4}, wantReason: ReasonNoCandidates},
		{name: "only requester holds", caps: map[string]int{"r": 4}, holders: []string{"r"}, wantReason: ReasonNoCandidates},
		{
			name: "first yes wins", caps: map[string]int{"r": 4, "a": 4, "b": 4}, holders: []string{"a", "b"},
			replies:   []reply{{"b", false}, {"a", true}},
			wantAsked: []string{"b", "a"}, wantSeeder: "a",
		},
		{
			name: "later yes ignored", caps: map[string]int{"r": 4, "a": 4, "b": 4}, holders: []string{"a", "b"},
			replies:   []reply{{"a", true}, {"b", true}},
			wantAsked: []string{"b", "a"}, wantSeeder: "a",
		},
		{
			name: "all refuse", caps: map[string]int{"r": 4, "a": 4, "b": 4}, holders: []string{"a", "b"},
			replies:   []reply{{"a", false}, {"b", false}},
			wantAsked: []string{"b", "a"}, wantReason: ReasonAllRefused,
		},
		{
			name: "seeder at cap not asked", caps: map[string]int{"r": 4, "a": 1, "b": 4}, holders: []string{"a", "b"},
			active: map[string]int{"a": 1}, replies: []reply{{"b", true}},
			wantAsked: []string{"b"}, wantSeeder: "b",
		},
		{
			name: "zero cap never asked", caps: map[string]int{"r": 4, "a": 0}, holders: []string{"a"},
			wantReason: ReasonNoCandidates,
		},
		{
			name: "unasked peer's yes ignored then timeout", caps: map[string]int{"r": 4, "a": 4, "x": 4}, holders: []string{"a"},
			replies: []reply{{"x", true}}, timeout: 30 * time.Millisecond,
			wantAsked: []string{"a"}, wantReason: ReasonTimeout,
		},
		{
			name: "full queue counts as no", caps: map[string]int{"r": 4, "a": 4}, holders: []string{"a"},
			full: []string{"a"}, wantAsked: []string{"a"}, wantReason: ReasonAllRefused,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, fa, col := setup(t, Config{LookupTimeout: tc.timeout}, tc.caps)
			for _, p := range tc.full {
				fa.full[p] = true
			}
			for _, h := range tc.holders {
				if _, err := tr.Hold(h, tA); err != nil {
					t.Fatal(err)
				}
			}
			for p, n := range tc.active {
				tr.mu.Lock()
				tr.peers[p].up.active = n
				tr.mu.Unlock()
			}
			id, err := tr.Lookup("r", tA)
			if err != nil {
				t.Fatal(err)
			}
			if got := fa.asked(); !reflect.DeepEqual(got, tc.wantAsked) {
				t.Fatalf("asked %v want %v", got, tc.wantAsked)
			}
			for _, r := range tc.replies {
				tr.Reply(r.peer, id, r.ok)
			}
			res := col.wait(t)
			var wantSeeders []string
			if tc.wantSeeder != "" {
				wantSeeders = []string{tc.wantSeeder}
			}
			want := Result{LookupID: id, Requester: "r", Track: tA, Seeders: wantSeeders, Reason: tc.wantReason}
			if res.Elapsed < 0 {
				t.Fatalf("negative elapsed %v", res.Elapsed)
			}
			res.Elapsed = 0
			if !reflect.DeepEqual(res, want) {
				t.Fatalf("result %+v want %+v", res, want)
			}
			col.none(t)
			if tr.Pending() != 0 {
				t.Fatalf("pending %d after result", tr.Pending())
			}
			if tc.wantSeeder != "" && tr.ActiveUploads(tc.wantSeeder) != tc.active[tc.wantSeeder]+1 {
				t.Fatalf("seeder active %d", tr.ActiveUploads(tc.wantSeeder))
			}
			// Counters are back to zero for everyone once the lookup ended.
			tr.mu.Lock()
			for p, ps := range tr.peers {
				if ps.outstanding != 0 || len(ps.lookups) != 0 || len(ps.askedIn) != 0 {
					t.Errorf("peer %s outstanding=%d pending=%d asked in=%d", p, ps.outstanding, len(ps.lookups), len(ps.askedIn))
				}
			}
			tr.mu.Unlock()
		})
	}
}

func TestCapHeldAcrossConcurrentLookups(t *testing.T) {
	tr, fa, col := setup(t, Config{}, map[string]int{"r1": 4, "r2": 4, "s": 1, "o": 4})
	if _, err := tr.Hold("s", tA); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Hold("o", tA); err != nil {
		t.Fatal(err)
	}
	id1, _ := tr.Lookup("r1", tA)
	id2, _ := tr.Lookup("r2", tA)
	if n := len(fa.asked()); n != 4 {
		t.Fatalf("asked %d times, want 4", n)
	}
	tr.Reply("s", id1, true)
	if r := col.wait(t); !reflect.DeepEqual(r.Seeders, []string{"s"}) || r.Requester != "r1" {
		t.Fatalf("first: %+v", r)
	}
	tr.Reply("s", id2, true) // s is at its cap of 1 now: counts as no
	col.none(t)
	tr.Reply("o", id2, false)
	if r := col.wait(t); len(r.Seeders) != 0 || r.Reason != ReasonAllRefused {
		t.Fatalf("second: %+v", r)
	}
	tr.ReleaseUpload("s")
	tr.ReleaseUpload("s") // never negative
	if n := tr.ActiveUploads("s"); n != 0 {
		t.Fatalf("active %d", n)
	}
}

func TestLookupLimits(t *testing.T) {
	tr, _, _ := setup(t, Config{MaxPendingPerPeer: 2}, map[string]int{"r": 4, "s": 4})
	for _, tr2 := range []string{tA, tB, "cccccccccccccccccccccccccccccccc"} {
		if _, err := tr.Hold("s", tr2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tr.Lookup("r", tA); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Lookup("r", tA); !errors.Is(err, ErrDuplicateLookup) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := tr.Lookup("r", tB); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Lookup("r", "cccccccccccccccccccccccccccccccc"); !errors.Is(err, ErrTooManyLookups) {
		t.Fatalf("third: %v", err)
	}
	if _, err := tr.Lookup("nobody", tA); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("unknown: %v", err)
	}
	if err := tr.Join("r", 1); !errors.Is(err, ErrPeerExists) {
		t.Fatalf("rejoin: %v", err)
	}
}

func TestOutstandingAsksBound(t *testing.T) {
	peers := map[string]int{"s": 4}
	reqs := []string{"r0", "r1", "r2"}
	for _, r := range reqs {
		peers[r] = 4
	}
	tr, fa, col := setup(t, Config{MaxOutstandingAsks: 2}, peers)
	if _, err := tr.Hold("s", tA); err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if _, err := tr.Lookup(r, tA); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(fa.asked()); n != 2 {
		t.Fatalf("s asked %d times, want 2", n)
	}
	// s holds the track but has too many unanswered asks: busy, not "nobody holds it".
	if r := col.wait(t); r.Requester != "r2" || r.Reason != ReasonBusy {
		t.Fatalf("third lookup: %+v", r)
	}
}

func TestLeave(t *testing.T) {
	tr, _, col := setup(t, Config{}, map[string]int{"r": 4, "r2": 4, "s": 4})
	if _, err := tr.Hold("s", tA); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Lookup("r", tA); err != nil {
		t.Fatal(err)
	}
	// The requester leaves: no result, counters released.
	tr.Leave("r")
	col.none(t)
	if tr.Pending() != 0 {
		t.Fatal("lookup of departed requester still pending")
	}
	// The only candidate leaves: the lookup ends at once.
	if _, err := tr.Lookup("r2", tA); err != nil {
		t.Fatal(err)
	}
	tr.Leave("s")
	if r := col.wait(t); r.Reason != ReasonAllRefused {
		t.Fatalf("result %+v", r)
	}
	if len(tr.Holders(tA)) != 0 {
		t.Fatal("departed peer still a holder")
	}
	tr.Leave("s") // twice is fine
}

func TestClose(t *testing.T) {
	tr, _, col := setup(t, Config{LookupTimeout: 20 * time.Millisecond}, map[string]int{"r": 4, "s": 4})
	if _, err := tr.Hold("s", tA); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Lookup("r", tA); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	time.Sleep(60 * time.Millisecond) // a stopped timer must not deliver
	col.none(t)
	if _, err := tr.Lookup("r", tA); !errors.Is(err, ErrClosed) {
		t.Fatalf("lookup after close: %v", err)
	}
}

// candidates runs a lookup by requester of track and returns whom the tracker
// asked (the lookup is then answered no by everyone asked).
func candidates(t *testing.T, tr *Tracker, fa *fakeAsker, col *collector, requester, track string) []string {
	t.Helper()
	before := len(fa.asked())
	id, err := tr.Lookup(requester, track)
	if err != nil {
		t.Fatal(err)
	}
	asked := fa.asked()[before:]
	for _, p := range asked {
		tr.Reply(p, id, false)
	}
	col.wait(t)
	return asked
}

func TestReportExcludesSeederForReporterAndTrackOnly(t *testing.T) {
	tr, fa, col := setup(t, Config{}, map[string]int{"bad": 4, "good": 4, "r1": 4, "r2": 4})
	for _, p := range []string{"good", "bad"} {
		if _, err := tr.Hold(p, tA, tB); err != nil {
			t.Fatal(err)
		}
	}
	if dropped, err := tr.Report("r1", "bad", tA, ReportHashMismatch); err != nil || dropped {
		t.Fatalf("first report: dropped %v err %v", dropped, err)
	}
	if got := candidates(t, tr, fa, col, "r1", tA); !reflect.DeepEqual(got, []string{"good"}) {
		t.Errorf("r1 lookup of tA asked %v, want only good", got)
	}
	if got := candidates(t, tr, fa, col, "r1", tB); len(got) != 2 {
		t.Errorf("r1 lookup of tB asked %v, want both (reported for tA only)", got)
	}
	if got := candidates(t, tr, fa, col, "r2", tA); len(got) != 2 {
		t.Errorf("r2 lookup of tA asked %v, want both (one report does not drop)", got)
	}
	// The same reporter again does not count twice.
	if dropped, _ := tr.Report("r1", "bad", tA, ReportBadMessage); dropped {
		t.Error("a repeated report by the same peer dropped the seeder")
	}
	if !reflect.DeepEqual(tr.Holders(tA), []string{"bad", "good"}) {
		t.Errorf("holders %v", tr.Holders(tA))
	}
}

func TestTwoReportsDropSeederForEveryone(t *testing.T) {
	tr, fa, col := setup(t, Config{}, map[string]int{"bad": 4, "good": 4, "r1": 4, "r2": 4, "r3": 4})
	for _, p := range []string{"good", "bad"} {
		if _, err := tr.Hold(p, tA, tB); err != nil {
			t.Fatal(err)
		}
	}
	if dropped, _ := tr.Report("r1", "bad", tA, ReportHashMismatch); dropped {
		t.Fatal("dropped after one report")
	}
	dropped, err := tr.Report("r2", "bad", tA, ReportBadMessage)
	if err != nil || !dropped {
		t.Fatalf("second distinct report: dropped %v err %v", dropped, err)
	}
	if got := tr.Holders(tA); !reflect.DeepEqual(got, []string{"good"}) {
		t.Errorf("holders of tA %v, want [good]", got)
	}
	if got := candidates(t, tr, fa, col, "r3", tA); !reflect.DeepEqual(got, []string{"good"}) {
		t.Errorf("r3 asked %v", got)
	}
	// Its completed/announce for tA are ignored from now on; tB is untouched.
	if n, err := tr.Hold("bad", tA, tB); err != nil || n != 1 {
		t.Errorf("hold after drop recorded %d (err %v), want 1 (tB only)", n, err)
	}
	if got := tr.Holders(tA); !reflect.DeepEqual(got, []string{"good"}) {
		t.Errorf("holders of tA after re-announce %v", got)
	}
	if again, _ := tr.Report("r3", "bad", tA, ReportHashMismatch); again {
		t.Error("Report returned dropped twice")
	}
}

// TestTimeoutsNeverDrop: timeouts exclude the seeder for the reporter only,
// however many peers report them (an overloaded machine times out honest
// seeders); they do not add to hash or bad message reports either.
func TestTimeoutsNeverDrop(t *testing.T) {
	tr, fa, col := setup(t, Config{}, map[string]int{"slow": 4, "r1": 4, "r2": 4, "r3": 4, "r4": 4})
	if _, err := tr.Hold("slow", tA); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"r1", "r2", "r3"} {
		if dropped, err := tr.Report(r, "slow", tA, ReportTimeout); err != nil || dropped {
			t.Fatalf("timeout report by %s: dropped %v err %v", r, dropped, err)
		}
	}
	if got := tr.Holders(tA); !reflect.DeepEqual(got, []string{"slow"}) {
		t.Errorf("holders %v", got)
	}
	if got := candidates(t, tr, fa, col, "r1", tA); len(got) != 0 {
		t.Errorf("r1 asked %v after its timeout report", got)
	}
	if got := candidates(t, tr, fa, col, "r4", tA); !reflect.DeepEqual(got, []string{"slow"}) {
		t.Errorf("r4 asked %v", got)
	}
	// A hash report after timeouts is the first strong one: no drop yet.
	if dropped, _ := tr.Report("r1", "slow", tA, ReportHashMismatch); dropped {
		t.Error("dropped after one hash report and timeouts")
	}
	if dropped, _ := tr.Report("r4", "slow", tA, ReportBadMessage); !dropped {
		t.Error("not dropped after two strong reports")
	}
}

func TestReportBounds(t *testing.T) {
	tr, fa, col := setup(t, Config{MaxExclusionsPerPeer: 3}, map[string]int{"r": 4, "s0": 4, "s1": 4, "s2": 4, "s3": 4})
	for _, s := range []string{"s0", "s1", "s2", "s3"} {
		if _, err := tr.Hold(s, tA); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"s0", "s1", "s2", "s3"} {
		if _, err := tr.Report("r", s, tA, ReportTimeout); err != nil {
			t.Fatal(err)
		}
	}
	// Only the three most recent exclusions are kept: s0 is a candidate again.
	if got := candidates(t, tr, fa, col, "r", tA); !reflect.DeepEqual(got, []string{"s0"}) {
		t.Errorf("asked %v, want [s0]", got)
	}
	if _, err := tr.Report("nobody", "s0", tA, ReportTimeout); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("report by unknown peer: %v", err)
	}
	if dropped, err := tr.Report("r", "gone", tA, ReportHashMismatch); err != nil || dropped {
		t.Errorf("report of a departed seeder: %v %v", dropped, err)
	}
	// A departed reporter's reports are forgotten with it.
	tr.Leave("r")
	if err := tr.Join("r", 4); err != nil {
		t.Fatal(err)
	}
	if got := candidates(t, tr, fa, col, "r", tA); len(got) != 4 {
		t.Errorf("after rejoin asked %v, want all four", got)
	}
}

// TestReserve: another hub's pairing takes a slot of a seeder up to its cap,
// never of an unknown peer, and ReleaseUpload frees it.
func TestReserve(t *testing.T) {
	tr, _, _ := setup(t, Config{}, map[string]int{"s": 2})
	for i := range 2 {
		if !tr.Reserve("s") {
			t.Fatalf("reserve %d below the cap of 2 refused", i+1)
		}
	}
	if tr.Reserve("s") {
		t.Fatal("reserve beyond the cap of 2 accepted")
	}
	if tr.Reserve("nobody") {
		t.Fatal("reserve of an unknown peer accepted")
	}
	tr.ReleaseUpload("s")
	if n := tr.ActiveUploads("s"); n != 1 || !tr.Reserve("s") {
		t.Fatalf("after a release: active %d, or the freed slot not reserved", n)
	}
}
