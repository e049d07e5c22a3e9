package origin_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztream/ztream/boltstore"
	"github.com/ztream/ztream/demo"
	"github.com/ztream/ztream/internal/testaudio"
	"github.com/ztream/ztream/origin"
	"github.com/ztream/ztream/transcode"
)

// BenchmarkColdStart measures what a listener waits for on a track's first
// play in origin mode: the hub fetches the file from a loopback origin,
// transcodes it when it is not an MP3, cuts it and stores it (the time of
// Manifest on a track not cached). Each iteration plays another copy of the
// file (another URL, so another track). The files: a demo MP3 (2.1 MB,
// 2 min 10 s at 128 kbit/s) and a 4-minute stereo FLAC and Opus of a tone.
//
//	go test -run X -bench ColdStart -benchtime 5x ./origin
func BenchmarkColdStart(b *testing.B) {
	mp3, err := fs.ReadFile(demo.Tracks(), demo.Names()[0])
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	files := map[string][]byte{"mp3": mp3}
	for _, f := range []string{"flac", "opus"} {
		p := filepath.Join(dir, "tone"+testaudio.Ext(f))
		testaudio.Write(b, p, testaudio.Spec{Format: f, Samples: 44100 * 240, Title: "Four minutes"})
		if files[f], err = os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
	tc, err := transcode.New(transcode.Config{TempDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	for _, kind := range []string{"mp3", "flac", "opus"} {
		data := files[kind]
		b.Run(fmt.Sprintf("%s-%.1fMB", kind, float64(len(data))/1e6), func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/index.m3u" {
					for i := range b.N {
						fmt.Fprintf(w, "copy-%d.%s\n", i, kind)
					}
					return
				}
				w.Header().Set("ETag", `"`+strings.TrimPrefix(r.URL.Path, "/")+`"`)
				http.ServeContent(w, r, r.URL.Path, time.Time{}, bytes.NewReader(data))
			}))
			defer srv.Close()
			st, err := boltstore.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			o, err := origin.New(origin.Config{Index: srv.URL + "/index.m3u", Store: st, Transcoder: tc, TempDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { _ = o.Run(ctx) }() // ends with ctx
			for !o.Status().Loaded {
				time.Sleep(5 * time.Millisecond)
			}
			list, err := o.ListTracks(ctx)
			if err != nil || len(list) != b.N {
				b.Fatalf("%d tracks catalogued of %d: %v", len(list), b.N, err)
			}
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := range b.N {
				if _, err := o.Manifest(ctx, list[i].ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRestart measures a hub's start in front of an origin of 2,000
// MP3s: "cold" catalogues every file (one Range read each), "restored"
// starts from the CatalogFile an earlier run left. Reported: the time until
// the index is catalogued, and the origin requests it took besides the
// index (tag-reads/op).
//
//	go test -run X -bench Restart -benchtime 3x ./origin
func BenchmarkRestart(b *testing.B) {
	const files = 2000
	mp3, err := fs.ReadFile(demo.Tracks(), demo.Names()[0])
	if err != nil {
		b.Fatal(err)
	}
	var reads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/index.m3u" {
			for i := range files {
				fmt.Fprintf(w, "f%d.mp3\n", i)
			}
			return
		}
		reads.Add(1)
		w.Header().Set("ETag", `"`+strings.TrimPrefix(r.URL.Path, "/")+`"`)
		http.ServeContent(w, r, r.URL.Path, time.Time{}, bytes.NewReader(mp3))
	}))
	defer srv.Close()
	catalogFile := filepath.Join(b.TempDir(), "catalog.json")
	start := func(b *testing.B) {
		st, err := boltstore.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		o, err := origin.New(origin.Config{Index: srv.URL + "/index.m3u", Store: st, CatalogFile: catalogFile, TempDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- o.Run(ctx) }()
		for !o.Status().Loaded {
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if n := o.Status().Tracks; n != files {
			b.Fatalf("%d tracks catalogued of %d", n, files)
		}
	}
	for _, kind := range []string{"cold", "restored"} {
		b.Run(kind, func(b *testing.B) {
			var total int64
			for range b.N {
				b.StopTimer()
				if kind == "cold" {
					_ = os.Remove(catalogFile)
				} else if _, err := os.Stat(catalogFile); err != nil {
					start(b) // an earlier run leaves the file
				}
				reads.Store(0)
				b.StartTimer()
				start(b)
				total += reads.Load()
			}
			b.ReportMetric(float64(total)/float64(b.N), "tag-reads/op")
		})
	}
}
