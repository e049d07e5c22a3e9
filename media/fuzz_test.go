package media

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// FuzzFrameParser feeds arbitrary bytes to the frame header parser, the
// Xing/LAME parser and the whole analyzer. Nothing may panic, and any track
// Analyze accepts must be self-consistent.
// Seeds: testdata/fuzz/FuzzFrameParser (run with go test -fuzz FuzzFrameParser).
func FuzzFrameParser(f *testing.F) {
	f.Add([]byte{0xFF, 0xFB, 0x90, 0x64})
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := parseHeader(data); err == nil {
			if h.size < headerSize+h.crcSize()+h.sideInfoSize() || h.size > maxFrameSize(h.version, h.sampleRate) {
				t.Fatalf("frame size %d out of range", h.size)
			}
			if mdb, err := h.mainDataBegin(data); err == nil && (mdb < 0 || mdb > 511) {
				t.Fatalf("main_data_begin %d", mdb)
			}
			if v, ok := parseVBRHeader(h, data); ok && (v.delay < 0 || v.delay > 4095 || v.padding < 0 || v.padding > 4095) {
				t.Fatalf("delay %d padding %d", v.delay, v.padding)
			}
		}
		tr, err := Analyze(bytes.NewReader(data), int64(len(data)), "fuzz.mp3")
		if err != nil {
			return
		}
		m := tr.Manifest
		if m.TotalFrames < 1 || m.TotalSamples < 0 || m.Size > int64(len(data)) || len(m.ID) != 32 {
			t.Fatalf("bad manifest %+v", m)
		}
		var total int64
		frames := 0
		for i, c := range m.Chunks {
			b, err := tr.Chunk(i)
			if err != nil {
				t.Fatalf("chunk %d: %v", i, err)
			}
			sum := sha256.Sum256(b)
			if len(b) != c.Size || len(b) > MaxChunkSize || hex.EncodeToString(sum[:]) != c.SHA256 || c.Frames > m.FramesPerChunk {
				t.Fatalf("chunk %d inconsistent", i)
			}
			total += int64(len(b))
			frames += c.Frames
		}
		if total != m.Size || frames != m.TotalFrames {
			t.Fatalf("chunks hold %d bytes %d frames; manifest %d %d", total, frames, m.Size, m.TotalFrames)
		}
	})
}

// FuzzTagSkipper feeds arbitrary bytes to the tag skipping code and the tag
// reader: the audio region must stay inside the input and nothing may panic.
// Seeds: testdata/fuzz/FuzzTagSkipper (run with go test -fuzz FuzzTagSkipper).
func FuzzTagSkipper(f *testing.F) {
	f.Add(cat(id3v24Tricky(), []byte{0xFF, 0xFB}, apeTag(true), lyrics3v2(), id3v1Tag(true)))
	f.Fuzz(func(t *testing.T, data []byte) {
		w := newWindow(bytes.NewReader(data), int64(len(data)))
		start := skipLeadingTags(w, 0)
		end := trimTrailingTags(w, start, int64(len(data)))
		if start < 0 || start > int64(len(data)) || end < start || end > int64(len(data)) {
			t.Fatalf("region [%d,%d) of %d bytes", start, end, len(data))
		}
		md := readMetadata(bytes.NewReader(data), int64(len(data)), start)
		for _, s := range []string{md.title, md.artist, md.album} {
			if len(s) > maxTagValue {
				t.Fatalf("tag value of %d bytes", len(s))
			}
		}
	})
}
