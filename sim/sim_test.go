package sim

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestClockOrder pins the event order: by time, then in the order the
// events were scheduled; a stopped event does not run; Run leaves the
// clock at its end.
func TestClockOrder(t *testing.T) {
	c := NewClock(time.Unix(0, 0))
	var got []string
	add := func(d time.Duration, name string) *event {
		return c.after(d, func() { got = append(got, name) })
	}
	add(2*time.Second, "c")
	add(time.Second, "a")
	add(time.Second, "b")
	x := add(time.Second, "x")
	add(0, "first")
	c.after(time.Second, func() {
		got = append(got, "d")
		c.after(0, func() { got = append(got, "e (scheduled by d, same time)") })
	})
	if !x.Stop() || x.Stop() {
		t.Error("Stop: true once, then false")
	}
	c.AfterFunc(1500*time.Millisecond, func() { got = append(got, "tracker timer") })
	c.Run(10*time.Second, nil)
	want := []string{"first", "a", "b", "d", "e (scheduled by d, same time)", "tracker timer", "c"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
	if c.Elapsed() != 10*time.Second || !c.Now().Equal(time.Unix(10, 0)) {
		t.Errorf("clock at %v (%v) after Run, want 10s", c.Elapsed(), c.Now())
	}
	if c.Processed != 7 {
		t.Errorf("%d events run, want 7", c.Processed)
	}
}

// small is a quick scenario: 300 listeners on 3,000 tracks for half an hour.
func small() Scenario {
	s, _ := Builtin("community")
	s.Listeners = 300
	s.Users = 600
	s.Catalog.Tracks = 3000
	s.Hours = 0.5
	s.StartHour = 10
	return s
}

func run(t *testing.T, sc Scenario) Report {
	t.Helper()
	s, err := New(sc)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Run()
	r.WallSeconds, r.HeapMB = 0, 0
	return r
}

// TestDeterministic: a seed gives the same report; another seed another.
func TestDeterministic(t *testing.T) {
	a, b := run(t, small()), run(t, small())
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("two runs of one seed differ:\n%+v\n%+v", a, b)
	}
	sc := small()
	sc.Seed = 2
	if c := run(t, sc); c.ServerBytes == a.ServerBytes && c.P2PBytes == a.P2PBytes {
		t.Error("seeds 1 and 2 gave the same bytes")
	}
	if a.NetworkPlays < 100 || a.Events == 0 {
		t.Fatalf("too small a run to say anything: %+v", a)
	}
}

// TestNoPeers: with listeners that never upload every network byte comes
// from the server, and every start too.
func TestNoPeers(t *testing.T) {
	sc := small()
	sc.UploadCap = 0
	r := run(t, sc)
	if r.P2PBytes != 0 || r.Offload != 0 || r.Tracker.Pairs != 0 {
		t.Errorf("p2p without uploads: %+v", r)
	}
	if r.ServerBytes == 0 || r.ServerShare+r.CacheShare < 0.999 {
		t.Errorf("server %d bytes, shares %.3f + %.3f", r.ServerBytes, r.ServerShare, r.CacheShare)
	}
	if r.StartFromPeer != 0 {
		t.Errorf("starts from peers without peers: %v", r.StartFromPeer)
	}
}

// TestFlashCrowd: 300 listeners starting one new 3-track album within a
// minute: peers carry most of it, the hub's first copies stay a few copies
// of each track, and playback does not stall. (The bounds are this model's
// sanity, not targets: docs/SIMULATION.md has the numbers.)
func TestFlashCrowd(t *testing.T) {
	sc := small()
	sc.Listeners = 0
	sc.Users = 300
	sc.Hours = 0.3
	sc.Flash = &Flash{Listeners: 300, Minutes: 1, AlbumTracks: 3}
	r := run(t, sc)
	if r.NetworkPlays < 800 {
		t.Fatalf("%d network plays, want the album's 3 tracks × 300 listeners (most of them)", r.NetworkPlays)
	}
	if r.ColdTracks != 3 {
		t.Errorf("%d cold tracks, want the album's 3", r.ColdTracks)
	}
	trackBytes := float64(r.ServerBytes) / r.ServerCopies / 3 // a track's size
	if copies := float64(r.ServerBy.FirstCopy) / trackBytes / 3; copies > 20 {
		t.Errorf("%.1f first copies per track, want some (10.4 when written: marks live 20 s, the crowd arrives over 60 s)", copies)
	}
	if r.ServerCopies > 40 {
		t.Errorf("%.2f server copies per track for 300 plays of it", r.ServerCopies)
	}
	if r.Offload < 0.8 {
		t.Errorf("offload %.3f (ceiling %.3f), want ≥ 0.8", r.Offload, r.OffloadCeiling)
	}
	if r.StallsPer1000 > 10 {
		t.Errorf("%.1f stalls per 1,000 plays", r.StallsPer1000)
	}
}

// TestLoad: names, files and the errors a person sees.
func TestLoad(t *testing.T) {
	for _, name := range BuiltinNames() {
		sc, err := Load(name)
		if err != nil || sc.Check() != nil {
			t.Errorf("built-in %s: %v %v", name, err, sc.Check())
		}
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "mine.json")
	write(t, good, `{"listeners": 50, "catalog": {"tracks": 100, "zipf_s": 1.2, "min_sec": 60, "max_sec": 90, "bitrate_kbps": 96}}`)
	sc, err := Load(good)
	if err != nil || sc.Name != "mine" || sc.Listeners != 50 || sc.Catalog.Tracks != 100 || sc.Hours != 24 {
		t.Errorf("a file overrides the defaults: %+v, %v", sc, err)
	}
	bad := filepath.Join(dir, "bad.json")
	write(t, bad, `{"listners": 50}`)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "listners") {
		t.Errorf("a misspelt field: %v", err)
	}
	yml := filepath.Join(dir, "mine.yaml")
	write(t, yml, "# the same, in YAML\nlisteners: 50\ncatalog:\n  tracks: 100\n  zipf_s: 1.2\n  min_sec: 60\n  max_sec: 90\n  bitrate_kbps: 96\nnetwork:\n  upload_kbps: {median: 500, min: 100, max: 5000}\n")
	sc, err = Load(yml)
	if err != nil || sc.Name != "mine" || sc.Listeners != 50 || sc.Catalog.Tracks != 100 || sc.Network.UploadKbps.Median != 500 || sc.Network.RTTMS != Defaults().Network.RTTMS {
		t.Errorf("a YAML file overrides the defaults: %+v, %v", sc, err)
	}
	for file, data := range map[string]string{
		"typo.yml":   "listners: 50\n",
		"twice.yaml": "listeners: 50\nlisteners: 60\n",
		"tabs.yaml":  "catalog:\n\ttracks: 100\n",
	} {
		path := filepath.Join(dir, file)
		write(t, path, data)
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: %v", file, err)
		}
	}
	if _, err := Load("nosuch"); err == nil || !strings.Contains(err.Error(), "spotify") {
		t.Errorf("an unknown name lists the known ones: %v", err)
	}
	sc = Defaults()
	sc.Catalog.ZipfS = 1
	sc.Network.Unreachable = 2
	err = sc.Check()
	if err == nil || !strings.Contains(err.Error(), "zipf_s") || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("Check names every bad field: %v", err)
	}
}

// write writes data to path or fails the test.
func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEventQueue: the queue gives back any mix of pushes and pops in
// (time, sequence) order, ties included.
func TestEventQueue(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q eventQueue
	var seq uint64
	var last queued
	popped := 0
	for round := range 20_000 {
		if rng.IntN(3) > 0 || len(q) == 0 {
			// Times from a small range: many ties, broken by seq.
			q.push(queued{at: last.at + time.Duration(rng.IntN(50)), seq: seq})
			seq++
			continue
		}
		got := q.pop()
		if popped > 0 && got.before(last) {
			t.Fatalf("round %d: popped (%v, %d) after (%v, %d)", round, got.at, got.seq, last.at, last.seq)
		}
		last = got
		popped++
	}
	for len(q) > 0 {
		got := q.pop()
		if got.before(last) {
			t.Fatalf("drain: popped (%v, %d) after (%v, %d)", got.at, got.seq, last.at, last.seq)
		}
		last = got
		popped++
	}
	if popped != int(seq) {
		t.Fatalf("popped %d of %d", popped, seq)
	}
}
