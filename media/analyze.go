// Package media turns an MP3 file into a Ztream track: it parses MPEG
// audio frames (MPEG-1/2/2.5 Layer III) with its own small parser, skips
// ID3v2/ID3v1/APE/Lyrics3v2 tags and the Xing/Info/VBRI frame, and cuts the
// audio frames into chunks of a fixed number of frames (about one second)
// described by a Manifest.
//
// Chunk bytes are the file's frames copied verbatim, never a partial frame.
// Bytes between frames that are not frames (junk, a stray tag) are left out
// of the chunks, so a chunk is the concatenation of its frames; for a
// well-formed file that is one contiguous slice of the file, and all chunks
// together are exactly the file bytes from the first audio frame to the end
// of the last one. Times in the manifest count frames (seq·F·S/sr), not
// trimmed samples; only DurationMS and TotalSamples subtract the encoder
// delay and padding.
//
// Synchronisation: the first frame (searched in the first 4 MiB after the
// leading tags) counts only when the next three headers follow it with the
// same version, layer and sample rate, or the audio ends first. Each later
// frame is the one the previous frame's size points to; when no consistent
// header is there, a stray ID3v2 tag is skipped and at most 64 KiB are
// searched for a confirmed frame, else the rest is trailing junk. A frame
// cut by the end of the file is dropped.
//
// Chunking: F = round(sampleRate/samplesPerFrame) frames per chunk (38 at
// 44.1 kHz MPEG-1, 42 at 48 kHz, 14 at 8 kHz MPEG-2.5), lowered if the largest
// possible frame times F would exceed MaxChunkSize (it never does for the
// standard Layer III bitrates).
//
// Analysis streams through the input with a fixed-size buffer and bounded
// searches, so it never holds a whole file in memory.
package media

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// MaxChunkSize is the largest chunk Analyze produces, in bytes.
const MaxChunkSize = 64 << 10

// Search limits. They keep Analyze fast and bounded on garbage input.
const (
	// maxSyncSearch is how far past the leading tags the first frame is searched.
	maxSyncSearch = 4 << 20
	// maxJunk is how many non-frame bytes are skipped between two frames
	// before the rest of the file is treated as trailing junk.
	maxJunk = 64 << 10
	// confirmDepth is how many following headers must be consistent (or the
	// end of the audio reached) to accept a frame found by searching.
	confirmDepth = 3
	// maxChunks bounds the manifest: 2^17 chunks of about one second is
	// over 36 hours of audio.
	maxChunks = 1 << 17
	// maxSpans bounds the byte runs kept to read chunks back: one per chunk
	// plus one per junk gap skipped inside the stream.
	maxSpans = 4 * maxChunks
)

// ErrChunkRange is returned (wrapped) by Track.Chunk for a seq outside the manifest.
var ErrChunkRange = errors.New("chunk out of range")

// span is a run of bytes of the input.
type span struct {
	off int64
	n   int64
}

// Track is an analyzed MP3 file: its manifest and the means to read each
// chunk's bytes back from the input. Its methods are safe for concurrent use
// when the underlying io.ReaderAt is (an *os.File is).
type Track struct {
	// Manifest describes the track and its chunks.
	Manifest *Manifest
	// Cover is the file's cover art, nil without; Manifest.Cover describes
	// it.
	Cover *Cover
	// Warnings name what was skipped in the tags (an oversized or unknown
	// picture, unreadable tags): the track is fine without it.
	Warnings []string

	name      string
	r         io.ReaderAt
	closer    io.Closer
	spans     []span
	chunkSpan []int // chunk i is spans[chunkSpan[i]:chunkSpan[i+1]]
	closeOnce sync.Once
	closeErr  error
}

// OpenFile opens and analyzes the MP3 file at path. The returned Track keeps
// the file open to serve Chunk; call Close when done.
func OpenFile(path string) (*Track, error) { return OpenFileAs(path, path) }

// OpenFileAs is OpenFile for a file that stands for another one, name (an
// MP3 transcoded from it, in a temporary file): name is Analyze's, in errors
// and as the title of a file without one.
func OpenFileAs(path, name string) (*Track, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open track: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: stat: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	t, err := Analyze(f, fi.Size(), name)
	if err != nil {
		f.Close()
		return nil, err
	}
	t.closer = f
	return t, nil
}

// Analyze parses the MP3 of size bytes readable from r and returns its
// track. name is the file name: it appears in errors and, without directory
// and extension, is the title when the file has no title tag. r must stay
// readable until the Track is no longer used; Track.Close does not close it.
//
// Title, artist and album come from the ID3v2 tag, else the ID3v1 tag; an
// absent title becomes the file name, an absent artist "Unknown artist".
// DurationMS is TotalSamples in milliseconds, rounded to nearest; Bitrate is
// the audio bytes over the frames' duration (untrimmed), in kbit/s, rounded.
func Analyze(r io.ReaderAt, size int64, name string) (*Track, error) {
	if name == "" {
		name = "input"
	}
	if size == 0 {
		return nil, fmt.Errorf("%s: empty file", name)
	}
	if size < 0 {
		return nil, fmt.Errorf("%s: negative size %d", name, size)
	}
	w := newWindow(r, size)
	a := analyzer{w: w, name: name}
	t, err := a.run()
	if err != nil {
		return nil, err
	}
	t.r = r
	md := readMetadata(r, size, a.audioStart)
	m := t.Manifest
	m.Title, m.Artist, m.Album, m.AlbumArtist = md.title, md.artist, md.album, md.albumArtist
	m.Year, m.TrackNo, m.DiscNo = md.year, md.track, md.disc
	t.Warnings = md.warnings
	if md.cover != nil {
		sum := sha256.Sum256(md.cover.Data)
		t.Cover = md.cover
		m.Cover = &CoverRef{SHA256: hex.EncodeToString(sum[:]), MIME: md.cover.MIME, Size: len(md.cover.Data)}
	}
	if m.Title == "" {
		base := filepath.Base(name)
		m.Title = strings.TrimSuffix(base, filepath.Ext(base))
	}
	if m.Artist == "" {
		m.Artist = "Unknown artist"
	}
	return t, nil
}

// analyzer holds the state of one pass over the input.
type analyzer struct {
	w          *window
	name       string
	audioStart int64 // after the leading tags
	audioEnd   int64 // before the trailing tags

	first   frameHeader // first frame (possibly the Xing frame)
	vbr     vbrHeader
	hasVBR  bool
	fpc     int // frames per chunk
	m       *Manifest
	t       *Track
	all     hash.Hash // every chunk byte, for the ID
	cur     hash.Hash // current chunk
	curInfo ChunkInfo
}

// headerAt decodes and returns the frame header at off, if any.
func (a *analyzer) headerAt(off int64) (frameHeader, error) {
	b, err := a.w.at(off, headerSize)
	if err != nil {
		return frameHeader{}, err
	}
	return parseHeader(b)
}

// confirmed reports whether the frame h at off is followed by depth
// consistent headers, or reaches the end of the audio (a cut last frame
// counts as reaching the end).
func (a *analyzer) confirmed(off int64, h frameHeader, depth int) bool {
	for range depth {
		next := off + int64(h.size)
		if next > a.audioEnd {
			return false
		}
		if a.audioEnd-next < headerSize {
			return true
		}
		h2, err := a.headerAt(next)
		if err != nil || !h.consistent(h2) {
			return false
		}
		off, h = next, h2
	}
	return true
}

// find searches [from, from+limit) for a frame that fits in the audio,
// matches ref (when not nil) and is confirmed by the following headers.
func (a *analyzer) find(from, limit int64, ref *frameHeader) (int64, frameHeader, bool, error) {
	stop := min(from+limit, a.audioEnd-headerSize+1)
	for off := from; off < stop; {
		buf, err := a.w.avail(off)
		if err != nil {
			return 0, frameHeader{}, false, err
		}
		i := bytes.IndexByte(buf, 0xFF)
		if i < 0 {
			off += int64(len(buf))
			continue
		}
		off += int64(i)
		if off >= stop {
			break
		}
		h, err := a.headerAt(off)
		if err == nil && (ref == nil || ref.consistent(h)) && off+int64(h.size) <= a.audioEnd &&
			a.confirmed(off, h, confirmDepth) {
			return off, h, true, nil
		}
		if err != nil && !errors.Is(err, errPastEnd) && !isHeaderErr(err) {
			return 0, frameHeader{}, false, err
		}
		off++
	}
	return 0, frameHeader{}, false, nil
}

func isHeaderErr(err error) bool {
	for _, e := range []error{errNoSync, errNotLayer3, errBadVersion, errFreeFormat, errBadBitrate, errBadRate, errBadEmphasis, errShortHeader, errShortSideInf} {
		if err == e {
			return true
		}
	}
	return false
}

func (a *analyzer) fail(format string, args ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{a.name}, args...)...)
}

// run finds the frames, builds the chunks and the manifest.
func (a *analyzer) run() (*Track, error) {
	w := a.w
	a.audioStart = skipLeadingTags(w, 0)
	a.audioEnd = trimTrailingTags(w, a.audioStart, w.size)
	if a.audioEnd-a.audioStart < headerSize {
		return nil, a.fail("no MPEG audio frames found (only tags)")
	}
	off, h, ok, err := a.find(a.audioStart, maxSyncSearch, nil)
	if err != nil {
		return nil, a.fail("%w", err)
	}
	if !ok {
		if _, herr := a.headerAt(a.audioStart); errors.Is(herr, errFreeFormat) {
			return nil, a.fail("free-format MPEG audio (bitrate index 0) is not supported")
		}
		return nil, a.fail("no MPEG Layer III audio frames found in the first %d bytes after the tags", min(a.audioEnd-a.audioStart, maxSyncSearch))
	}
	a.first = h
	spf := h.samplesPerFrame()
	a.fpc = max(1, min(int(math.Round(float64(h.sampleRate)/float64(spf))), MaxChunkSize/maxFrameSize(h.version, h.sampleRate)))
	a.m = &Manifest{
		SampleRate:      h.sampleRate,
		Channels:        h.channels(),
		MIME:            MIMEType,
		MPEGVersion:     h.versionString(),
		SamplesPerFrame: spf,
		FramesPerChunk:  a.fpc,
	}
	a.t = &Track{Manifest: a.m, name: a.name}
	a.all = sha256.New()
	a.cur = sha256.New()

	firstFrame := true
	for off+int64(h.size) <= a.audioEnd { // a cut last frame is dropped
		frame, err := w.at(off, h.size)
		if err != nil {
			return nil, a.fail("%w", err)
		}
		isVBR := false
		if firstFrame {
			firstFrame = false
			a.vbr, a.hasVBR = parseVBRHeader(h, frame)
			isVBR = a.hasVBR
		}
		if !isVBR {
			if err := a.addFrame(off, h, frame); err != nil {
				return nil, err
			}
		}
		next := off + int64(h.size)
		if a.audioEnd-next < headerSize {
			break
		}
		if h2, err := a.headerAt(next); err == nil && a.first.consistent(h2) {
			off, h = next, h2
			continue
		}
		// Not a frame: skip a stray ID3v2 tag, then junk, conservatively.
		from := next
		if b, err := w.at(next, 10); err == nil {
			if n, ok := id3v2Size(b); ok {
				from = min(next+n, a.audioEnd)
			}
		}
		off2, h2, ok, err := a.find(from, maxJunk, &a.first)
		if err != nil {
			return nil, a.fail("%w", err)
		}
		if !ok {
			break // trailing junk
		}
		off, h = off2, h2
	}
	a.flush()
	if a.m.TotalFrames == 0 {
		return nil, a.fail("no MPEG audio frames found after the %s header", a.vbr.kind)
	}
	a.finish()
	return a.t, nil
}

// addFrame appends the audio frame at off to the current chunk, starting a
// new chunk when the current one is full.
func (a *analyzer) addFrame(off int64, h frameHeader, frame []byte) error {
	if a.curInfo.Frames == a.fpc {
		a.flush()
	}
	t := a.t
	if len(a.m.Chunks) >= maxChunks {
		return a.fail("more than %d chunks (over 36 hours of audio) are not supported", maxChunks)
	}
	if len(t.spans) >= maxSpans {
		return a.fail("too many junk runs between frames (over %d)", maxSpans-maxChunks)
	}
	if a.curInfo.Frames == 0 {
		mdb, err := h.mainDataBegin(frame)
		if err != nil {
			return a.fail("frame at offset %d: %w", off, err)
		}
		a.curInfo = ChunkInfo{Seq: len(a.m.Chunks), Reservoir: mdb > 0}
		t.chunkSpan = append(t.chunkSpan, len(t.spans))
		t.spans = append(t.spans, span{off: off})
	} else if last := &t.spans[len(t.spans)-1]; last.off+last.n != off {
		t.spans = append(t.spans, span{off: off}) // junk was skipped
	}
	t.spans[len(t.spans)-1].n += int64(len(frame))
	a.cur.Write(frame)
	a.all.Write(frame)
	a.curInfo.Frames++
	a.curInfo.Size += len(frame)
	a.m.TotalFrames++
	a.m.Size += int64(len(frame))
	return nil
}

// flush closes the current chunk, if it has frames.
func (a *analyzer) flush() {
	c := a.curInfo
	if c.Frames == 0 {
		return
	}
	spf, sr := float64(a.m.SamplesPerFrame), float64(a.m.SampleRate)
	c.StartMS = float64(c.Seq*a.fpc) * spf / sr * 1000
	c.DurationMS = float64(c.Frames) * spf / sr * 1000
	c.SHA256 = hex.EncodeToString(a.cur.Sum(nil))
	a.cur.Reset()
	a.m.Chunks = append(a.m.Chunks, c)
	a.curInfo = ChunkInfo{}
}

// finish fills the manifest's totals once every chunk is flushed.
func (a *analyzer) finish() {
	m, t := a.m, a.t
	t.chunkSpan = append(t.chunkSpan, len(t.spans))
	m.ID = hex.EncodeToString(a.all.Sum(nil)[:16])
	frameSamples := int64(m.TotalFrames) * int64(m.SamplesPerFrame)
	if a.hasVBR && a.vbr.lame {
		m.EncoderDelay = a.vbr.delay
		m.EncoderPadding = a.vbr.padding
		// The padding belongs to the last frame the encoder wrote: when
		// frames are missing (a truncated file), it no longer applies.
		if a.vbr.frames >= 0 && a.vbr.frames != m.TotalFrames {
			m.EncoderPadding = 0
		}
		// An encoder always writes more samples than it trims; values that
		// say otherwise are garbage and are ignored.
		if int64(m.EncoderDelay+m.EncoderPadding) >= frameSamples {
			m.EncoderDelay, m.EncoderPadding = 0, 0
		}
	}
	m.TotalSamples = max(0, frameSamples-int64(m.EncoderDelay)-int64(m.EncoderPadding))
	sr := int64(m.SampleRate)
	m.DurationMS = (m.TotalSamples*1000 + sr/2) / sr
	// Average bitrate over the frames' own duration (not the trimmed one).
	m.Bitrate = int(math.Round(float64(m.Size) * 8 / (float64(frameSamples) / float64(sr)) / 1000))
}

// Chunk returns the bytes of chunk seq, read from the input and checked
// against the manifest's size and SHA-256. Its signature matches
// store.ChunkSource.
func (t *Track) Chunk(seq int) ([]byte, error) {
	if seq < 0 || seq >= len(t.Manifest.Chunks) || seq+1 >= len(t.chunkSpan) {
		return nil, fmt.Errorf("%s: chunk %d of %d: %w", t.name, seq, len(t.Manifest.Chunks), ErrChunkRange)
	}
	info := t.Manifest.Chunks[seq]
	buf := make([]byte, 0, info.Size)
	for _, s := range t.spans[t.chunkSpan[seq]:t.chunkSpan[seq+1]] {
		n := len(buf)
		if int64(n)+s.n > int64(info.Size) {
			return nil, fmt.Errorf("%s: chunk %d: spans exceed the chunk size", t.name, seq)
		}
		buf = buf[:n+int(s.n)]
		if got, err := t.r.ReadAt(buf[n:], s.off); got < int(s.n) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("%s: chunk %d: read at offset %d: %w", t.name, seq, s.off, err)
		}
	}
	sum := sha256.Sum256(buf)
	if len(buf) != info.Size || hex.EncodeToString(sum[:]) != info.SHA256 {
		return nil, fmt.Errorf("%s: chunk %d: bytes changed since the file was analyzed", t.name, seq)
	}
	return buf, nil
}

// Close releases the file opened by OpenFile; for a Track made by Analyze it
// does nothing. It is safe to call more than once.
func (t *Track) Close() error {
	t.closeOnce.Do(func() {
		if t.closer != nil {
			if err := t.closer.Close(); err != nil {
				t.closeErr = fmt.Errorf("%s: close: %w", t.name, err)
			}
		}
	})
	return t.closeErr
}
