package origin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztream/ztream/boltstore"
	"github.com/ztream/ztream/internal/testaudio"
	"github.com/ztream/ztream/internal/testtool"
	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/origin"
	"github.com/ztream/ztream/store"
	"github.com/ztream/ztream/transcode"
)

// file is one file the test origin serves.
type file struct {
	data  []byte
	etag  string
	ctype string
	// fault: "" serves the file; "truncate" sends half of it after a full
	// Content-Length; "slow" trickles it; "endless" sends bytes forever
	// without a length; "redirect" redirects to another host.
	fault string
}

// testOrigin is a loopback HTTP origin that counts what it is asked.
type testOrigin struct {
	srv   *httptest.Server
	mu    sync.Mutex
	files map[string]*file
	index string
	full  map[string]int // whole-file GETs by path
	heads map[string]int // Range GETs by path
}

func newTestOrigin(t *testing.T) *testOrigin {
	o := &testOrigin{files: make(map[string]*file), full: make(map[string]int), heads: make(map[string]int)}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *testOrigin) put(path string, f *file) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if f.etag == "" {
		f.etag = fmt.Sprintf(`"%x"`, len(f.data)*31+len(path))
	}
	if f.ctype == "" {
		f.ctype = "audio/mpeg"
	}
	o.files[path] = f
}

func (o *testOrigin) setIndex(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.index = s
}

func (o *testOrigin) counts(path string) (full, heads int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.full[path], o.heads[path]
}

func (o *testOrigin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	if r.URL.Path == "/index.m3u" {
		idx := o.index
		o.mu.Unlock()
		w.Header().Set("Content-Type", "audio/x-mpegurl")
		fmt.Fprint(w, idx)
		return
	}
	f, ok := o.files[r.URL.Path]
	ranged := r.Header.Get("Range") != ""
	if ok {
		if ranged {
			o.heads[r.URL.Path]++
		} else {
			o.full[r.URL.Path]++
		}
	}
	var cp file
	if ok {
		cp = *f
	}
	o.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", cp.etag)
	w.Header().Set("Content-Type", cp.ctype)
	switch {
	case cp.fault == "redirect":
		http.Redirect(w, r, "http://127.0.0.2:1/elsewhere.mp3", http.StatusFound)
		return
	case cp.fault == "truncate" && !ranged:
		w.Header().Set("Content-Length", fmt.Sprint(len(cp.data)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(cp.data[:len(cp.data)/2])
		return // the handler ends: the connection is cut short
	case cp.fault == "slow" && !ranged:
		w.Header().Set("Content-Length", fmt.Sprint(len(cp.data)))
		w.WriteHeader(http.StatusOK)
		for i := 0; i < len(cp.data) && r.Context().Err() == nil; i += 1000 {
			if _, err := w.Write(cp.data[i:min(i+1000, len(cp.data))]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
		return
	case cp.fault == "endless" && !ranged:
		w.WriteHeader(http.StatusOK)
		buf := bytes.Repeat([]byte{0xff}, 64<<10)
		for i := 0; i < 10_000 && r.Context().Err() == nil; i++ { // 640 MB at most
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
		return
	}
	http.ServeContent(w, r, r.URL.Path, time.Time{}, bytes.NewReader(cp.data))
}

// start runs an Origin of cfg on the test origin's index until the test
// ends, and waits for its first catalog.
func start(t *testing.T, to *testOrigin, cfg origin.Config) (*origin.Origin, store.Store) {
	t.Helper()
	if cfg.Store == nil {
		st, err := boltstore.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		cfg.Store = st
	}
	o, stop := runOrigin(t, to, cfg)
	t.Cleanup(stop) // before the store closes
	return o, cfg.Store
}

// runOrigin runs an Origin with cfg (Index and TempDir set here) until
// stop is called, once its index was catalogued.
func runOrigin(t *testing.T, to *testOrigin, cfg origin.Config) (o *origin.Origin, stop func()) {
	t.Helper()
	cfg.Index = to.srv.URL + "/index.m3u"
	cfg.TempDir = t.TempDir()
	o, err := origin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for !o.Status().Loaded {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("the index was not catalogued: %+v", o.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return o, stop
}

// byTitle finds a catalogued track.
func byTitle(t *testing.T, st store.Store, title string) media.Summary {
	t.Helper()
	list, err := st.ListTracks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.Title == title {
			return s
		}
	}
	t.Fatalf("no track %q in %+v", title, list)
	return media.Summary{}
}

// TestCatalogAndFetch: the catalog comes from the index and the files' tags
// (Range requests only); a track's first play fetches it once, however many
// listeners ask at once; later plays are served from the cache.
func TestCatalogAndFetch(t *testing.T) {
	to := newTestOrigin(t)
	mp3 := testaudio.Fixture(t, "cbr128_44k_stereo.mp3")
	to.put("/music/a.mp3", &file{data: mp3})
	flacPath := filepath.Join(t.TempDir(), "b.flac")
	testaudio.Write(t, flacPath, testaudio.Spec{Format: "flac", Samples: 44100 * 2, Title: "Bee", Artist: "Origin Band", Album: "Far", Track: 2, Cover: "png"})
	flac, err := os.ReadFile(flacPath)
	if err != nil {
		t.Fatal(err)
	}
	to.put("/music/b.flac", &file{data: flac, ctype: "audio/flac"})
	to.setIndex("#EXTM3U\n#EXTINF:3,Someone - Song A\nmusic/a.mp3\n" + to.srv.URL + "/music/b.flac\nhttp://127.0.0.2:9/elsewhere.mp3\nnotes.txt\n")
	tc, err := transcode.New(transcode.Config{TempDir: t.TempDir()})
	if err != nil {
		t.Skip(err) // testaudio.Write failed the test under CI already
	}
	o, _ := start(t, to, origin.Config{Transcoder: tc})
	if s := o.Status(); s.Tracks != 2 || s.CachedTracks != 0 {
		t.Fatalf("status %+v, want 2 tracks, none cached", s)
	}
	a := byTitle(t, o, "Song A") // no title tag: #EXTINF's
	if a.Artist != "Someone" || a.DurationMS < 1000 {
		t.Errorf("MP3 catalogued as %+v, want #EXTINF's artist and a duration", a)
	}
	b := byTitle(t, o, "Bee")
	if b.DurationMS != 2000 {
		t.Errorf("FLAC catalogued with %d ms, want its STREAMINFO's 2000", b.DurationMS)
	}
	if b.Artist != "Origin Band" || b.Album != "Far" || b.TrackNo != 2 || b.Cover == "" {
		t.Errorf("FLAC catalogued as %+v, want its tags and cover", b)
	}
	if _, _, err := o.Cover(context.Background(), b.Cover); err != nil {
		t.Errorf("the cover is not in the store: %v", err)
	}
	for _, p := range []string{"/music/a.mp3", "/music/b.flac"} {
		if full, heads := to.counts(p); full != 0 || heads != 1 {
			t.Errorf("%s: cataloguing made %d whole and %d Range GETs, want 0 and 1", p, full, heads)
		}
	}

	// Eight listeners at once.
	var wg sync.WaitGroup
	ms := make([]*media.Manifest, 8)
	errs := make([]error, 8)
	for i := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := []string{a.ID, b.ID}[i%2]
			ms[i], errs[i] = o.Manifest(context.Background(), id)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("listener %d: %v", i, err)
		}
	}
	for _, p := range []string{"/music/a.mp3", "/music/b.flac"} {
		if full, _ := to.counts(p); full != 1 {
			t.Errorf("%s fetched %d times, want once", p, full)
		}
	}
	mb := ms[1]
	if mb.Source == nil || mb.Source.Format != "flac" || mb.Source.Size != int64(len(flac)) {
		t.Errorf("source %+v", mb.Source)
	}
	if d := mb.TotalSamples - 88200; d < -1152 || d > 1152 {
		t.Errorf("the FLAC became %d samples, want 88200 ±1152", mb.TotalSamples)
	}
	it, err := o.ReadChunks(context.Background(), a.ID, 0, len(ms[0].Chunks))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for it.Next() {
		if err := store.CheckChunk(ms[0], it.Chunk().Seq, it.Chunk().Data); err != nil {
			t.Fatal(err)
		}
		n++
	}
	it.Close()
	if err := it.Err(); err != nil || n != len(ms[0].Chunks) {
		t.Fatalf("read %d of %d chunks: %v", n, len(ms[0].Chunks), err)
	}
	// Again, and after the catalog is read again: from the cache.
	if _, err := o.Manifest(context.Background(), b.ID); err != nil {
		t.Fatal(err)
	}
	if full, _ := to.counts("/music/b.flac"); full != 1 {
		t.Errorf("a cached track was fetched again (%d)", full)
	}
	if s := o.Status(); s.CachedTracks != 2 || s.CachedBytes != ms[0].Size+mb.Size {
		t.Errorf("status %+v, want 2 cached tracks of %d bytes", s, ms[0].Size+mb.Size)
	}
	if got := byTitle(t, o, "Bee"); got.DurationMS != mb.DurationMS {
		t.Errorf("the catalog's duration %d ms is not the audio's %d ms after the fetch", got.DurationMS, mb.DurationMS)
	}
}

// TestEviction: the cache keeps CacheBytes; the least recently used track
// goes, and its next play fetches it again.
func TestEviction(t *testing.T) {
	to := newTestOrigin(t)
	one, two, three := testaudio.Fixture(t, "cbr128_44k_stereo.mp3"), testaudio.Fixture(t, "mono_44k.mp3"), testaudio.Fixture(t, "cbr96_32k.mp3")
	to.put("/1.mp3", &file{data: one})
	to.put("/2.mp3", &file{data: two})
	to.put("/3.mp3", &file{data: three})
	to.setIndex("1.mp3\n2.mp3\n3.mp3\n")
	// Room for two of the three (the cache counts audio bytes).
	var sizes []int64
	for _, data := range [][]byte{one, two, three} {
		tr, err := media.Analyze(bytes.NewReader(data), int64(len(data)), "x.mp3")
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, tr.Manifest.Size)
	}
	o, st := start(t, to, origin.Config{CacheBytes: sizes[0] + sizes[1] + sizes[2] - min(sizes[0], sizes[1], sizes[2])/2})
	ids := map[string]string{}
	for _, n := range []string{"1", "2", "3"} {
		ids[n] = byTitle(t, o, n).ID
	}
	ctx := context.Background()
	for _, n := range []string{"1", "2", "1", "3"} { // 2 is then the least recent
		if _, err := o.Manifest(ctx, ids[n]); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second) // the store's delete follows the fetch
	for _, err := st.Manifest(ctx, ids["2"]); !errors.Is(err, store.ErrNotFound); _, err = st.Manifest(ctx, ids["2"]) {
		if time.Now().After(deadline) {
			t.Fatalf("track 2 was not evicted: %v (status %+v)", err, o.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, n := range []string{"1", "3"} {
		if _, err := st.Manifest(ctx, ids[n]); err != nil {
			t.Errorf("track %s evicted: %v", n, err)
		}
	}
	if _, err := o.Manifest(ctx, ids["2"]); err != nil {
		t.Fatal(err)
	}
	if full, _ := to.counts("/2.mp3"); full != 2 {
		t.Errorf("track 2 fetched %d times, want twice (evicted in between)", full)
	}
	if s := o.Status(); s.CachedTracks != 2 {
		t.Errorf("status %+v, want 2 cached", s)
	}
}

// TestRestart: a new Origin on the same store finds the cached tracks, and
// drops the ones whose file is gone from the index.
func TestRestart(t *testing.T) {
	to := newTestOrigin(t)
	to.put("/1.mp3", &file{data: testaudio.Fixture(t, "cbr128_44k_stereo.mp3")})
	to.put("/2.mp3", &file{data: testaudio.Fixture(t, "mono_44k.mp3")})
	to.setIndex("1.mp3\n2.mp3\n")
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o1, stop := runOrigin(t, to, origin.Config{Store: st})
	id1, id2 := byTitle(t, o1, "1").ID, byTitle(t, o1, "2").ID
	for _, id := range []string{id1, id2} {
		if _, err := o1.Manifest(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	to.setIndex("1.mp3\n") // 2 left the origin while the hub was down
	o2, _ := start(t, to, origin.Config{Store: st})
	if s := o2.Status(); s.CachedTracks != 1 || s.Tracks != 1 {
		t.Errorf("status after the restart %+v, want 1 track, cached", s)
	}
	if _, err := st.Manifest(context.Background(), id2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the gone file's track is still cached: %v", err)
	}
	if _, err := o2.Manifest(context.Background(), id1); err != nil {
		t.Fatal(err)
	}
	if full, _ := to.counts("/1.mp3"); full != 1 {
		t.Errorf("fetched %d times across the restart, want once", full)
	}
}

// TestOriginFaults: every way a file can fail gives a clear error, and no
// chunk of it is stored.
func TestOriginFaults(t *testing.T) {
	to := newTestOrigin(t)
	good := testaudio.Fixture(t, "cbr128_44k_stereo.mp3")
	to.put("/missing.mp3", &file{data: good})
	to.put("/truncated.mp3", &file{data: good, fault: "truncate"})
	to.put("/slow.mp3", &file{data: good, fault: "slow"})
	to.put("/html.mp3", &file{data: good})
	to.put("/changed.mp3", &file{data: good})
	to.put("/redirect.mp3", &file{data: good, fault: "redirect"})
	to.put("/endless.mp3", &file{data: good, fault: "endless"})
	to.setIndex("missing.mp3\ntruncated.mp3\nslow.mp3\nhtml.mp3\nchanged.mp3\nredirect.mp3\nendless.mp3\n")
	var logs testtool.Buffer
	changes := make(chan struct{}, 16)
	o, st := start(t, to, origin.Config{FetchTimeout: 2 * time.Second, MaxTrackBytes: 4 << 20,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), OnChange: func() {
			select {
			case changes <- struct{}{}:
			default:
			}
		}})
	ctx := context.Background()
	// redirect.mp3 is refused when catalogued already.
	if !strings.Contains(logs.String(), "redirect refused") {
		t.Errorf("no log line for the redirect to another host:\n%s", logs.String())
	}
	ids := map[string]string{}
	for _, n := range []string{"missing", "truncated", "slow", "html", "changed", "endless"} {
		ids[n] = byTitle(t, o, n).ID
	}
	// Now the faults the catalog could not see.
	to.mu.Lock()
	delete(to.files, "/missing.mp3")
	to.files["/html.mp3"].ctype = "text/html; charset=utf-8"
	to.files["/changed.mp3"].etag = `"v2"`
	to.mu.Unlock()
	for name, want := range map[string]struct {
		storeErr, originErr error
		text                string
	}{
		"missing":   {store.ErrNotFound, origin.ErrGone, "404"},
		"truncated": {store.ErrUpstream, origin.ErrTruncated, "bytes"},
		"slow":      {store.ErrUpstream, origin.ErrTimeout, "timed out"},
		"html":      {store.ErrUpstream, origin.ErrContentType, "text/html"},
		"changed":   {store.ErrNotFound, origin.ErrChanged, "changed"},
		"endless":   {store.ErrUpstream, origin.ErrTooLarge, "bytes"},
	} {
		start := time.Now()
		_, err := o.Manifest(ctx, ids[name])
		if !errors.Is(err, want.storeErr) || !errors.Is(err, want.originErr) || !strings.Contains(err.Error(), want.text) ||
			!strings.Contains(err.Error(), name+".mp3") {
			t.Errorf("%s: err = %v, want %v and %v, naming the file, saying %q", name, err, want.storeErr, want.originErr, want.text)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("%s: took %s", name, el)
		}
		if _, err := st.Manifest(ctx, ids[name]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: something was stored: %v", name, err)
		}
		// Asked again soon: the failure is remembered, the origin not asked.
		before, _ := to.counts("/" + name + ".mp3")
		if _, err := o.Manifest(ctx, ids[name]); err == nil {
			t.Errorf("%s: the second try worked", name)
		}
		if after, _ := to.counts("/" + name + ".mp3"); after != before && name != "changed" {
			t.Errorf("%s: fetched again at once (%d → %d)", name, before, after)
		}
	}
	// The changed file is catalogued again under a new id.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := byTitle(t, o, "changed")
		if s.ID != ids["changed"] {
			if _, err := o.Manifest(ctx, s.ID); err != nil {
				t.Fatalf("the changed file under its new id: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the changed file kept its id")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHostileIndex: an index past its bound is refused with a log line and
// the catalog keeps what it had.
func TestHostileIndex(t *testing.T) {
	to := newTestOrigin(t)
	to.put("/1.mp3", &file{data: testaudio.Fixture(t, "cbr128_44k_stereo.mp3")})
	to.setIndex("1.mp3\n")
	var logs testtool.Buffer
	o, _ := start(t, to, origin.Config{MaxIndexBytes: 64 << 10, MaxEntries: 3, Refresh: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if o.Status().Tracks != 1 {
		t.Fatalf("status %+v", o.Status())
	}
	to.setIndex(strings.Repeat("x.mp3\n", 20_000)) // 120 KB
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "too large") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the huge index:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if o.Status().Tracks != 1 {
		t.Errorf("the catalog changed: %+v", o.Status())
	}
	var many strings.Builder
	for i := range 10 {
		fmt.Fprintf(&many, "%d.mp3\n", i)
	}
	to.setIndex(many.String())
	for !strings.Contains(logs.String(), "over_limit=7") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the entries past MaxEntries:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestParseM3U(t *testing.T) {
	base, _ := url.Parse("http://127.0.0.1:8000/lists/all.m3u8")
	in := "\ufeff#EXTM3U\n" +
		"#EXTINF:215,Artist - Title One\n" +
		"one.mp3\n" +
		"../music/two.FLAC\n" +
		"/abs/three.opus#frag\n" +
		"http://127.0.0.1:8000/four.m4a\n" +
		"https://127.0.0.1:8000/other-scheme.mp3\n" +
		"http://127.0.0.1:8001/other-port.mp3\n" +
		"http://user:pw@127.0.0.1:8000/creds.mp3\n" +
		"cover.jpg\n" +
		"one.mp3\n" +
		"\n" +
		strings.Repeat("x", 10_000) + ".mp3\n" + // too long: skipped, not fatal
		"#EXTINF:-1 tvg-id=\"x\",Caf\xe9\n" + // Latin-1
		"five.wav\n" +
		"six.ogg\n"
	items, skipped := origin.ParseM3U(base, []byte(in), 5)
	var got []string
	for _, it := range items {
		got = append(got, fmt.Sprintf("%s %s %q %d", it.URL, it.Format, it.Title, it.Seconds))
	}
	want := []string{
		`http://127.0.0.1:8000/lists/one.mp3 MP3 "Title One" 215`,
		`http://127.0.0.1:8000/music/two.FLAC FLAC "" -1`,
		`http://127.0.0.1:8000/abs/three.opus Opus "" -1`,
		`http://127.0.0.1:8000/four.m4a M4A "" -1`,
		`http://127.0.0.1:8000/lists/five.wav WAV "Café" -1`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("items:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if skipped.OtherHost != 3 || skipped.NotAudio != 1 || skipped.Duplicate != 1 || skipped.OverLimit != 1 || skipped.Invalid != 1 {
		t.Errorf("skipped %+v", skipped)
	}
	// An index behind credentials: its entries keep them.
	private, _ := url.Parse("http://user:pw@127.0.0.1:8000/list.m3u")
	items, skipped = origin.ParseM3U(private, []byte("a.mp3\nhttp://other:pw@127.0.0.1:8000/b.mp3\n"), 5)
	if len(items) != 1 || items[0].URL.User.String() != "user:pw" || skipped.OtherHost != 1 {
		t.Errorf("with credentials: %v, %+v", items, skipped)
	}

}

// TestBusy: listeners cannot make the hub fetch more than MaxFetches
// tracks at once, with as many waiting; the next one is refused at once.
func TestBusy(t *testing.T) {
	to := newTestOrigin(t)
	good := testaudio.Fixture(t, "cbr128_44k_stereo.mp3")
	var index strings.Builder
	for i := range 4 {
		to.put(fmt.Sprintf("/slow%d.mp3", i), &file{data: good, fault: "slow"})
		fmt.Fprintf(&index, "slow%d.mp3\n", i)
	}
	to.setIndex(index.String())
	o, _ := start(t, to, origin.Config{MaxFetches: 1, FetchTimeout: 3 * time.Second})
	list, err := o.ListTracks(context.Background())
	if err != nil || len(list) != 4 {
		t.Fatalf("%d tracks, %v", len(list), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, s := range list[:2] { // one fetching, one waiting for its turn
		go func() { _, _ = o.Manifest(ctx, s.ID) }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for o.Status().Fetching < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v", o.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	_, err = o.Manifest(context.Background(), list[2].ID)
	if !errors.Is(err, origin.ErrBusy) || !errors.Is(err, store.ErrUpstream) || time.Since(start) > time.Second {
		t.Errorf("a third track: %v after %s, want ErrBusy at once", err, time.Since(start))
	}
}

// TestBigCoverTags: a FLAC whose cover does not fit the first Range read
// is read again, as far as its metadata blocks say; an untagged WAV costs
// one read.
func TestBigCoverTags(t *testing.T) {
	dir := t.TempDir()
	flacPath := filepath.Join(dir, "big.flac")
	testaudio.Write(t, flacPath, testaudio.Spec{Format: "flac", Samples: 44100, Title: "Big Cover", Cover: "png"})
	flac, err := os.ReadFile(flacPath)
	if err != nil {
		t.Fatal(err)
	}
	// Pad the picture block: a 600 KB comment block before it.
	pad := make([]byte, 4+600_000)
	pad[0], pad[1], pad[2], pad[3] = 1, byte(600_000>>16), byte(600_000>>8&0xff), byte(600_000&0xff) // PADDING, not last
	big := append(append(append([]byte{}, flac[:4]...), flac[4:42]...), pad...)
	big = append(big, flac[42:]...)
	big[4] &^= 0x80 // STREAMINFO is not the last block
	wavPath := filepath.Join(dir, "plain.wav")
	testaudio.Write(t, wavPath, testaudio.Spec{Format: "wav", Samples: 44100 * 5})
	wav, err := os.ReadFile(wavPath)
	if err != nil {
		t.Fatal(err)
	}
	to := newTestOrigin(t)
	to.put("/big.flac", &file{data: big, ctype: "audio/flac"})
	to.put("/plain.wav", &file{data: wav, ctype: "audio/wav"})
	to.setIndex("big.flac\nplain.wav\n")
	tc, err := transcode.New(transcode.Config{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	o, _ := start(t, to, origin.Config{Transcoder: tc})
	s := byTitle(t, o, "Big Cover")
	if s.Cover == "" {
		t.Errorf("the cover after 600 KB of padding was not read: %+v", s)
	}
	if _, heads := to.counts("/big.flac"); heads != 2 {
		t.Errorf("big.flac: %d Range reads, want 2 (256 KiB, then its blocks' end)", heads)
	}
	if _, heads := to.counts("/plain.wav"); heads != 1 {
		t.Errorf("plain.wav: %d Range reads, want 1", heads)
	}
}

// TestTranscodeFailure: a file ffmpeg cannot read fails as ErrTranscode,
// whose message names the file and nothing of the hub (no paths, no
// ffmpeg output: those are logged).
func TestTranscodeFailure(t *testing.T) {
	to := newTestOrigin(t)
	to.put("/garbage.flac", &file{data: bytes.Repeat([]byte("not a flac "), 5000), ctype: "audio/flac"})
	to.setIndex("garbage.flac\n")
	tc, err := transcode.New(transcode.Config{TempDir: t.TempDir()})
	if err != nil {
		t.Skip(err)
	}
	var logs testtool.Buffer
	o, st := start(t, to, origin.Config{Transcoder: tc, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	s := byTitle(t, o, "garbage")
	_, err = o.Manifest(context.Background(), s.ID)
	if !errors.Is(err, origin.ErrTranscode) || !errors.Is(err, store.ErrUpstream) {
		t.Fatalf("err = %v, want ErrTranscode", err)
	}
	if msg := err.Error(); msg != "origin: garbage.flac: ffmpeg could not transcode it" {
		t.Errorf("message %q shows more than the file and the reason", msg)
	}
	if !strings.Contains(logs.String(), "transcode failed") || !strings.Contains(logs.String(), "source.flac") {
		t.Errorf("the log lacks ffmpeg's words:\n%s", logs.String())
	}
	if _, err := st.Manifest(context.Background(), s.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("something was stored: %v", err)
	}
}

// TestIndexLater: an origin down when the hub starts is read again within
// seconds, not at the next refresh.
func TestIndexLater(t *testing.T) {
	to := newTestOrigin(t)
	to.put("/1.mp3", &file{data: testaudio.Fixture(t, "cbr128_44k_stereo.mp3")})
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The playlist answers 404 at first.
	o, err := origin.New(origin.Config{Index: to.srv.URL + "/missing-then-there.m3u", Store: st, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	time.Sleep(200 * time.Millisecond)
	if o.Status().Loaded {
		t.Fatal("loaded an index that is not there")
	}
	to.mu.Lock()
	to.files["/missing-then-there.m3u"] = &file{data: []byte("1.mp3\n"), etag: `"i"`, ctype: "audio/x-mpegurl"}
	to.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for !o.Status().Loaded {
		if time.Now().After(deadline) {
			t.Fatalf("the index was not read again within 15 s: %+v", o.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if o.Status().Tracks != 1 {
		t.Errorf("status %+v", o.Status())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestClientFetches: one client may start ClientFetches fetches a minute;
// past it a track not cached is refused (a store.ErrLimited with the time
// to wait), while its cached tracks, other clients and the server's own
// calls are served; joining a fetch under way costs nothing.
func TestClientFetches(t *testing.T) {
	to := newTestOrigin(t)
	good := testaudio.Fixture(t, "cbr128_44k_stereo.mp3")
	var index strings.Builder
	for i := range 6 {
		f := &file{data: good}
		if i == 4 {
			f.fault = "slow" // about 5 s
		}
		to.put(fmt.Sprintf("/%d.mp3", i), f)
		fmt.Fprintf(&index, "#EXTINF:-1,T%d\n%d.mp3\n", i, i)
	}
	to.setIndex(index.String())
	o, _ := start(t, to, origin.Config{ClientFetches: 2})
	id := func(i int) string { return byTitle(t, o, fmt.Sprintf("T%d", i)).ID }
	a := store.WithRequester(context.Background(), "192.0.2.1")
	b := store.WithRequester(context.Background(), "192.0.2.2")
	for _, i := range []int{0, 1} {
		if _, err := o.Manifest(a, id(i)); err != nil {
			t.Fatalf("track %d for a: %v", i, err)
		}
	}
	_, err := o.Manifest(a, id(2))
	var wait interface{ RetryAfter() time.Duration }
	if !errors.Is(err, store.ErrLimited) || !errors.Is(err, origin.ErrRateLimited) || errors.Is(err, store.ErrUpstream) ||
		!errors.As(err, &wait) || wait.RetryAfter() <= 0 || wait.RetryAfter() > 30*time.Second {
		t.Fatalf("a third fetch for a: %v, want ErrRateLimited within 30 s", err)
	}
	if _, err := o.Manifest(a, id(0)); err != nil {
		t.Errorf("a cached track for a: %v", err)
	}
	if _, err := o.Manifest(b, id(2)); err != nil {
		t.Errorf("track 2 for b: %v", err)
	}
	if _, err := o.Manifest(a, id(2)); err != nil {
		t.Errorf("track 2, cached by b's play, for a: %v", err)
	}
	if _, err := o.Manifest(context.Background(), id(3)); err != nil {
		t.Errorf("track 3 for the server: %v", err)
	}
	bDone := make(chan error, 1)
	go func() {
		_, err := o.Manifest(b, id(4))
		bDone <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for o.Status().Fetching == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("b's fetch of track 4 did not start: %+v", o.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := o.Manifest(a, id(4)); err != nil {
		t.Errorf("a joining b's fetch of track 4: %v", err)
	}
	if err := <-bDone; err != nil {
		t.Errorf("track 4 for b: %v", err)
	}
	for i := range 5 {
		if full, _ := to.counts(fmt.Sprintf("/%d.mp3", i)); full != 1 {
			t.Errorf("track %d fetched %d times, want once", i, full)
		}
	}
	if full, _ := to.counts("/5.mp3"); full != 0 {
		t.Errorf("track 5 fetched %d times, want none", full)
	}
}

// TestCatalogFile: a restart with CatalogFile lists the files at once and
// reads the tags only of the files it does not name and of the cached ones;
// a cover is read again on demand; an entry that does not check out, or a
// file of another playlist, is not used.
func TestCatalogFile(t *testing.T) {
	to := newTestOrigin(t)
	mp3 := testaudio.Fixture(t, "cbr128_44k_stereo.mp3")
	to.put("/a.mp3", &file{data: mp3})
	to.put("/c.mp3", &file{data: testaudio.Fixture(t, "mono_44k.mp3")})
	flacPath := filepath.Join(t.TempDir(), "b.flac")
	testaudio.Write(t, flacPath, testaudio.Spec{Format: "flac", Samples: 44100, Title: "Bee", Cover: "png"})
	flac, err := os.ReadFile(flacPath)
	if err != nil {
		t.Fatal(err)
	}
	to.put("/b.flac", &file{data: flac, ctype: "audio/flac"})
	to.setIndex("#EXTINF:-1,A\na.mp3\nb.flac\n#EXTINF:-1,C\nc.mp3\n")
	tc, err := transcode.New(transcode.Config{TempDir: t.TempDir()})
	if err != nil {
		t.Skip(err) // testaudio.Write failed the test under CI already
	}
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	catalogFile := filepath.Join(t.TempDir(), "catalog.json")
	cfg := origin.Config{Store: st, Transcoder: tc, CatalogFile: catalogFile}
	heads := func(p string) int { _, h := to.counts(p); return h }

	o1, stop := runOrigin(t, to, cfg)
	a, b := byTitle(t, o1, "A"), byTitle(t, o1, "Bee")
	if _, err := o1.Manifest(context.Background(), a.ID); err != nil {
		t.Fatal(err)
	}
	stop()
	if heads("/b.flac") != 1 || heads("/c.mp3") != 1 {
		t.Fatalf("first run: %d and %d tag reads, want one each", heads("/b.flac"), heads("/c.mp3"))
	}

	to.put("/d.mp3", &file{data: mp3})
	to.setIndex("#EXTINF:-1,A\na.mp3\nb.flac\n#EXTINF:-1,C\nc.mp3\n#EXTINF:-1,D\nd.mp3\n")
	o2, stop := runOrigin(t, to, cfg)
	if s := o2.Status(); s.Restored != 3 || s.Tracks != 4 || s.CachedTracks != 1 {
		t.Errorf("after the restart %+v, want 3 restored of 4, 1 cached", s)
	}
	if heads("/b.flac") != 1 || heads("/c.mp3") != 1 || heads("/d.mp3") != 1 || heads("/a.mp3") != 2 {
		t.Errorf("tag reads after the restart: a %d (cached: checked), b %d, c %d, d %d; want 2, 1, 1, 1",
			heads("/a.mp3"), heads("/b.flac"), heads("/c.mp3"), heads("/d.mp3"))
	}
	if got := byTitle(t, o2, "Bee"); got != b {
		t.Errorf("restored %+v, want %+v", got, b)
	}
	for range 2 {
		if mime, data, err := o2.Cover(context.Background(), b.Cover); err != nil || mime != "image/png" || len(data) == 0 {
			t.Fatalf("the restored track's cover: %q, %d bytes, %v", mime, len(data), err)
		}
	}
	if heads("/b.flac") != 2 {
		t.Errorf("the cover took %d tag reads, want one", heads("/b.flac")-1)
	}
	if _, err := o2.Manifest(context.Background(), byTitle(t, o2, "C").ID); err != nil {
		t.Errorf("playing a restored track: %v", err)
	}
	stop()

	// An entry edited by hand does not check out: it is read again.
	data, err := os.ReadFile(catalogFile)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(data, []byte(`"url":"`+to.srv.URL+`/c.mp3"`), []byte(`"url":"`+to.srv.URL+`/c.mp3?x"`), 1)
	if bytes.Equal(edited, data) {
		t.Fatalf("no entry of c.mp3 in %s", data)
	}
	if err := os.WriteFile(catalogFile, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	o3, stop := runOrigin(t, to, cfg)
	if s := o3.Status(); s.Restored != 3 || s.Tracks != 4 {
		t.Errorf("with an edited entry %+v, want 3 restored of 4", s)
	}
	if heads("/c.mp3") != 2 { // in the first run, and now
		t.Errorf("c.mp3: %d tag reads, want 2", heads("/c.mp3"))
	}
	// A cover whose file no longer answers is not looked for again at once.
	to.mu.Lock()
	to.files["/b.flac"].ctype = "text/html"
	to.mu.Unlock()
	before := heads("/b.flac")
	for range 3 {
		if _, _, err := o3.Cover(context.Background(), b.Cover); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a cover that cannot be read: %v, want ErrNotFound", err)
		}
	}
	if n := heads("/b.flac") - before; n != 1 {
		t.Errorf("3 asks for a cover that cannot be read made %d reads, want 1", n)
	}
	stop()

	// Another playlist's file is not used.
	other := origin.Config{Store: st, Transcoder: tc, CatalogFile: catalogFile}
	to2 := newTestOrigin(t)
	to2.put("/a.mp3", &file{data: mp3})
	to2.setIndex("a.mp3\n")
	o4, stop := runOrigin(t, to2, other)
	if s := o4.Status(); s.Restored != 0 || s.Tracks != 1 {
		t.Errorf("another playlist %+v, want nothing restored", s)
	}
	stop()
}

// TestSharedStore: two hubs in front of one origin on one store: a track
// the first fetched is found in the store by the second, which does not
// ask the origin again.
func TestSharedStore(t *testing.T) {
	to := newTestOrigin(t)
	to.put("/1.mp3", &file{data: testaudio.Fixture(t, "cbr128_44k_stereo.mp3")})
	to.setIndex("#EXTINF:-1,One\n1.mp3\n")
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after both hubs stop
	o1, _ := start(t, to, origin.Config{Store: st})
	o2, _ := start(t, to, origin.Config{Store: st})
	id := byTitle(t, o1, "One").ID
	if _, err := o1.Manifest(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := o2.Manifest(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if full, _ := to.counts("/1.mp3"); full != 1 {
		t.Errorf("the origin saw %d fetches of the track, want 1", full)
	}
	if s := o2.Status(); s.CachedTracks != 1 {
		t.Errorf("the second hub's status %+v, want the track counted in its cache", s)
	}
}
