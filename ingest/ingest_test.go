package ingest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztream/ztream/boltstore"
	"github.com/ztream/ztream/ingest"
	"github.com/ztream/ztream/internal/testaudio"
)

// copyFile copies a media fixture into dir under name.
func copyFile(t *testing.T, fixture, dst string) {
	t.Helper()
	data := testaudio.Fixture(t, fixture)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRunStoresGoodFilesAndReportsBadOnes(t *testing.T) {
	lib := t.TempDir()
	copyFile(t, "cbr128_44k_stereo.mp3", filepath.Join(lib, "a", "one.mp3"))
	copyFile(t, "vbr_v2_44k.mp3", filepath.Join(lib, "b", "deep", "two.MP3"))
	noise := make([]byte, 50_000)
	rand.Read(noise)
	if err := os.WriteFile(filepath.Join(lib, "a", "noise.mp3"), noise, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lib, "a", "notes.txt"), []byte("not audio"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lib, "empty.mp3"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	files, err := ingest.FindFiles([]string{lib})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Fatalf("FindFiles found %v, want the 4 .mp3 files", files)
	}
	for _, f := range files {
		if strings.HasSuffix(f, ".txt") {
			t.Fatalf("FindFiles took %s", f)
		}
	}

	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var events int
	sum, err := ingest.Run(context.Background(), st, ingest.FileSources(files), func(done, total int, _ *ingest.Result) {
		events++
		if total != 4 || done > total {
			t.Errorf("progress %d/%d", done, total)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if events != 8 {
		t.Errorf("progress called %d times, want 8 (before and after each file)", events)
	}
	if sum.Stored != 2 || sum.New != 2 || sum.Failed != 2 {
		t.Fatalf("summary stored=%d new=%d failed=%d, want 2/2/2", sum.Stored, sum.New, sum.Failed)
	}
	for _, r := range sum.Results {
		if r.Err != nil && !strings.Contains(r.Err.Error(), filepath.Base(r.Path)) {
			t.Errorf("error %q does not name the file %s", r.Err, r.Path)
		}
	}
	tracks, err := st.ListTracks(context.Background())
	if err != nil || len(tracks) != 2 {
		t.Fatalf("library has %d tracks (%v), want 2", len(tracks), err)
	}

	// A second run finds the same audio already there and changes nothing.
	sum, err = ingest.Run(context.Background(), st, ingest.FileSources(files), nil)
	if err != nil || sum.Stored != 2 || sum.New != 0 {
		t.Fatalf("re-ingest: stored=%d new=%d err=%v, want 2 stored, 0 new", sum.Stored, sum.New, err)
	}
	tracks, _ = st.ListTracks(context.Background())
	if len(tracks) != 2 {
		t.Fatalf("re-ingest changed the library to %d tracks", len(tracks))
	}

	var out bytes.Buffer
	ingest.WriteSummary(&out, sum)
	if !strings.Contains(out.String(), "2 stored (0 new, 2 already in the library), 2 failed") {
		t.Errorf("summary text: %q", out.String())
	}
}

func TestFindFilesMissingPath(t *testing.T) {
	if _, err := ingest.FindFiles([]string{filepath.Join(t.TempDir(), "nope")}); err == nil {
		t.Fatal("FindFiles accepted a path that does not exist")
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	lib := t.TempDir()
	copyFile(t, "cbr128_44k_stereo.mp3", filepath.Join(lib, "one.mp3"))
	if _, err := ingest.Run(ctx, st, ingest.FileSources([]string{filepath.Join(lib, "one.mp3")}), nil); err == nil {
		t.Fatal("Run ignored a cancelled context")
	}
}
