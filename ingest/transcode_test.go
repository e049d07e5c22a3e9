package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztream/ztream/boltstore"
	"github.com/ztream/ztream/ingest"
	"github.com/ztream/ztream/internal/testaudio"
	"github.com/ztream/ztream/internal/testtool"
	"github.com/ztream/ztream/transcode"
)

// TestTranscodedIngest ingests a library of every format: each file is
// transcoded once, stored with its source recorded, found again without
// transcoding on the next run, and made a new track when it changes.
func TestTranscodedIngest(t *testing.T) {
	testtool.Command(t, "ffmpeg", "ffmpeg")
	lib := t.TempDir()
	for i, f := range testaudio.Formats {
		testaudio.Write(t, filepath.Join(lib, f+testaudio.Ext(f)), testaudio.Spec{Format: f, Samples: 44100 + 100*i,
			Title: "Tone " + f, Album: "Mixed", Track: i + 1, Cover: map[bool]string{true: "png"}[f == "flac"]})
	}
	copyFile(t, "cbr128_44k_stereo.mp3", filepath.Join(lib, "plain.mp3"))
	files, err := ingest.FindFiles([]string{lib})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(testaudio.Formats)+1 {
		t.Fatalf("FindFiles found %v", files)
	}
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tc, err := transcode.New(transcode.Config{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	run := ingest.Config{Store: st, Transcoder: tc}
	ctx := context.Background()
	sum, err := run.Run(ctx, ingest.FileSources(files))
	if err != nil || sum.Failed != 0 || sum.New != len(files) {
		t.Fatalf("first run: %+v, %v", sum, err)
	}
	want := map[string]ingest.FormatCount{"FLAC": {1, 1, 0}, "M4A": {2, 2, 0}, "Ogg": {1, 1, 0}, "Opus": {1, 1, 0}, "WAV": {1, 1, 0}, "MP3": {1, 0, 0}}
	for f, w := range want {
		if got := sum.Formats[f]; got == nil || *got != w {
			t.Errorf("format %s: %+v, want %+v", f, got, w)
		}
	}
	for _, r := range sum.Results {
		m, err := st.Manifest(ctx, r.Manifest.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Format == "MP3" {
			if m.Source != nil {
				t.Errorf("%s: an MP3 with a source %+v", r.Path, m.Source)
			}
			continue
		}
		sha, size, err := transcode.HashFile(ctx, r.Path)
		if err != nil {
			t.Fatal(err)
		}
		if m.Source == nil || m.Source.SHA256 != sha || m.Source.Size != size || m.Source.Format == "" || m.Source.Bitrate <= 0 {
			t.Errorf("%s: source %+v, want sha %s size %d", r.Path, m.Source, sha, size)
		}
		if m.ID != transcode.TrackID(sha, transcode.DefaultBitrate) {
			t.Errorf("%s: id %s is not derived from the source", r.Path, m.ID)
		}
		if strings.HasSuffix(r.Path, ".flac") && m.Cover == nil {
			t.Errorf("%s: cover lost", r.Path)
		}
	}
	var out bytes.Buffer
	ingest.WriteSummary(&out, sum)
	if !strings.Contains(out.String(), "FLAC 1 stored (1 transcoded)") {
		t.Errorf("summary without the counts by format:\n%s", out.String())
	}

	// Again: nothing transcoded, nothing new.
	sum, err = run.Run(ctx, ingest.FileSources(files))
	if err != nil || sum.New != 0 || sum.Stored != len(files) {
		t.Fatalf("second run: %+v, %v", sum, err)
	}
	for _, r := range sum.Results {
		if r.Transcoded || !r.Existed {
			t.Errorf("%s: transcoded %v, existed %v on the second run", r.Path, r.Transcoded, r.Existed)
		}
	}

	// A changed file is a new track; its old one stays until removed.
	flac := filepath.Join(lib, "flac.flac")
	before := sum.Results[0]
	testaudio.Write(t, flac, testaudio.Spec{Format: "flac", Samples: 22050, Title: "Changed"})
	sum, err = run.Run(ctx, ingest.FileSources([]string{flac}))
	if err != nil || sum.New != 1 || sum.Results[0].Manifest.ID == before.Manifest.ID || sum.Results[0].Manifest.Title != "Changed" {
		t.Fatalf("changed file: %+v, %v (before %s)", sum.Results, err, before.Manifest.ID)
	}
}

// TestNoTranscoder: without ffmpeg the MP3s are stored and the other files
// are reported once, with the reason.
func TestNoTranscoder(t *testing.T) {
	lib := t.TempDir()
	copyFile(t, "cbr128_44k_stereo.mp3", filepath.Join(lib, "a.mp3"))
	for _, name := range []string{"b.flac", "c.opus", "d.FLAC"} {
		if err := os.WriteFile(filepath.Join(lib, name), []byte("never read"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := ingest.FindFiles([]string{lib})
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	why := errors.New("ffmpeg not found (test)")
	sum, err := ingest.Config{Store: st, NoTranscoder: why}.Run(context.Background(), ingest.FileSources(files))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Stored != 1 || sum.NoTranscoder != 3 || sum.Failed != 3 {
		t.Fatalf("stored %d, no transcoder %d, failed %d; want 1, 3, 3", sum.Stored, sum.NoTranscoder, sum.Failed)
	}
	for _, r := range sum.Results {
		if r.Err != nil && (!errors.Is(r.Err, ingest.ErrNoTranscoder) || !errors.Is(r.Err, why)) {
			t.Errorf("%s: %v", r.Path, r.Err)
		}
	}
	var out bytes.Buffer
	ingest.WriteSummary(&out, sum)
	text := out.String()
	if strings.Count(text, why.Error()) != 1 || !strings.Contains(text, "SKIPPED 3 files that need transcoding (FLAC 2, Opus 1") {
		t.Errorf("summary should name the skipped files once, with the reason:\n%s", text)
	}
	if _, err := st.Manifest(context.Background(), sum.Results[0].Manifest.ID); err != nil {
		t.Fatalf("the MP3 %s is not in the library: %v", sum.Results[0].Path, err)
	}
}
