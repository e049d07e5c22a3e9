package musicdir_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ztream/ztream/boltstore"
	"github.com/ztream/ztream/ingest"
	"github.com/ztream/ztream/internal/testaudio"
	"github.com/ztream/ztream/musicdir"
	"github.com/ztream/ztream/store"
)

// runUntilScanned runs a Folder over dir until its first scan ended (and
// the sweep after it), then stops it.
func runUntilScanned(t *testing.T, st store.Store, dir string) {
	t.Helper()
	f, stop := startFolder(t, musicdir.Config{Dir: dir, Store: st, Settle: 200 * time.Millisecond, Workers: 2})
	for deadline := time.Now().Add(10 * time.Second); !f.Status().Scanned; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first scan did not end in 10 s")
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestRemovedWhileDown: the tracks of files removed while the server was
// down leave the library at the next start; a track ingested by hand
// stays, as does one whose audio another file of the folder still has, and
// a hand ingest of a folder's file leaves it the folder's.
func TestRemovedWhileDown(t *testing.T) {
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := t.TempDir()
	a, b, c, d := testaudio.Fixture(t, "cbr128_44k_stereo.mp3"), testaudio.Fixture(t, "mono_44k.mp3"), testaudio.Fixture(t, "cbr96_32k.mp3"), testaudio.Fixture(t, "nores_44k.mp3")
	write(t, filepath.Join(dir, "a.mp3"), a)
	write(t, filepath.Join(dir, "Album", "b.mp3"), b)
	write(t, filepath.Join(dir, "Album", "d.mp3"), d)
	write(t, filepath.Join(dir, "d-again.mp3"), d)
	runUntilScanned(t, st, dir)

	// By hand: c (not in the folder) and a (a file of the folder, again).
	elsewhere := filepath.Join(t.TempDir(), "c.mp3")
	write(t, elsewhere, c)
	aByHand := filepath.Join(t.TempDir(), "a.mp3")
	write(t, aByHand, a)
	if _, err := ingest.Run(context.Background(), st, ingest.FileSources([]string{elsewhere, aByHand}), nil); err != nil {
		t.Fatal(err)
	}

	// While the server is down: b's and a's files go, one of d's two.
	for _, p := range []string{filepath.Join(dir, "Album", "b.mp3"), filepath.Join(dir, "Album", "d.mp3"), filepath.Join(dir, "a.mp3")} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	runUntilScanned(t, st, dir)

	got := libraryIDs(t, st)
	want := []string{idOf(t, c), idOf(t, d)}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("library after the restart %v, want %v (c by hand, d still in the folder)", got, want)
	}
}
