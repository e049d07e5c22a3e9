package media

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// fixture is one line of testdata/fixtures.txt, written by make-fixtures.sh.
type fixture struct {
	file       string
	samples    int64 // per channel, of the WAV given to lame
	rate       int
	channels   int
	lameTagged bool
	nores      bool
}

func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	f, err := os.Open("testdata/fixtures.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fixture
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Fields(sc.Text())
		if len(p) != 6 {
			t.Fatalf("bad fixtures.txt line %q", sc.Text())
		}
		n, _ := strconv.ParseInt(p[1], 10, 64)
		r, _ := strconv.Atoi(p[2])
		c, _ := strconv.Atoi(p[3])
		out = append(out, fixture{p[0], n, r, c, p[4] == "1", p[5] == "1"})
	}
	if len(out) < 10 {
		t.Fatalf("only %d fixtures", len(out))
	}
	return out
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// leadingID3 returns the size of the ID3v2 tag at the start of b, computed
// here independently of the package's tag code.
func leadingID3(b []byte) int {
	if len(b) < 10 || string(b[:3]) != "ID3" {
		return 0
	}
	n := int(b[6])<<21 | int(b[7])<<14 | int(b[8])<<7 | int(b[9])
	return 10 + n
}

// allChunks reads every chunk of tr and checks each against its ChunkInfo.
func allChunks(t *testing.T, tr *Track) []byte {
	t.Helper()
	var all []byte
	for i, c := range tr.Manifest.Chunks {
		b, err := tr.Chunk(i)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if len(b) != c.Size || len(b) > MaxChunkSize {
			t.Fatalf("chunk %d: %d bytes, manifest says %d", i, len(b), c.Size)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != c.SHA256 {
			t.Fatalf("chunk %d: sha256 mismatch", i)
		}
		all = append(all, b...)
	}
	return all
}

// wantFPC is the frames-per-chunk table of the design notes (≈1 s).
var wantFPC = map[int]int{44100: 38, 48000: 42, 32000: 28, 22050: 38, 24000: 42, 16000: 28, 11025: 19, 12000: 21, 8000: 14}

var wantVersion = map[int]string{44100: "1", 48000: "1", 32000: "1", 22050: "2", 24000: "2", 16000: "2", 11025: "2.5", 12000: "2.5", 8000: "2.5"}

func TestFixtures(t *testing.T) {
	for _, fx := range loadFixtures(t) {
		t.Run(fx.file, func(t *testing.T) {
			path := filepath.Join("testdata", fx.file)
			file := readFile(t, path)
			tr, err := OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			m := tr.Manifest
			if m.SampleRate != fx.rate || m.Channels != fx.channels || m.MIME != MIMEType || m.MPEGVersion != wantVersion[fx.rate] {
				t.Fatalf("rate %d channels %d mime %q version %s", m.SampleRate, m.Channels, m.MIME, m.MPEGVersion)
			}
			spf := 1152
			if fx.rate < 32000 {
				spf = 576
			}
			if m.SamplesPerFrame != spf || m.FramesPerChunk != wantFPC[fx.rate] {
				t.Fatalf("spf %d fpc %d", m.SamplesPerFrame, m.FramesPerChunk)
			}

			// Expected audio region, computed from the file: after the ID3v2
			// tag and the Xing/Info frame, up to the ID3v1 tag or EOF.
			start := leadingID3(file)
			h, err := parseHeader(file[start:])
			if err != nil {
				t.Fatalf("no frame right after the tags: %v", err)
			}
			// LAME writes the Info tag right after the side information,
			// not counting the CRC of a protected frame.
			p := start + 4 + h.sideInfoSize()
			xing := string(file[p:][:4])
			hasXing := xing == "Xing" || xing == "Info"
			if hasXing != fx.lameTagged {
				t.Fatalf("Xing/Info frame present %v, fixture says %v", hasXing, fx.lameTagged)
			}
			if hasXing {
				// LAME's own frame count (Xing flags bit 0) is an independent count.
				if binary.BigEndian.Uint32(file[p+4:])&1 == 0 {
					t.Fatal("no frame count in the Xing header")
				}
				if got := int(binary.BigEndian.Uint32(file[p+8:])); got != m.TotalFrames {
					t.Fatalf("TotalFrames %d, LAME counted %d", m.TotalFrames, got)
				}
				start += h.size
			}
			end := len(file)
			if len(file) >= 128 && string(file[len(file)-128:][:3]) == "TAG" {
				end -= 128
			}
			all := allChunks(t, tr)
			if !bytes.Equal(all, file[start:end]) {
				t.Fatalf("chunks are not the verbatim bytes [%d,%d) of the file (got %d bytes)", start, end, len(all))
			}
			if int64(len(all)) != m.Size {
				t.Fatalf("Size %d, chunks hold %d", m.Size, len(all))
			}
			id := sha256.Sum256(all)
			if m.ID != hex.EncodeToString(id[:16]) {
				t.Fatalf("ID %s is not the SHA-256 prefix of the audio", m.ID)
			}

			if fx.lameTagged {
				if m.TotalSamples != fx.samples {
					t.Fatalf("TotalSamples %d, WAV had %d (delay %d padding %d frames %d)",
						m.TotalSamples, fx.samples, m.EncoderDelay, m.EncoderPadding, m.TotalFrames)
				}
				if wantMS := int64(math.Round(float64(fx.samples) * 1000 / float64(fx.rate))); m.DurationMS != wantMS {
					t.Fatalf("DurationMS %d, want %d", m.DurationMS, wantMS)
				}
			} else if m.EncoderDelay != 0 || m.TotalSamples != int64(m.TotalFrames*spf) {
				t.Fatalf("untagged file: delay %d total %d", m.EncoderDelay, m.TotalSamples)
			}

			// Chunk table: consecutive seqs, fixed frame count, consistent
			// times, frames walked independently inside each chunk.
			frames, reservoir := 0, 0
			for i, c := range m.Chunks {
				if c.Seq != i {
					t.Fatalf("chunk %d has seq %d", i, c.Seq)
				}
				if i < len(m.Chunks)-1 && c.Frames != m.FramesPerChunk || c.Frames < 1 || c.Frames > m.FramesPerChunk {
					t.Fatalf("chunk %d has %d frames", i, c.Frames)
				}
				wantStart := float64(frames*spf) / float64(fx.rate) * 1000
				if math.Abs(c.StartMS-wantStart) > 1e-6 || math.Abs(c.DurationMS-float64(c.Frames*spf)/float64(fx.rate)*1000) > 1e-6 {
					t.Fatalf("chunk %d: start %v dur %v, want start %v", i, c.StartMS, c.DurationMS, wantStart)
				}
				b, _ := tr.Chunk(i)
				n := 0
				for p := 0; p < len(b); n++ {
					fh, err := parseHeader(b[p:])
					if err != nil {
						t.Fatalf("chunk %d: no frame at byte %d: %v", i, p, err)
					}
					p += fh.size
				}
				if n != c.Frames {
					t.Fatalf("chunk %d: walked %d frames, manifest says %d", i, n, c.Frames)
				}
				fh, _ := parseHeader(b)
				mdb, _ := fh.mainDataBegin(b)
				if (mdb > 0) != c.Reservoir {
					t.Fatalf("chunk %d: main_data_begin %d, reservoir %v", i, mdb, c.Reservoir)
				}
				if i == 0 && mdb != 0 {
					t.Fatalf("first audio frame has main_data_begin %d", mdb)
				}
				if c.Reservoir {
					reservoir++
				}
				frames += c.Frames
			}
			if frames != m.TotalFrames {
				t.Fatalf("chunks hold %d frames, TotalFrames %d", frames, m.TotalFrames)
			}
			if fx.nores && reservoir != 0 {
				t.Fatalf("--nores file has %d reservoir chunks", reservoir)
			}
			if !fx.nores && len(m.Chunks) > 1 && reservoir == 0 {
				t.Fatal("default LAME file has no chunk starting on a reservoir frame")
			}
			if got := float64(m.Size) * 8 / (float64(m.TotalFrames*spf) / float64(fx.rate)) / 1000; math.Abs(got-float64(m.Bitrate)) > 0.5 {
				t.Fatalf("Bitrate %d, audio bytes say %.2f", m.Bitrate, got)
			}
		})
	}
}

func TestTags(t *testing.T) {
	cases := []struct{ file, title, artist, album string }{
		{"id3v23_44k.mp3", "Sine Title", "Sine Artist", "Sine Album"},
		{"id3v24_44k.mp3", "V24 Title", "V24 Artist", "V24 Album"},
		{"id3v1_44k.mp3", "V1 Title", "V1 Artist", "V1 Album"},
		{"cbr128_44k_stereo.mp3", "cbr128_44k_stereo", "Unknown artist", ""},
	}
	for _, c := range cases {
		tr, err := OpenFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		m := tr.Manifest
		if m.Title != c.title || m.Artist != c.artist || m.Album != c.album {
			t.Errorf("%s: got %q / %q / %q", c.file, m.Title, m.Artist, m.Album)
		}
		if s := m.Summary(); s.ID != m.ID || s.Title != m.Title || s.DurationMS != m.DurationMS {
			t.Errorf("%s: summary %+v", c.file, s)
		}
		tr.Close()
	}
}

// syncsafeBytes encodes n as a 4-byte ID3v2 syncsafe integer.
func syncsafeBytes(n int) []byte {
	return []byte{byte(n >> 21 & 0x7F), byte(n >> 14 & 0x7F), byte(n >> 7 & 0x7F), byte(n & 0x7F)}
}

// id3v24Tricky is an ID3v2.4 tag with the unsynchronisation flag, an
// extended header and a footer; its frame data contains 0xFF 0xFB (a fake
// frame sync) protected by unsynchronisation.
func id3v24Tricky() []byte {
	ext := append(syncsafeBytes(6), 1, 0) // extended header: size 6, 1 flag byte, no flags
	text := []byte{3, 'U', 'n', 's', 'y', 'n', 'c', 0xFF, 0x00, 0xFB, 0x90}
	frame := append(append([]byte("TIT2"), syncsafeBytes(len(text))...), 0, 0)
	frame = append(frame, text...)
	body := append(ext, frame...)
	body = append(body, make([]byte, 40)...) // padding
	const flags = 0x80 | 0x40 | 0x10         // unsync, extended header, footer
	tag := append([]byte{'I', 'D', '3', 4, 0, flags}, syncsafeBytes(len(body))...)
	tag = append(tag, body...)
	return append(tag, append([]byte{'3', 'D', 'I', 4, 0, flags}, syncsafeBytes(len(body))...)...)
}

// id3v23Plain is a small ID3v2.3 tag.
func id3v23Plain() []byte {
	text := []byte{0, 'T', 'w', 'o'}
	frame := append([]byte("TIT2"), 0, 0, 0, byte(len(text)), 0, 0)
	body := append(frame, text...)
	return append(append([]byte{'I', 'D', '3', 3, 0, 0}, syncsafeBytes(len(body))...), body...)
}

// apeTag builds an APEv2 tag with one item, with or without a header.
func apeTag(withHeader bool) []byte {
	item := []byte{5, 0, 0, 0, 0, 0, 0, 0}
	item = append(item, "Title\x00Hello"...)
	size := len(item) + 32
	hdr := func(isHeader bool) []byte {
		b := make([]byte, 32)
		copy(b, "APETAGEX")
		binary.LittleEndian.PutUint32(b[8:], 2000)
		binary.LittleEndian.PutUint32(b[12:], uint32(size))
		binary.LittleEndian.PutUint32(b[16:], 1)
		var f uint32
		if withHeader {
			f |= 1 << 31
		}
		if isHeader {
			f |= 1 << 29
		}
		binary.LittleEndian.PutUint32(b[20:], f)
		return b
	}
	var out []byte
	if withHeader {
		out = append(out, hdr(true)...)
	}
	return append(append(out, item...), hdr(false)...)
}

func id3v1Tag(enhanced bool) []byte {
	var out []byte
	if enhanced {
		out = append(out, "TAG+"...)
		out = append(out, make([]byte, 223)...)
	}
	v1 := make([]byte, 128)
	copy(v1, "TAGSome title")
	return append(out, v1...)
}

func lyrics3v2() []byte {
	body := "LYRICSBEGININD00002" + "11" + "LYR00005hello"
	return []byte(body + strconv.Itoa(1000000 + len(body))[1:] + "LYRICS200")
}

func appendedID3v24() []byte {
	body := make([]byte, 30)
	copy(body, "TIT2")
	hdr := append([]byte{'I', 'D', '3', 4, 0, 0x10}, syncsafeBytes(len(body))...)
	ftr := append([]byte{'3', 'D', 'I', 4, 0, 0x10}, syncsafeBytes(len(body))...)
	return append(append(hdr, body...), ftr...)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestCraftedVariants wraps one real file in tags and junk: the audio, hence
// the ID, the frame count and the chunk bytes must not change.
func TestCraftedVariants(t *testing.T) {
	base := readFile(t, "testdata/cbr128_44k_stereo.mp3")
	ref, err := Analyze(bytes.NewReader(base), int64(len(base)), "base.mp3")
	if err != nil {
		t.Fatal(err)
	}
	refAll := allChunks(t, ref)
	h, _ := parseHeader(base)
	xingFrame, audio := base[:h.size], base[h.size:]
	// A junk run after frame 10 of the audio (inside the stream).
	var frame10 int
	for i, p := 0, 0; i < 10; i++ {
		fh, _ := parseHeader(audio[p:])
		p += fh.size
		frame10 = p
	}
	rng := rand.New(rand.NewPCG(1, 2))
	junk := make([]byte, 3000)
	for i := range junk {
		junk[i] = byte(rng.IntN(256))
	}
	cases := map[string][]byte{
		"id3v24 unsync+ext+footer": cat(id3v24Tricky(), base),
		"repeated id3v2":           cat(id3v23Plain(), id3v24Tricky(), id3v23Plain(), base),
		"ape+id3v1":                cat(base, apeTag(true), id3v1Tag(false)),
		"ape footer only at eof":   cat(base, apeTag(false)),
		"enhanced TAG+":            cat(base, id3v1Tag(true)),
		"lyrics3v2+id3v1":          cat(base, lyrics3v2(), id3v1Tag(false)),
		"ape+lyrics+id3v1":         cat(base, apeTag(true), lyrics3v2(), id3v1Tag(false)),
		"appended id3v24":          cat(base, appendedID3v24()),
		"leading ape":              cat(apeTag(true), base),
		"junk prefix":              cat(junk, base),
		"zeros prefix":             cat(make([]byte, 5000), base),
		"junk between frames":      cat(xingFrame, audio[:frame10], junk[:700], audio[frame10:]),
		"id3 between frames":       cat(xingFrame, audio[:frame10], id3v23Plain(), audio[frame10:]),
		"trailing junk":            cat(base, []byte("this is not audio, just some trailing text")),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			tr, err := Analyze(bytes.NewReader(data), int64(len(data)), name+".mp3")
			if err != nil {
				t.Fatal(err)
			}
			m := tr.Manifest
			if m.ID != ref.Manifest.ID || m.TotalFrames != ref.Manifest.TotalFrames || m.TotalSamples != ref.Manifest.TotalSamples {
				t.Fatalf("ID %s frames %d samples %d; want %s %d %d", m.ID, m.TotalFrames, m.TotalSamples,
					ref.Manifest.ID, ref.Manifest.TotalFrames, ref.Manifest.TotalSamples)
			}
			if !bytes.Equal(allChunks(t, tr), refAll) {
				t.Fatal("chunk bytes differ from the untagged file's")
			}
		})
	}
}

func TestTruncatedKeepsWholeFrames(t *testing.T) {
	base := readFile(t, "testdata/cbr128_44k_stereo.mp3")
	h, _ := parseHeader(base)
	p := h.size
	for range 50 {
		fh, _ := parseHeader(base[p:])
		p += fh.size
	}
	cut := base[:p+100] // 50 whole audio frames and the start of the 51st
	tr, err := Analyze(bytes.NewReader(cut), int64(len(cut)), "cut.mp3")
	if err != nil {
		t.Fatal(err)
	}
	m := tr.Manifest
	if m.TotalFrames != 50 {
		t.Fatalf("TotalFrames %d, want 50", m.TotalFrames)
	}
	if !bytes.Equal(allChunks(t, tr), base[h.size:p]) {
		t.Fatal("chunks are not the whole frames of the truncated file")
	}
	// LAME's padding is for the last frame of the full file: not applied.
	if m.EncoderPadding != 0 || m.TotalSamples != int64(50*1152-m.EncoderDelay) {
		t.Fatalf("padding %d total %d", m.EncoderPadding, m.TotalSamples)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 1<<20)
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	free := make([]byte, 0, 4000)
	for range 10 { // free-format headers (bitrate index 0)
		free = append(free, 0xFF, 0xFB, 0x00, 0x00)
		free = append(free, make([]byte, 396)...)
	}
	base := readFile(t, "testdata/cbr128_44k_stereo.mp3")
	h, _ := parseHeader(base)
	files := map[string]struct {
		data []byte
		want string
	}{
		"random.mp3":    {random, "no MPEG Layer III audio frames found"},
		"text.mp3":      {[]byte(strings.Repeat("This is a text file, not an MP3.\n", 100)), "no MPEG Layer III audio frames found"},
		"empty.mp3":     {nil, "empty file"},
		"free.mp3":      {free, "free-format"},
		"onlytags.mp3":  {cat(id3v23Plain(), id3v1Tag(false)), "no MPEG audio frames found"},
		"onlyxing.mp3":  {base[:h.size], "no MPEG audio frames found after the Info header"},
		"id3huge.mp3":   {cat([]byte{'I', 'D', '3', 3, 0, 0, 0x7F, 0x7F, 0x7F, 0x7F}, base), "no MPEG audio frames found"},
		"headonly.mp3":  {base[:3], "no MPEG"},
		"shortxing.mp3": {base[:h.size-1], "no MPEG"},
	}
	for name, f := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
		tr, err := OpenFile(path)
		if err == nil {
			tr.Close()
			t.Errorf("%s: no error", name)
			continue
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), f.want) {
			t.Errorf("%s: error %q does not name the file and say %q", name, err, f.want)
		}
	}
	if _, err := OpenFile(filepath.Join(dir, "missing.mp3")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := OpenFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

// TestHugeZeroFile checks that a sparse 3 GB file of zeros is rejected after
// a bounded search (it would take minutes and gigabytes if read whole).
func TestHugeZeroFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zeros.mp3")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Truncate(path, 3<<30); err != nil {
		t.Skipf("cannot create a sparse file: %v", err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = OpenFile(path)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "no MPEG Layer III audio frames found") {
		t.Fatalf("got %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Fatalf("allocated %d bytes analyzing a file of zeros", alloc)
	}
}

func TestChunkRangeAndClose(t *testing.T) {
	tr, err := OpenFile("testdata/mono_44k.mp3")
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int{-1, len(tr.Manifest.Chunks)} {
		if _, err := tr.Chunk(seq); !errors.Is(err, ErrChunkRange) {
			t.Errorf("Chunk(%d): %v", seq, err)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := tr.Chunk(0); err == nil {
		t.Fatal("Chunk after Close succeeded")
	}
}

// TestChunkDetectsChangedFile: Chunk verifies bytes against the manifest.
func TestChunkDetectsChangedFile(t *testing.T) {
	data := readFile(t, "testdata/mono_44k.mp3")
	tr, err := Analyze(bytes.NewReader(data), int64(len(data)), "mono.mp3")
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x55
	bad := 0
	for i := range tr.Manifest.Chunks {
		if _, err := tr.Chunk(i); err != nil {
			bad++
		}
	}
	if bad != 1 {
		t.Fatalf("%d chunks failed after changing one byte, want 1", bad)
	}
}

func TestParseHeaderTables(t *testing.T) {
	cases := []struct {
		hdr        [4]byte
		size, rate int
		err        error
	}{
		{[4]byte{0xFF, 0xFB, 0x90, 0x00}, 417, 44100, nil}, // MPEG-1 128k 44.1
		{[4]byte{0xFF, 0xFB, 0x92, 0x00}, 418, 44100, nil}, // padded
		{[4]byte{0xFF, 0xFB, 0xE4, 0x00}, 960, 48000, nil}, // 320k 48k
		{[4]byte{0xFF, 0xF3, 0x80, 0x00}, 208, 22050, nil}, // MPEG-2 64k 22.05
		{[4]byte{0xFF, 0xE3, 0x28, 0xC0}, 144, 8000, nil},  // MPEG-2.5 16k 8k mono
		{[4]byte{0xFF, 0xFA, 0x90, 0x00}, 417, 44100, nil}, // CRC-protected
		{[4]byte{0xFF, 0xFB, 0x00, 0x00}, 0, 0, errFreeFormat},
		{[4]byte{0xFF, 0xFB, 0xF0, 0x00}, 0, 0, errBadBitrate},
		{[4]byte{0xFF, 0xFB, 0x9C, 0x00}, 0, 0, errBadRate},
		{[4]byte{0xFF, 0xEB, 0x90, 0x00}, 0, 0, errBadVersion},
		{[4]byte{0xFF, 0xFD, 0x90, 0x00}, 0, 0, errNotLayer3}, // Layer II
		{[4]byte{0xFF, 0xFB, 0x90, 0x02}, 0, 0, errBadEmphasis},
		{[4]byte{0xFE, 0xFB, 0x90, 0x00}, 0, 0, errNoSync},
	}
	for _, c := range cases {
		h, err := parseHeader(c.hdr[:])
		if err != c.err || (err == nil && (h.size != c.size || h.sampleRate != c.rate)) {
			t.Errorf("% x: size %d rate %d err %v; want %d %d %v", c.hdr, h.size, h.sampleRate, err, c.size, c.rate, c.err)
		}
	}
	h, _ := parseHeader([]byte{0xFF, 0xFA, 0x90, 0x00})
	frame := []byte{0xFF, 0xFA, 0x90, 0x00, 0xAB, 0xCD, 0x80, 0xC0}
	if mdb, _ := h.mainDataBegin(frame); mdb != 0x101 { // read after the CRC
		t.Errorf("protected MPEG-1 main_data_begin %#x", mdb)
	}
	h2, _ := parseHeader([]byte{0xFF, 0xF3, 0x80, 0x00})
	if mdb, _ := h2.mainDataBegin([]byte{0xFF, 0xF3, 0x80, 0x00, 0x81, 0xFF}); mdb != 0x81 {
		t.Errorf("MPEG-2 main_data_begin %#x", mdb)
	}
}

func BenchmarkAnalyze(b *testing.B) {
	data := readFile(b, "testdata/vbr_v2_44k.mp3")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Analyze(bytes.NewReader(data), int64(len(data)), "bench.mp3"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVBRIAndGarbageLAME: a VBRI frame is recognised and not counted; a
// LAME tag claiming more trimmed samples than the file has is ignored.
func TestVBRIAndGarbageLAME(t *testing.T) {
	base := readFile(t, "testdata/cbr128_44k_stereo.mp3")
	h, _ := parseHeader(base)
	ref, err := Analyze(bytes.NewReader(base), int64(len(base)), "base.mp3")
	if err != nil {
		t.Fatal(err)
	}

	vbri := bytes.Clone(base)
	clear(vbri[4:h.size])
	copy(vbri[36:], "VBRI")
	binary.BigEndian.PutUint32(vbri[36+14:], uint32(ref.Manifest.TotalFrames))
	tr, err := Analyze(bytes.NewReader(vbri), int64(len(vbri)), "vbri.mp3")
	if err != nil {
		t.Fatal(err)
	}
	m := tr.Manifest
	if m.ID != ref.Manifest.ID || m.TotalFrames != ref.Manifest.TotalFrames || m.EncoderDelay != 0 || m.TotalSamples != int64(m.TotalFrames*1152) {
		t.Fatalf("VBRI: id %s frames %d delay %d total %d", m.ID, m.TotalFrames, m.EncoderDelay, m.TotalSamples)
	}

	garbage := bytes.Clone(base)
	p := bytes.Index(garbage[:h.size], []byte("LAME"))
	if p < 0 {
		t.Fatal("no LAME tag in fixture")
	}
	copy(garbage[p+21:], []byte{0xFF, 0xFF, 0xFF}) // delay 4095, padding 4095
	// Cut to 3 audio frames: 3*1152 < 4095+4095.
	q := h.size
	for range 3 {
		fh, _ := parseHeader(garbage[q:])
		q += fh.size
	}
	garbage = garbage[:q]
	binary.BigEndian.PutUint32(garbage[bytes.Index(garbage, []byte("Info"))+8:], 3) // frame count matches
	tr, err = Analyze(bytes.NewReader(garbage), int64(len(garbage)), "garbage.mp3")
	if err != nil {
		t.Fatal(err)
	}
	if m := tr.Manifest; m.TotalFrames != 3 || m.EncoderDelay != 0 || m.EncoderPadding != 0 || m.TotalSamples != 3*1152 {
		t.Fatalf("garbage LAME: frames %d delay %d padding %d total %d", m.TotalFrames, m.EncoderDelay, m.EncoderPadding, m.TotalSamples)
	}
}

// frameRepeater is an io.ReaderAt of a given size made of one frame repeated,
// so that huge valid streams cost no memory.
type frameRepeater struct{ frame []byte }

func (f frameRepeater) ReadAt(p []byte, off int64) (int, error) {
	for n := 0; n < len(p); {
		n += copy(p[n:], f.frame[(off+int64(n))%int64(len(f.frame)):])
	}
	return len(p), nil
}

// TestTooLong: a stream of more than maxChunks chunks is refused instead of
// growing the manifest without bound.
func TestTooLong(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes 2×132 MB")
	}
	frame := make([]byte, 72) // MPEG-2.5, 8 kbit/s, 8 kHz, mono: 72 bytes
	copy(frame, []byte{0xFF, 0xE3, 0x18, 0xC4})
	h, err := parseHeader(frame)
	if err != nil || h.size != len(frame) {
		t.Fatalf("test frame: %v, size %d", err, h.size)
	}
	fpc := wantFPC[8000]
	ok := int64(maxChunks*fpc) * 72
	tr, err := Analyze(frameRepeater{frame}, ok, "longest.mp3")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tr.Manifest.Chunks); n != maxChunks {
		t.Fatalf("%d chunks", n)
	}
	_, err = Analyze(frameRepeater{frame}, ok+72, "toolong.mp3")
	if err == nil || !strings.Contains(err.Error(), "toolong.mp3: more than") {
		t.Fatalf("got %v", err)
	}
}

// TestConcurrentChunks reads chunks from several goroutines (run with -race).
func TestConcurrentChunks(t *testing.T) {
	tr, err := OpenFile("testdata/vbr_v2_44k.mp3")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for i := range tr.Manifest.Chunks {
				if _, err := tr.Chunk(i); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
