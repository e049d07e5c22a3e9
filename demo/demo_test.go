package demo

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dhowden/tag"
)

// Limits the bundled tracks must respect.
const (
	maxTotalBytes = 12 << 20
	minSeconds    = 120
	maxSeconds    = 180
)

func TestTracksListsNames(t *testing.T) {
	entries, err := fs.ReadDir(Tracks(), ".")
	if err != nil {
		t.Fatalf("read dir: %v", err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if want := Names(); !slices.Equal(got, want) {
		t.Fatalf("embedded files %v, want %v", got, want)
	}
	if len(got) != 3 {
		t.Fatalf("%d tracks, want 3", len(got))
	}
}

func TestNamesReturnsFreshSlice(t *testing.T) {
	a := Names()
	a[0] = "changed"
	if Names()[0] == "changed" {
		t.Fatal("Names shares its slice between calls")
	}
}

func TestTracksAreIndependentMP3Frames(t *testing.T) {
	total := 0
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			data, err := fs.ReadFile(Tracks(), name)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			total += len(data)
			if !bytes.HasPrefix(data, []byte("ID3")) && (len(data) < 2 || data[0] != 0xFF || data[1]&0xE0 != 0xE0) {
				t.Fatalf("starts with % x, want an ID3v2 tag or an MPEG sync", data[:min(4, len(data))])
			}
			stats, err := walkFrames(data[id3v2Size(data):])
			if err != nil {
				t.Fatalf("frames: %v", err)
			}
			if stats.reservoirFrames != 0 {
				t.Errorf("%d frames use the bit reservoir, want 0 (lame --nores)", stats.reservoirFrames)
			}
			secs := float64(stats.frames*samplesPerFrame) / sampleRate
			if secs < minSeconds || secs > maxSeconds {
				t.Errorf("duration %.1f s, want %d..%d", secs, minSeconds, maxSeconds)
			}
		})
	}
	if total > maxTotalBytes {
		t.Errorf("tracks total %d bytes, limit %d", total, maxTotalBytes)
	}
}

func TestTracksAreTagged(t *testing.T) {
	titles := map[string]bool{}
	var cover []byte
	for i, name := range Names() {
		f, err := Tracks().Open(name)
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		rs, ok := f.(interface {
			Read([]byte) (int, error)
			Seek(int64, int) (int64, error)
		})
		if !ok {
			t.Fatalf("%s: embedded file is not seekable", name)
		}
		m, err := tag.ReadFrom(rs)
		f.Close()
		if err != nil {
			t.Fatalf("%s: read tags: %v", name, err)
		}
		if m.Title() == "" || titles[m.Title()] {
			t.Errorf("%s: title %q is empty or repeated", name, m.Title())
		}
		titles[m.Title()] = true
		if m.Artist() != "Ztream Demo Band" || m.Album() != "Ztream Demo" || m.Year() != 2026 {
			t.Errorf("%s: artist %q album %q year %d", name, m.Artist(), m.Album(), m.Year())
		}
		if n, of := m.Track(); n != i+1 || of != len(Names()) {
			t.Errorf("%s: track %d/%d, want %d/%d", name, n, of, i+1, len(Names()))
		}
		// The album cover: one JPEG shared by the three tracks.
		p := m.Picture()
		if p == nil || p.MIMEType != "image/jpeg" || len(p.Data) < 1000 || !bytes.HasPrefix(p.Data, []byte{0xff, 0xd8, 0xff}) {
			t.Errorf("%s: no JPEG album cover (%v)", name, p)
		} else if cover == nil {
			cover = p.Data
		} else if !bytes.Equal(cover, p.Data) {
			t.Errorf("%s: another cover than the first track's", name)
		}
	}
}

// MPEG-1 Layer III constants of the demo encoding.
const (
	samplesPerFrame = 1152
	sampleRate      = 44100
)

// mpeg1L3Bitrates are the MPEG-1 Layer III bitrates in kbit/s by index.
func mpeg1L3Bitrates() [16]int {
	return [16]int{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0}
}

// id3v2Size returns the size of a leading ID3v2 tag, 0 if there is none.
func id3v2Size(b []byte) int {
	if len(b) < 10 || !bytes.HasPrefix(b, []byte("ID3")) {
		return 0
	}
	size := int(b[6]&0x7F)<<21 | int(b[7]&0x7F)<<14 | int(b[8]&0x7F)<<7 | int(b[9]&0x7F)
	if b[5]&0x10 != 0 { // footer present
		size += 10
	}
	return 10 + size
}

type frameStats struct {
	frames          int
	reservoirFrames int
}

// walkFrames checks that b is a run of MPEG-1 Layer III 44.1 kHz frames
// and counts them and the frames whose main_data_begin is not 0.
func walkFrames(b []byte) (frameStats, error) {
	var st frameStats
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return st, fmt.Errorf("%d stray bytes at offset %d", len(b)-off, off)
		}
		h := b[off : off+4]
		if h[0] != 0xFF || h[1]&0xFE != 0xFA { // sync, MPEG-1, Layer III
			return st, fmt.Errorf("no MPEG-1 Layer III header at offset %d: % x", off, h)
		}
		bitrate := mpeg1L3Bitrates()[h[2]>>4]
		if bitrate == 0 || (h[2]>>2)&3 != 0 {
			return st, fmt.Errorf("frame %d: bad bitrate or sample rate in % x", st.frames, h)
		}
		size := 144*bitrate*1000/sampleRate + int(h[2]>>1&1)
		sideInfo := off + 4
		if h[1]&1 == 0 { // CRC follows the header
			sideInfo += 2
		}
		if sideInfo+2 > len(b) || off+size > len(b) {
			return st, errors.New("truncated frame")
		}
		if mainDataBegin := int(b[sideInfo])<<1 | int(b[sideInfo+1]>>7); mainDataBegin != 0 {
			st.reservoirFrames++
		}
		st.frames++
		off += size
	}
	return st, nil
}

// TestWalkFramesSeesReservoir checks the checker itself on the media
// package's LAME fixtures: a default encode borrows from the reservoir, a
// --nores encode never does.
func TestWalkFramesSeesReservoir(t *testing.T) {
	for file, wantReservoir := range map[string]bool{
		"cbr128_44k_stereo.mp3": true,
		"nores_44k.mp3":         false,
	} {
		data, err := os.ReadFile(filepath.Join("..", "media", "testdata", file))
		if err != nil {
			t.Fatalf("read fixture: %v", err)
		}
		st, err := walkFrames(data[id3v2Size(data):])
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if st.frames == 0 || (st.reservoirFrames > 0) != wantReservoir {
			t.Errorf("%s: %d frames, %d using the reservoir; want reservoir use %v", file, st.frames, st.reservoirFrames, wantReservoir)
		}
	}
}
