package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztream/ztream/demo"
	"github.com/ztream/ztream/internal/testaudio"
	"github.com/ztream/ztream/loadgen"
	"github.com/ztream/ztream/media"
)

// countingOrigin serves files from memory (Range requests and ETags by
// http.ServeContent) and counts the whole-file GETs of each.
type countingOrigin struct {
	srv   *httptest.Server
	index string
	mu    sync.Mutex
	files map[string][]byte
	full  map[string]int
}

func newCountingOrigin(t *testing.T, files map[string][]byte) *countingOrigin {
	o := &countingOrigin{files: files, full: make(map[string]int)}
	var idx strings.Builder
	idx.WriteString("#EXTM3U\n")
	for name := range files {
		idx.WriteString("audio/" + name + "\n")
	}
	o.index = idx.String()
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/index.m3u8" {
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
			_, _ = io.WriteString(w, o.index)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/audio/")
		o.mu.Lock()
		data, ok := o.files[name]
		if ok && r.Header.Get("Range") == "" {
			o.full[name]++
		}
		o.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", fmt.Sprintf(`"%d-%d"`, len(data), len(name)))
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *countingOrigin) fetches() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]int, len(o.full))
	for k, v := range o.full {
		out[k] = v
	}
	return out
}

// TestServeOrigin runs `ztream serve --origin` in front of a loopback
// origin of MP3, FLAC and Opus files, then a load run of 32 peers: the
// origin must see each track fetched once, the listeners get most bytes
// from each other, and /metrics says what the origin did.
func TestServeOrigin(t *testing.T) {
	files := map[string][]byte{}
	for _, name := range demo.Names() {
		data, err := fs.ReadFile(demo.Tracks(), name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}
	dir := t.TempDir()
	for i, f := range []string{"flac", "opus", "flac"} {
		name := fmt.Sprintf("tone-%d%s", i, testaudio.Ext(f))
		testaudio.Write(t, filepath.Join(dir, name), testaudio.Spec{Format: f, Samples: 44100 * 30, Freq: float64(220 * (i + 1)),
			Title: fmt.Sprintf("Tone %d", i), Artist: "Origin", Album: "Tones", Track: i + 1})
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}
	org := newCountingOrigin(t, files)
	addr := freeAddr(t)
	stderr := startServe(t, "--addr", addr, "--data", t.TempDir(), "--udp-port", "0", "--ice-loopback",
		"--origin", org.srv.URL+"/index.m3u8")
	base := "http://" + addr
	var tracks []media.Summary
	waitServing(t, stderr, func() error {
		resp, err := http.Get(base + "/api/tracks")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&tracks); err != nil {
			return err
		}
		if len(tracks) != len(files) {
			return fmt.Errorf("%d tracks catalogued of %d", len(tracks), len(files))
		}
		return nil
	})
	if n := len(org.fetches()); n != 0 {
		t.Fatalf("cataloguing fetched %d whole files", n)
	}

	// A cold start: the first manifest request waits for the fetch (and
	// the transcode); the second is served from the cache.
	for _, want := range []string{"Tone 0", tracks[len(tracks)-1].Title} { // a FLAC, an MP3
		var id string
		for _, s := range tracks {
			if s.Title == want {
				id = s.ID
			}
		}
		var took [2]time.Duration
		for i := range took {
			start := time.Now()
			resp, err := http.Get(base + "/api/tracks/" + id)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("manifest of %q: %s\n%s", want, resp.Status, stderr.String())
			}
			took[i] = time.Since(start)
		}
		t.Logf("manifest of %q: cold (origin fetch) %s, warm %s", want, took[0].Round(time.Millisecond), took[1].Round(time.Millisecond))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := loadgen.Run(ctx, loadgen.Config{Server: base, Peers: 32, Duration: 20 * time.Second, Ramp: 5 * time.Second, Speed: 20})
	if err != nil {
		t.Fatalf("load run: %v\n%s", err, stderr.String())
	}
	t.Logf("load run: %d playbacks of %d tracks, offload %.3f (ceiling %.3f), %.1f server copies, start p50 %.0f ms p99 %.0f ms, %d stalls, %d errors",
		rep.Playbacks, rep.DistinctTracks, rep.OffloadRatio, rep.OffloadCeiling, rep.ServerCopies, rep.StartupMS.P50, rep.StartupMS.P99, rep.Stalls, rep.PlaybackErrors)
	fetched := org.fetches()
	t.Logf("origin: whole-file fetches %v", fetched)
	for name, n := range fetched {
		if n != 1 {
			t.Errorf("%s fetched %d times from the origin, want once", name, n)
		}
	}
	if rep.Playbacks < 32 || rep.PlaybackErrors > 0 {
		t.Errorf("%d playbacks, %d errors", rep.Playbacks, rep.PlaybackErrors)
	}
	// How much they offload is a benchmark's business (docs/BENCHMARKS.md,
	// "Origin mode"): under the race detector the CPU is the limit.
	if rep.P2PBytes == 0 {
		t.Errorf("offload %.3f: the listeners did not serve each other", rep.OffloadRatio)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`ztream_origin_cache_requests_total{result="miss"} ` + fmt.Sprint(len(fetched)),
		`ztream_origin_bytes_total{kind="track"}`, `ztream_origin_cache_tracks ` + fmt.Sprint(len(fetched))} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
