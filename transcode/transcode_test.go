package transcode_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztream/ztream/internal/testaudio"
	"github.com/ztream/ztream/internal/testtool"
	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/transcode"
)

func newTranscoder(t *testing.T, cfg transcode.Config) *transcode.Transcoder {
	t.Helper()
	testtool.Command(t, "ffmpeg", "ffmpeg")
	cfg.TempDir = t.TempDir()
	tc, err := transcode.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// TestFormats transcodes a tone from every format and checks what a
// listener gets: the same number of samples (±2), the tags, the cover, and
// the LAME header that gapless playback trims with.
func TestFormats(t *testing.T) {
	tc := newTranscoder(t, transcode.Config{})
	dir := t.TempDir()
	for i, format := range testaudio.Formats {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			cover := []string{"png", "jpeg"}[i%2]
			spec := testaudio.Spec{Format: format, Samples: 3*44100 + 1234, Title: "Tone " + format,
				Artist: "Test Artist", Album: "Fixtures", Track: i + 1, Disc: 2, Year: 2024, Cover: cover}
			if format == "wav" {
				spec.Cover = "" // WAV carries no picture
			}
			path := filepath.Join(dir, "tone-"+format+testaudio.Ext(format))
			pic := testaudio.Write(t, path, spec)
			out, err := tc.Transcode(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := out.Close(); err != nil {
					t.Error(err)
				}
				if _, err := os.Stat(out.Path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the MP3 is still there after Close: %v", err)
				}
			}()
			tr, err := media.OpenFile(out.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			m := tr.Manifest
			samples, rate := spec.OutputSamples()
			if m.SampleRate != rate {
				t.Errorf("sample rate %d, want %d", m.SampleRate, rate)
			}
			// Gapless albums need the very length: within 2 samples (the
			// issue asked for one frame; AAC's end padding alone is 610).
			if d := m.TotalSamples - int64(samples); d < -2 || d > 2 {
				t.Errorf("%d samples, want %d ±2", m.TotalSamples, samples)
			}
			if m.EncoderDelay == 0 || m.EncoderPadding == 0 {
				t.Errorf("no gapless header: delay %d, padding %d", m.EncoderDelay, m.EncoderPadding)
			}
			if m.Bitrate != transcode.DefaultBitrate {
				t.Errorf("bitrate %d kbit/s, want %d", m.Bitrate, transcode.DefaultBitrate)
			}
			wantDisc := spec.Disc
			if format == "wav" {
				wantDisc = 0 // RIFF INFO has no disc number
			}
			if m.Title != spec.Title || m.Artist != spec.Artist || m.Album != spec.Album ||
				m.TrackNo != spec.Track || m.DiscNo != wantDisc || m.Year != spec.Year {
				t.Errorf("tags %q %q %q track %d disc %d year %d; want %+v", m.Title, m.Artist, m.Album, m.TrackNo, m.DiscNo, m.Year, spec)
			}
			switch {
			case pic == nil && tr.Cover != nil:
				t.Errorf("a cover appeared: %s", tr.Cover.MIME)
			case pic != nil && (tr.Cover == nil || !bytes.Equal(tr.Cover.Data, pic)):
				t.Errorf("cover not kept as it was (%d bytes, got %+v)", len(pic), m.Cover)
			}
			wantCodec := map[string]string{"flac": "flac", "m4a-aac": "aac", "m4a-alac": "alac", "ogg": "vorbis", "opus": "opus", "wav": "pcm_s16le"}[format]
			if out.Source.Format != wantCodec || out.Source.SampleRate != rate || out.Source.Channels != 2 || out.Source.Bitrate <= 0 {
				t.Errorf("source %+v, want codec %s, 44100 Hz, 2 channels, a bitrate", out.Source, wantCodec)
			}
			t.Logf("%s: %d → %d samples, source %s %d kbit/s, MP3 delay %d padding %d",
				format, samples, m.TotalSamples, out.Source.Format, out.Source.Bitrate, m.EncoderDelay, m.EncoderPadding)
		})
	}
}

// TestHighRate: a 96 kHz FLAC becomes a 48 kHz MP3 of the same length.
func TestHighRate(t *testing.T) {
	tc := newTranscoder(t, transcode.Config{Bitrate: 128})
	path := filepath.Join(t.TempDir(), "hires.flac")
	testaudio.Write(t, path, testaudio.Spec{Format: "flac", Samples: 96000 * 2, Rate: 96000, Channels: 1})
	out, err := tc.Transcode(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tr, err := media.OpenFile(out.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	m := tr.Manifest
	if m.SampleRate != 48000 || m.Channels != 1 || m.Bitrate != 128 {
		t.Errorf("%d Hz, %d channels, %d kbit/s; want 48000, 1, 128", m.SampleRate, m.Channels, m.Bitrate)
	}
	if d := m.TotalSamples - 96000; d < -1152 || d > 1152 {
		t.Errorf("%d samples, want 96000 ±1152", m.TotalSamples)
	}
}

// TestAwkwardNames: names with spaces, quotes, a leading dash or a
// protocol-like prefix reach ffmpeg as the files they are.
func TestAwkwardNames(t *testing.T) {
	tc := newTranscoder(t, transcode.Config{})
	dir := t.TempDir()
	for _, name := range []string{`-y it's "quoted" $(x).flac`, "concat:a|b.flac", "http:x.flac"} {
		path := filepath.Join(dir, name)
		testaudio.Write(t, path, testaudio.Spec{Format: "flac", Samples: 44100, Title: name})
		// ffmpeg is run from another directory: the relative name must
		// still be this file.
		rel, err := filepath.Rel(mustWd(t), path)
		if err != nil {
			rel = path
		}
		out, err := tc.Transcode(context.Background(), rel)
		if err != nil {
			t.Errorf("%q: %v", name, err)
			continue
		}
		tr, err := media.OpenFile(out.Path)
		if err != nil || tr.Manifest.Title != name {
			t.Errorf("%q: got %v, %v", name, tr, err)
		}
		if tr != nil {
			tr.Close()
		}
		out.Close()
	}
}

func mustWd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// TestHostile: what a hostile or broken file costs is bounded, and the error
// says why.
func TestHostile(t *testing.T) {
	dir := t.TempDir()
	t.Run("hang", func(t *testing.T) {
		// A FIFO that nobody writes: ffprobe blocks reading it forever.
		path := filepath.Join(dir, "fifo.flac")
		if err := syscall.Mkfifo(path, 0o644); err != nil {
			t.Skip("no FIFOs here:", err)
		}
		tc := newTranscoder(t, transcode.Config{Timeout: time.Second})
		start := time.Now()
		_, err := tc.Transcode(context.Background(), path)
		if err == nil || !strings.Contains(err.Error(), "cut off") {
			t.Fatalf("err = %v, want a timeout", err)
		}
		if el := time.Since(start); el > 20*time.Second {
			t.Errorf("took %s to give up (timeout 1 s)", el)
		}
	})
	t.Run("output bound", func(t *testing.T) {
		path := filepath.Join(dir, "long.wav")
		testaudio.Write(t, path, testaudio.Spec{Format: "wav", Samples: 44100 * 20})
		tc := newTranscoder(t, transcode.Config{MaxOutput: 100 << 10}) // 20 s at 256k is 640 KB
		_, err := tc.Transcode(context.Background(), path)
		if err == nil || !strings.Contains(err.Error(), "output bound") {
			t.Fatalf("err = %v, want the output bound", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		tc := newTranscoder(t, transcode.Config{})
		for name, data := range map[string]string{
			"noise.flac":    strings.Repeat("not audio ", 1000),
			"playlist.m4a":  "#EXTM3U\nhttp://127.0.0.1:1/x.mp3\n", // never read as a playlist
			"empty.ogg":     "",
			"truncated.wav": "RIFF\x24\x00\x00\x00WAVEfmt ",
		} {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := tc.Transcode(context.Background(), path)
			if err == nil {
				out.Close()
				t.Errorf("%s: transcoded", name)
				continue
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("%s: error does not name the file: %v", name, err)
			}
		}
	})
	t.Run("temporary files removed", func(t *testing.T) {
		tmp := t.TempDir()
		tc, err := transcode.New(transcode.Config{TempDir: tmp, MaxOutput: 50 << 10})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "ten.wav")
		testaudio.Write(t, path, testaudio.Spec{Format: "wav", Samples: 44100 * 10})
		if _, err := tc.Transcode(context.Background(), path); err == nil {
			t.Fatal("a 10 s file fit in 50 KB at 256 kbit/s")
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("left behind after a refused transcode: %v", left)
		}
	})
}

func TestNotFound(t *testing.T) {
	_, err := transcode.New(transcode.Config{FFmpeg: filepath.Join(t.TempDir(), "no-ffmpeg")})
	if !errors.Is(err, transcode.ErrNotFound) || !strings.Contains(err.Error(), "--ffmpeg") {
		t.Errorf("err = %v, want ErrNotFound saying how to install it", err)
	}
	if _, err := transcode.New(transcode.Config{Bitrate: 100}); err == nil || !strings.Contains(err.Error(), "256") {
		t.Errorf("bitrate 100: err = %v", err)
	}
}

func TestParseBitrate(t *testing.T) {
	for in, want := range map[string]int{"256k": 256, "320": 320, "128000": 128, " 192K ": 192} {
		if got, err := transcode.ParseBitrate(in); err != nil || got != want {
			t.Errorf("ParseBitrate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "100k", "0", "-256k", "1000k"} {
		if got, err := transcode.ParseBitrate(in); err == nil {
			t.Errorf("ParseBitrate(%q) = %d, want an error", in, got)
		}
	}
}

func TestTrackID(t *testing.T) {
	a := transcode.TrackID(strings.Repeat("ab", 32), 256)
	if len(a) != 32 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Errorf("TrackID = %q, want 32 lowercase hex digits", a)
	}
	if a != transcode.TrackID(strings.Repeat("ab", 32), 256) {
		t.Error("TrackID is not stable")
	}
	if a == transcode.TrackID(strings.Repeat("ab", 32), 320) || a == transcode.TrackID(strings.Repeat("ac", 32), 256) {
		t.Error("TrackID ignores the bitrate or the source")
	}
}
