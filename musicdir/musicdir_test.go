package musicdir_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ztream/ztream/boltstore"
	"github.com/ztream/ztream/internal/testaudio"
	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/musicdir"
	"github.com/ztream/ztream/store"
)

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startFolder runs a Folder of cfg in the background; stop ends it and
// returns what Run returned.
func startFolder(t *testing.T, cfg musicdir.Config) (f *musicdir.Folder, stop func() error) {
	t.Helper()
	f, err := musicdir.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	return f, func() error {
		cancel()
		return <-done
	}
}

// libraryIDs lists the ids of st's tracks, sorted.
func libraryIDs(t *testing.T, st store.Store) []string {
	t.Helper()
	list, err := st.ListTracks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

// idOf is the track id of an MP3's bytes.
func idOf(t *testing.T, data []byte) string {
	t.Helper()
	tr, err := media.Analyze(bytes.NewReader(data), int64(len(data)), "x.mp3")
	if err != nil {
		t.Fatal(err)
	}
	return tr.Manifest.ID
}

// TestFolder: a music folder is ingested at start and followed: files
// added (half-written ones wait), replaced, removed and moved in show in
// the library; files that are not MP3s fail once without stopping
// anything; symbolic links are not followed, so nothing outside the folder
// is read and a link loop costs nothing.
func TestFolder(t *testing.T) {
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := t.TempDir()
	outside := t.TempDir()
	a, b, c, d := testaudio.Fixture(t, "cbr128_44k_stereo.mp3"), testaudio.Fixture(t, "mono_44k.mp3"), testaudio.Fixture(t, "cbr96_32k.mp3"), testaudio.Fixture(t, "nores_44k.mp3")
	write(t, filepath.Join(dir, "a.mp3"), a)
	write(t, filepath.Join(dir, "Album", "b.MP3"), b)
	write(t, filepath.Join(dir, "broken.mp3"), []byte("this is not an MP3 file at all, only text"))
	write(t, filepath.Join(dir, "cover.jpg"), []byte("\xff\xd8\xff"))
	write(t, filepath.Join(outside, "secret.mp3"), c)
	if err := os.Symlink(filepath.Join(outside, "secret.mp3"), filepath.Join(dir, "link.mp3")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "outside")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(dir, "Album", "loop")); err != nil {
		t.Fatal(err)
	}

	changes := make(chan struct{}, 100)
	f, stop := startFolder(t, musicdir.Config{Dir: dir, Store: st, Settle: 300 * time.Millisecond, Workers: 2,
		OnChange: func() { changes <- struct{}{} }})
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})

	library := func() []string { return libraryIDs(t, st) }
	want := func(what string, ids ...string) {
		t.Helper()
		slices.Sort(ids)
		deadline := time.Now().Add(10 * time.Second)
		for !slices.Equal(library(), ids) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: library %v, want %v (status %+v)", what, library(), ids, f.Status())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	want("first scan", idOf(t, a), idOf(t, b))
	if s := f.Status(); !s.Scanned || s.Files != 3 || s.Tracks != 2 || s.Failed != 1 {
		t.Fatalf("status after the scan %+v, want 3 files, 2 tracks, 1 failed", s)
	}

	// A file written in two halves, the pause shorter than Settle: never
	// ingested half-written (it would fail: the status would count it).
	half := len(c) / 2
	p := filepath.Join(dir, "new", "c.mp3")
	write(t, p, c[:half])
	time.Sleep(100 * time.Millisecond)
	fh, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write(c[half:]); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	want("a file added in a new directory", idOf(t, a), idOf(t, b), idOf(t, c))
	if s := f.Status(); s.Failed != 1 {
		t.Errorf("a half-written file was ingested: %+v", s)
	}

	// Replaced with other audio: the old track goes, the new one comes.
	write(t, filepath.Join(dir, "a.mp3"), d)
	want("a file replaced", idOf(t, d), idOf(t, b), idOf(t, c))

	// Removed: its track leaves, unless another file has the same audio.
	write(t, filepath.Join(dir, "copy-of-b.mp3"), b)
	time.Sleep(time.Second) // the copy settles (same track: nothing to see)
	if err := os.Remove(filepath.Join(dir, "Album", "b.MP3")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	want("a file removed whose audio another file has", idOf(t, d), idOf(t, b), idOf(t, c))
	if err := os.Remove(filepath.Join(dir, "copy-of-b.mp3")); err != nil {
		t.Fatal(err)
	}
	want("the last file of a track removed", idOf(t, d), idOf(t, c))

	// A directory removed with its files.
	if err := os.RemoveAll(filepath.Join(dir, "new")); err != nil {
		t.Fatal(err)
	}
	want("a directory removed", idOf(t, d))

	// A directory moved in from outside.
	moved := filepath.Join(t.TempDir(), "Moved")
	write(t, filepath.Join(moved, "b.mp3"), b)
	if err := os.Rename(moved, filepath.Join(dir, "Moved")); err != nil {
		t.Skipf("rename across directories: %v", err) // another file system
	}
	want("a directory moved in", idOf(t, d), idOf(t, b))

	// A directory renamed inside the folder: its files keep their tracks,
	// and what changes in it later is seen.
	if err := os.Rename(filepath.Join(dir, "Moved"), filepath.Join(dir, "Renamed")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	want("a directory renamed", idOf(t, d), idOf(t, b))
	write(t, filepath.Join(dir, "Renamed", "c.mp3"), c)
	want("a file added to a renamed directory", idOf(t, d), idOf(t, b), idOf(t, c))
	// A file renamed: its track never leaves the library (pages would see
	// it go and come back), watched for four Settle periods.
	if err := os.Rename(filepath.Join(dir, "Renamed", "c.mp3"), filepath.Join(dir, "Renamed", "c-renamed.mp3")); err != nil {
		t.Fatal(err)
	}
	cid := idOf(t, c)
	for end := time.Now().Add(1200 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if !slices.Contains(library(), cid) {
			t.Fatal("a renamed file's track left the library")
		}
	}
	if err := os.Remove(filepath.Join(dir, "Renamed", "b.mp3")); err != nil {
		t.Fatal(err)
	}
	want("a file removed from a renamed directory", idOf(t, d), idOf(t, c))
	if err := os.Remove(filepath.Join(dir, "Renamed", "c-renamed.mp3")); err != nil {
		t.Fatal(err)
	}
	want("a renamed file removed", idOf(t, d))
	write(t, filepath.Join(dir, "Renamed", "c.mp3"), c)
	want("a file added again", idOf(t, d), idOf(t, c))
	if len(changes) == 0 {
		t.Error("OnChange never called")
	}
	// Status is published once a tick: wait for it (bounded).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		s := f.Status()
		if s.Failed == 1 && s.Files == 3 && s.Tracks == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("final status %+v, want 3 files (a, broken, Renamed/c), 2 tracks, 1 failed", s)
		}
	}
}

// TestNotAFolder: New refuses a missing folder and a file.
func TestNotAFolder(t *testing.T) {
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := musicdir.New(musicdir.Config{Dir: filepath.Join(t.TempDir(), "none"), Store: st}); err == nil {
		t.Error("a missing folder was accepted")
	}
	file := filepath.Join(t.TempDir(), "f.mp3")
	write(t, file, []byte("x"))
	if _, err := musicdir.New(musicdir.Config{Dir: file, Store: st}); err == nil {
		t.Error("a file was accepted as the music folder")
	}
}
