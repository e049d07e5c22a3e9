package musicdir

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ztream/ztream/boltstore"
)

// TestRescan: after lost events (a watch error) the rescan finds what
// changed meanwhile: a file added is ingested, a file removed leaves
// (after two Settle periods without a file).
func TestRescan(t *testing.T) {
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("..", "media", "testdata", "cbr128_44k_stereo.mp3"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := os.ReadFile(filepath.Join("..", "media", "testdata", "mono_44k.mp3"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.mp3"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := New(Config{Dir: dir, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	f.ingest(ctx, f.scan(ctx, w, f.dir))
	// Changes nobody hears of.
	if err := os.Remove(filepath.Join(dir, "a.mp3")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.mp3"), other, 0o644); err != nil {
		t.Fatal(err)
	}
	f.rescan(ctx, w)
	// a's track leaves two Settle periods after its file was found gone.
	f.dropOrphans(ctx, time.Now())
	if n := len(f.orphans); n != 1 {
		t.Fatalf("%d tracks wait to leave, want a's", n)
	}
	f.dropOrphans(ctx, time.Now().Add(2*f.cfg.Settle))
	list, err := st.ListTracks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := f.files[filepath.Join(dir, "b.mp3")]
	if len(list) != 1 || b.id == "" || list[0].ID != b.id {
		t.Fatalf("after the rescan the library has %+v, want only b's track", list)
	}
	if _, ok := f.files[filepath.Join(dir, "a.mp3")]; ok || len(f.files) != 1 {
		t.Errorf("files followed: %v", f.files)
	}
}
