package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztream/ztream/api"
	"github.com/ztream/ztream/boltstore"
	"github.com/ztream/ztream/internal/clientip"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/store"
)

// putSyntheticTrack stores a synthetic track of n chunks titled "Song" and
// returns its manifest and chunk data.
func putSyntheticTrack(t *testing.T, st *boltstore.Store, n int) (*media.Manifest, [][]byte) {
	t.Helper()
	tr := testtrack.New(uint64(n), n, testtrack.Modify(func(m *media.Manifest) {
		m.Title, m.Artist, m.Album = "Song", "Band", "Album"
	}))
	testtrack.Put(t, st, tr)
	return tr.Manifest, tr.Chunks()
}

func newServer(t *testing.T) (*httptest.Server, *boltstore.Store, *int) {
	t.Helper()
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	served := new(int)
	h := http.StripPrefix("/api", api.New(api.Config{Store: st, OnChunkServed: func(n int) { *served += n }}).Routes())
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, st, served
}

func get(t *testing.T, url string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func TestCatalogManifestAndChunks(t *testing.T) {
	t.Parallel()
	srv, st, served := newServer(t)

	code, _, body := get(t, srv.URL+"/api/tracks")
	if code != 200 || string(body) != "[]\n" {
		t.Fatalf("empty library: got %d %q, want 200 []", code, body)
	}

	m, chunks := putSyntheticTrack(t, st, 5)
	code, ctype, body := get(t, srv.URL+"/api/tracks")
	if code != 200 || ctype != "application/json; charset=utf-8" {
		t.Fatalf("list: %d %s", code, ctype)
	}
	var list []map[string]any
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0]["id"] != m.ID || list[0]["title"] != "Song" || list[0]["duration_ms"] != float64(m.DurationMS) {
		t.Fatalf("list = %v", list)
	}
	for _, key := range []string{"id", "title", "artist", "album", "duration_ms"} {
		if _, ok := list[0][key]; !ok {
			t.Errorf("list entry lacks %q", key)
		}
	}

	code, _, body = get(t, srv.URL+"/api/tracks/"+m.ID)
	var got media.Manifest
	if err := json.Unmarshal(body, &got); err != nil || code != 200 {
		t.Fatalf("manifest: %d %v", code, err)
	}
	if got.ID != m.ID || len(got.Chunks) != 5 || got.Chunks[3].SHA256 != m.Chunks[3].SHA256 {
		t.Fatalf("manifest = %+v", got)
	}

	total := 0
	for seq, want := range chunks {
		code, ctype, body = get(t, fmt.Sprintf("%s/api/tracks/%s/chunks/%d", srv.URL, m.ID, seq))
		if code != 200 || ctype != "audio/mpeg" || string(body) != string(want) {
			t.Fatalf("chunk %d: %d %s %q", seq, code, ctype, body)
		}
		total += len(want)
	}
	if *served != total {
		t.Errorf("OnChunkServed counted %d bytes, want %d", *served, total)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	srv, st, _ := newServer(t)
	m, _ := putSyntheticTrack(t, st, 2)
	unknown := "ffffffffffffffffffffffffffffffff"
	cases := []struct {
		path string
		code int
	}{
		{"/api/tracks/" + unknown, 404},
		{"/api/tracks/" + unknown + "/chunks/0", 404},
		{"/api/tracks/not-an-id", 400},
		{"/api/tracks/" + m.ID + "X", 400},
		{"/api/tracks/" + m.ID + "/chunks/2", 404},
		{"/api/tracks/" + m.ID + "/chunks/-1", 400},
		{"/api/tracks/" + m.ID + "/chunks/abc", 400},
		{"/api/tracks/" + m.ID + "/chunks/99999999999999999999999", 400},
		{"/api/nothing", 404},
	}
	for _, c := range cases {
		code, ctype, body := get(t, srv.URL+c.path)
		if code != c.code {
			t.Errorf("%s: status %d, want %d (%s)", c.path, code, c.code, body)
			continue
		}
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || ctype != "application/json; charset=utf-8" {
			t.Errorf("%s: body %q is not a JSON error (%v)", c.path, body, err)
		}
	}
}

func TestChunkETag(t *testing.T) {
	t.Parallel()
	srv, st, _ := newServer(t)
	m, _ := putSyntheticTrack(t, st, 1)
	req, _ := http.NewRequest("GET", srv.URL+"/api/tracks/"+m.ID+"/chunks/0", nil)
	req.Header.Set("If-None-Match", `"`+m.Chunks[0].SHA256+`"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional GET: %d, want 304", resp.StatusCode)
	}
}

func TestPeerConfig(t *testing.T) {
	srv, _, _ := newServer(t)
	resp, err := http.Get(srv.URL + "/api/config")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("no peer config: status %d, want 404", resp.StatusCode)
	}
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := map[string]any{"max_sources": 4.0}
	srv2 := httptest.NewServer(http.StripPrefix("/api", api.New(api.Config{Store: st, PeerConfig: cfg}).Routes()))
	t.Cleanup(srv2.Close)
	resp, err = http.Get(srv2.URL + "/api/config")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK || got["max_sources"] != 4.0 {
		t.Fatalf("status %d, body %v, err %v", resp.StatusCode, got, err)
	}
}

// TestCover: a track's cover art is served with its content type, its
// SHA-256 as ETag (304 on a match) and a year of caching when asked by that
// SHA-256; a track without one, an unknown track and a malformed id are
// 404, 404 and 400.
func TestCover(t *testing.T) {
	t.Parallel()
	srv, st, _ := newServer(t)
	pic := append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), make([]byte, 3000)...)
	sum := sha256.Sum256(pic)
	ref := media.CoverRef{SHA256: hex.EncodeToString(sum[:]), MIME: "image/jpeg", Size: len(pic)}
	if err := st.PutCover(context.Background(), ref, pic); err != nil {
		t.Fatal(err)
	}
	with := testtrack.New(901, 3, testtrack.Modify(func(m *media.Manifest) { m.Cover = &ref }))
	testtrack.Put(t, st, with)
	without, _ := putSyntheticTrack(t, st, 4)

	url := srv.URL + "/api/tracks/" + with.Manifest.ID + "/cover"
	resp, err := http.Get(url + "?v=" + ref.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || !bytes.Equal(body, pic) {
		t.Fatalf("cover: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("Cache-Control %q for a URL naming the picture", cc)
	}
	etag := resp.Header.Get("ETag")
	if etag != `"`+ref.SHA256+`"` {
		t.Errorf("ETag %q", etag)
	}
	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != 200 || strings.Contains(cc, "immutable") {
		t.Errorf("cover without v: %d, Cache-Control %q (a re-ingest may change it)", resp.StatusCode, cc)
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", resp.StatusCode)
	}
	for path, want := range map[string]int{
		"/api/tracks/" + without.ID + "/cover":              404,
		"/api/tracks/" + strings.Repeat("0", 32) + "/cover": 404,
		"/api/tracks/nothex/cover":                          400,
	} {
		if code, _, _ := get(t, srv.URL+path); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
	// The catalog names the cover by its SHA-256.
	_, _, body = get(t, srv.URL+"/api/tracks")
	var list []media.Summary
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range list {
		if s.ID == with.Manifest.ID {
			found = s.Cover == ref.SHA256
		} else if s.Cover != "" {
			t.Errorf("track %s without art lists cover %q", s.ID, s.Cover)
		}
	}
	if !found {
		t.Errorf("catalog %+v does not name the cover", list)
	}
}

// requesterStore records the requester of each manifest read and refuses
// the ones of "198.51.100.7" as a store bounding each client would.
type requesterStore struct {
	*boltstore.Store
	mu   sync.Mutex
	seen []string
}

// limitedErr is a store.ErrLimited with a time to wait.
type limitedErr struct{}

func (limitedErr) Error() string             { return "too many for you" }
func (limitedErr) Unwrap() error             { return store.ErrLimited }
func (limitedErr) RetryAfter() time.Duration { return 2500 * time.Millisecond }

func (s *requesterStore) Manifest(ctx context.Context, id string) (*media.Manifest, error) {
	who := store.RequesterOf(ctx)
	s.mu.Lock()
	s.seen = append(s.seen, who)
	s.mu.Unlock()
	if who == "198.51.100.7" {
		return nil, fmt.Errorf("origin: x.flac: %w", limitedErr{})
	}
	return s.Store.Manifest(ctx, id)
}

// TestRequester: the store hears which client a request is for (the
// forwarded one only from a trusted proxy), and a store's ErrLimited is a
// 429 with Retry-After.
func TestRequester(t *testing.T) {
	t.Parallel()
	bolt, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	m, _ := putSyntheticTrack(t, bolt, 2)
	st := &requesterStore{Store: bolt}
	trusted, err := clientip.Parse("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/api", api.New(api.Config{Store: st, ClientIP: trusted}).Routes()))
	t.Cleanup(srv.Close)
	do := func(forwarded string) *http.Response {
		req, err := http.NewRequest("GET", srv.URL+"/api/tracks/"+m.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if forwarded != "" {
			req.Header.Set("X-Forwarded-For", forwarded)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := do(""); resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	if resp := do("2001:db8:1:2::5"); resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	resp := do("198.51.100.7")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("a limited client: status %d, Retry-After %q; want 429, 3", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	want := []string{"127.0.0.1", "2001:db8:1:2::/64", "198.51.100.7"}
	if strings.Join(st.seen, " ") != strings.Join(want, " ") {
		t.Errorf("requesters %q, want %q", st.seen, want)
	}
}
