// Package testaudio writes audio fixtures for tests: a tone encoded by
// ffmpeg as FLAC, M4A (AAC or ALAC), Ogg Vorbis, Opus or WAV, with tags and
// an optional cover. Nothing is checked in: every file is made from a sine
// in the test's own directory.
package testaudio

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/ztream/ztream/internal/testtool"
)

// Formats are the Spec.Format values, one per kind of file ingest
// transcodes.
var Formats = []string{"flac", "m4a-aac", "m4a-alac", "ogg", "opus", "wav"}

// Spec describes a fixture.
type Spec struct {
	// Format is one of Formats.
	Format string
	// Samples is the tone's length in samples at Rate (per channel).
	Samples int
	// Rate is the sample rate in Hz (0 = 44100); Opus always encodes at
	// 48000 (see OutputSamples).
	Rate int
	// Channels (0 = 2).
	Channels int
	// Freq is the tone's frequency in Hz (0 = 440).
	Freq                 float64
	Title, Artist, Album string
	Track, Disc, Year    int
	// Cover is "", "png" or "jpeg": the picture embedded.
	Cover string
}

// Ext returns the file extension of a format.
func Ext(format string) string {
	switch format {
	case "m4a-aac", "m4a-alac":
		return ".m4a"
	}
	return "." + format
}

// OutputSamples is the number of samples the audio holds once decoded: the
// tone's, at the rate the encoder keeps (Opus resamples to 48 kHz).
func (s Spec) OutputSamples() (samples, rate int) {
	s = s.withDefaults()
	if s.Format == "opus" && s.Rate != 48000 {
		return int(int64(s.Samples) * 48000 / int64(s.Rate)), 48000
	}
	return s.Samples, s.Rate
}

func (s Spec) withDefaults() Spec {
	if s.Rate == 0 {
		s.Rate = 44100
	}
	if s.Channels == 0 {
		s.Channels = 2
	}
	if s.Freq == 0 {
		s.Freq = 440
	}
	return s
}

// Write makes the fixture at path (its extension should be Ext(s.Format))
// with ffmpeg, and returns the cover's bytes (nil without one). The test
// fails when ffmpeg fails; it is skipped when ffmpeg is missing outside CI
// (testtool.Command).
func Write(tb testing.TB, path string, s Spec) []byte {
	tb.Helper()
	ffmpeg := testtool.Command(tb, "ffmpeg", "ffmpeg")
	s = s.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%g:sample_rate=%d:duration=%g", s.Freq, s.Rate, float64(s.Samples)/float64(s.Rate)+1)}
	var cover []byte
	if s.Cover != "" {
		cover = Picture(tb, s.Cover)
	}
	inlineCover := s.Format == "ogg" || s.Format == "opus"
	if cover != nil && !inlineCover {
		pic := path + ".cover." + s.Cover
		if err := os.WriteFile(pic, cover, 0o644); err != nil {
			tb.Fatal(err)
		}
		defer func() { _ = os.Remove(pic) }() // in the test's directory: gone with it anyway
		args = append(args, "-i", "file:"+pic, "-map", "0:a", "-map", "1:v", "-c:v", "copy", "-disposition:v", "attached_pic")
	}
	args = append(args, "-af", fmt.Sprintf("atrim=end_sample=%d", s.Samples), "-ac", strconv.Itoa(s.Channels))
	switch s.Format {
	case "flac":
		args = append(args, "-c:a", "flac")
	case "m4a-aac":
		args = append(args, "-c:a", "aac", "-b:a", "160k")
	case "m4a-alac":
		args = append(args, "-c:a", "alac")
	case "ogg":
		args = append(args, "-c:a", "libvorbis")
	case "opus":
		args = append(args, "-c:a", "libopus", "-b:a", "128k")
	case "wav":
		args = append(args, "-c:a", "pcm_s16le")
	default:
		tb.Fatalf("testaudio: unknown format %q", s.Format)
	}
	meta := "-metadata"
	if inlineCover {
		meta = "-metadata:s:a:0" // Vorbis comments belong to the stream
	}
	tag := func(k, v string) {
		if v != "" && v != "0" {
			args = append(args, meta, k+"="+v)
		}
	}
	tag("title", s.Title)
	tag("artist", s.Artist)
	tag("album", s.Album)
	tag("track", strconv.Itoa(s.Track))
	tag("disc", strconv.Itoa(s.Disc))
	tag("date", strconv.Itoa(s.Year))
	if cover != nil && inlineCover {
		tag("METADATA_BLOCK_PICTURE", flacPicture(cover, "image/"+s.Cover))
	}
	args = append(args, "file:"+path)
	if out, err := exec.Command(ffmpeg, args...).CombinedOutput(); err != nil {
		tb.Fatalf("testaudio: ffmpeg %s: %v\n%s", filepath.Base(path), err, out)
	}
	return cover
}

// Picture returns a small picture in kind "png" or "jpeg".
func Picture(tb testing.TB, kind string) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 48, 48))
	for y := range 48 {
		for x := range 48 {
			img.Set(x, y, color.RGBA{uint8(x * 5), uint8(y * 5), 160, 255})
		}
	}
	var b bytes.Buffer
	var err error
	switch kind {
	case "png":
		err = png.Encode(&b, img)
	case "jpeg":
		err = jpeg.Encode(&b, img, nil)
	default:
		err = fmt.Errorf("unknown picture kind %q", kind)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// flacPicture returns the base64 FLAC picture block (a front cover) that
// Vorbis comments carry as METADATA_BLOCK_PICTURE.
func flacPicture(data []byte, mime string) string {
	var b bytes.Buffer
	be := func(v uint32) { _ = binary.Write(&b, binary.BigEndian, v) }
	be(3) // front cover
	be(uint32(len(mime)))
	b.WriteString(mime)
	be(0)                 // description length
	be(48)                // width
	be(48)                // height
	be(24)                // depth
	be(0)                 // colours
	be(uint32(len(data))) // data length
	b.Write(data)
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// Fixture returns the bytes of media/testdata/name, the media package's
// checked-in MP3 test files, from any package's test.
func Fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("testaudio: cannot locate the repository")
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "..", "media", "testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
