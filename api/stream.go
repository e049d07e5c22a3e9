package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/store"
)

// stream serves GET /api/tracks/{id}/stream: the track's MP3 as one
// progressive response (its chunks in order), with Range requests, for
// players that cannot take the chunks through Media Source (a plain
// <audio src>). Every byte sent counts as a server byte.
func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	m, ok := a.trackManifest(w, r)
	if !ok {
		return
	}
	rs := newTrackReader(r.Context(), a.cfg.Store, m)
	defer rs.Close()
	w.Header().Set("Content-Type", media.MIMEType)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	cw := &countingWriter{ResponseWriter: w}
	// No Last-Modified: the bytes of a track id never change.
	http.ServeContent(cw, r, "", time.Time{}, rs)
	if rs.err != nil && r.Context().Err() == nil {
		a.cfg.Logger.Warn("stream: store read failed", "track", m.ID, "err", rs.err)
	}
	if a.cfg.OnChunkServed != nil && cw.n > 0 {
		a.cfg.OnChunkServed(int(cw.n))
	}
}

// countingWriter counts the body bytes written.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// trackReader is an io.ReadSeeker over a stored track's bytes (its chunks
// concatenated): Seek only moves the offset; Read opens a store iterator
// at the chunk holding it and streams from there.
type trackReader struct {
	ctx   context.Context
	st    store.Store
	m     *media.Manifest
	ends  []int64 // ends[i]: the offset just after chunk i
	size  int64
	off   int64
	it    store.ChunkIterator
	itOff int64  // the offset of buf[0] while it is open
	buf   []byte // the rest of the current chunk
	err   error
}

func newTrackReader(ctx context.Context, st store.Store, m *media.Manifest) *trackReader {
	t := &trackReader{ctx: ctx, st: st, m: m, ends: make([]int64, len(m.Chunks))}
	for i, c := range m.Chunks {
		t.size += int64(c.Size)
		t.ends[i] = t.size
	}
	return t
}

func (t *trackReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += t.off
	case io.SeekEnd:
		offset += t.size
	default:
		return 0, errors.New("stream: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("stream: negative offset")
	}
	if offset != t.off {
		t.closeIter()
		t.off = offset
	}
	return offset, nil
}

func (t *trackReader) Read(p []byte) (int, error) {
	if t.off >= t.size {
		return 0, io.EOF
	}
	if len(t.buf) == 0 {
		if err := t.fill(); err != nil {
			t.err = err
			return 0, err
		}
	}
	n := copy(p, t.buf)
	t.buf = t.buf[n:]
	t.off += int64(n)
	return n, nil
}

// fill loads the chunk holding t.off into buf, from the open iterator when
// it is there, else from a new one.
func (t *trackReader) fill() error {
	c := sort.Search(len(t.ends), func(i int) bool { return t.ends[i] > t.off })
	start := t.ends[c] - int64(t.m.Chunks[c].Size)
	if t.it == nil || t.itOff != start {
		t.closeIter()
		it, err := t.st.ReadChunks(t.ctx, t.m.ID, c, len(t.m.Chunks))
		if err != nil {
			return fmt.Errorf("stream: read chunks from %d: %w", c, err)
		}
		t.it, t.itOff = it, start
	}
	if !t.it.Next() {
		err := t.it.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("stream: chunk %d: %w", c, err)
	}
	data := t.it.Chunk().Data
	if len(data) != t.m.Chunks[c].Size {
		return fmt.Errorf("stream: chunk %d: %d bytes, manifest says %d", c, len(data), t.m.Chunks[c].Size)
	}
	t.buf = data[t.off-start:]
	t.itOff = t.ends[c] // the next chunk's start
	return nil
}

func (t *trackReader) closeIter() {
	if t.it != nil {
		_ = t.it.Close()
		t.it = nil
	}
	t.buf = nil
}

// Close releases the store iterator.
func (t *trackReader) Close() { t.closeIter() }
