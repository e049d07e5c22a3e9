package musicdir_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztream/ztream/boltstore"
	"github.com/ztream/ztream/internal/testaudio"
	"github.com/ztream/ztream/internal/testtool"
	"github.com/ztream/ztream/musicdir"
	"github.com/ztream/ztream/transcode"
)

// TestFolderTranscodes: with a transcoder, the folder's FLAC and Opus files
// become tracks, a FLAC added later too, and a removed one leaves; without,
// they are skipped with one log line that says why.
func TestFolderTranscodes(t *testing.T) {
	dir := t.TempDir()
	testaudio.Write(t, filepath.Join(dir, "a.flac"), testaudio.Spec{Format: "flac", Samples: 44100, Title: "A"})
	testaudio.Write(t, filepath.Join(dir, "Album", "b.opus"), testaudio.Spec{Format: "opus", Samples: 48000, Title: "B"})
	write(t, filepath.Join(dir, "c.mp3"), testaudio.Fixture(t, "cbr128_44k_stereo.mp3"))

	t.Run("without ffmpeg", func(t *testing.T) {
		st, err := boltstore.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var logs testtool.Buffer
		f, stop := startFolder(t, musicdir.Config{Dir: dir, Store: st, Settle: 200 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(&logs, nil)), NoTranscoder: transcode.ErrNotFound})
		deadline := time.Now().Add(10 * time.Second)
		for !f.Status().Scanned && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if s := f.Status(); s.Files != 1 || s.Tracks != 1 || s.Failed != 0 {
			t.Errorf("status %+v, want the MP3 only", s)
		}
		if n := strings.Count(logs.String(), "need ffmpeg"); n != 1 || !strings.Contains(logs.String(), "count=2") {
			t.Errorf("want one log line for the 2 skipped files, got %d:\n%s", n, logs.String())
		}
	})

	t.Run("with ffmpeg", func(t *testing.T) {
		st, err := boltstore.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		tc, err := transcode.New(transcode.Config{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		f, stop := startFolder(t, musicdir.Config{Dir: dir, Store: st, Settle: 200 * time.Millisecond, Transcoder: tc})
		defer func() {
			if err := stop(); err != nil {
				t.Error(err)
			}
		}()
		titles := func() []string {
			list, err := st.ListTracks(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, s := range list {
				out = append(out, s.Title)
			}
			slices.Sort(out)
			return out
		}
		want := func(what string, ts ...string) {
			t.Helper()
			deadline := time.Now().Add(20 * time.Second)
			for !slices.Equal(titles(), ts) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: titles %v, want %v (status %+v)", what, titles(), ts, f.Status())
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		want("first scan", "A", "B", "c") // the MP3 has no title tag: its file name is its title
		testaudio.Write(t, filepath.Join(dir, "d.wav"), testaudio.Spec{Format: "wav", Samples: 22050, Title: "D"})
		want("a WAV added", "A", "B", "D", "c")
		if err := os.Remove(filepath.Join(dir, "a.flac")); err != nil {
			t.Fatal(err)
		}
		want("a FLAC removed", "B", "D", "c")
	})
}
