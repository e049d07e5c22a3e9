package origin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/store"
)

// version is what an origin says of a file's version in its answer.
type version struct {
	etag, lastModified string
	size               int64 // -1 when unknown
}

// versionOf reads the version headers of resp; size is the whole file's
// (Content-Range's total for a 206).
func versionOf(resp *http.Response) version {
	v := version{etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified"), size: -1}
	if resp.StatusCode == http.StatusPartialContent {
		cr := resp.Header.Get("Content-Range") // bytes a-b/total
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if n, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil && n >= 0 {
				v.size = n
			}
		}
	} else if resp.ContentLength >= 0 {
		v.size = resp.ContentLength
	}
	return v
}

// readTags catalogues it: a Range request for the head of the file (a
// longer one when the tags do not fit), its version, its tags and cover.
func (o *Origin) readTags(ctx context.Context, it Item) (*entry, error) {
	var (
		head []byte
		v    version
		tags media.Tags
		ok   bool
	)
	for n := int64(tagsHead); ; {
		var err error
		head, v, err = o.readHead(ctx, it, n)
		if err != nil {
			return nil, err
		}
		tags, ok = media.ReadTags(bytes.NewReader(head), int64(len(head)))
		if ok || int64(len(head)) < n || n >= tagsHeadMax || v.size >= 0 && int64(len(head)) >= v.size {
			break // read, or the whole file was read, or the bound
		}
		need := tagsNeed(head)
		if need <= int64(len(head)) {
			break // no tags, or none whose end lies further (an untagged file, WAV, M4A)
		}
		n = min(max(need, 4*n), tagsHeadMax)
	}
	if v.size > o.cfg.MaxTrackBytes {
		return nil, fmt.Errorf("%w: %d bytes, the bound is %d", ErrTooLarge, v.size, o.cfg.MaxTrackBytes)
	}
	e := &entry{item: it, id: o.idOf(it, v), etag: v.etag, lastModified: v.lastModified, size: v.size}
	s := media.Summary{ID: e.id, Title: tags.Title, Artist: tags.Artist, Album: tags.Album, AlbumArtist: tags.AlbumArtist,
		Year: tags.Year, TrackNo: tags.TrackNo, DiscNo: tags.DiscNo}
	if d, ok := media.EstimateDuration(head, v.size); ok && v.size > 0 {
		s.DurationMS = d.Milliseconds()
	} else if it.Seconds > 0 {
		s.DurationMS = int64(it.Seconds) * 1000
	}
	if s.Title == "" {
		s.Title = it.Title
	}
	if s.Title == "" {
		base := path.Base(it.URL.Path)
		s.Title = strings.TrimSuffix(base, path.Ext(base))
	}
	if s.Artist == "" {
		s.Artist = it.Artist
	}
	if s.Artist == "" {
		s.Artist = "Unknown artist"
	}
	if c := tags.Cover; c != nil {
		sum := sha256.Sum256(c.Data)
		s.Cover = hex.EncodeToString(sum[:])
		o.covers.put(s.Cover, c.MIME, c.Data)
	}
	e.summary = s
	return e, nil
}

// tagsNeed returns how many bytes from the start hold a file's tags, as far
// as its head tells: an ID3v2 tag's declared size, a FLAC's metadata blocks
// (at least up to the one the head cuts), an Ogg stream's first pages (the
// comments may span several: twice the head). 0 when the head says none
// lie further.
func tagsNeed(head []byte) int64 {
	switch {
	case len(head) >= 10 && string(head[:3]) == "ID3":
		size := int64(head[6]&0x7f)<<21 | int64(head[7]&0x7f)<<14 | int64(head[8]&0x7f)<<7 | int64(head[9]&0x7f)
		if head[5]&0x10 != 0 {
			size += 10 // a footer
		}
		return 10 + size
	case len(head) >= 4 && string(head[:4]) == "fLaC":
		off := int64(4)
		for off+4 <= int64(len(head)) {
			b := head[off : off+4]
			end := off + 4 + (int64(b[1])<<16 | int64(b[2])<<8 | int64(b[3]))
			if b[0]&0x80 != 0 || end > int64(len(head)) {
				return end // the last block, or one cut by the head
			}
			off = end
		}
		return off + 4
	case len(head) >= 4 && string(head[:4]) == "OggS":
		return 2 * int64(len(head))
	}
	return 0
}

// readHead fetches the first n bytes of a file (all of it when the origin
// ignores Range), within tagsTimeout.
func (o *Origin) readHead(ctx context.Context, it Item, n int64) ([]byte, version, error) {
	ctx, cancel := context.WithTimeout(ctx, tagsTimeout)
	defer cancel()
	start := time.Now()
	req, err := newRequest(ctx, it.URL.String())
	if err != nil {
		return nil, version{}, err
	}
	req.Header.Set("Range", "bytes=0-"+strconv.FormatInt(n-1, 10))
	resp, err := o.client.Do(req)
	if err != nil {
		err = timeoutErr(requestErr(err), time.Since(start))
		o.metricError(err)
		return nil, version{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		err := statusError(resp)
		o.metricError(err)
		return nil, version{}, err
	}
	if ct := resp.Header.Get("Content-Type"); !audioType(ct) {
		err := fmt.Errorf("%w: the origin says %s", ErrContentType, ct)
		o.metricError(err)
		return nil, version{}, err
	}
	// A 200 is the whole file: only its head is read.
	head, err := io.ReadAll(io.LimitReader(resp.Body, n))
	if err != nil {
		err = timeoutErr(err, time.Since(start))
		o.metricError(err)
		return nil, version{}, err
	}
	o.metricFetched("tags", int64(len(head)), time.Since(start))
	return head, versionOf(resp), nil
}

// fetchTrack downloads e's file into a temporary file (checking its version,
// type and length as it comes), cuts it into chunks, transcoding it first
// when it is not an MP3, and stores it under e.id.
func (o *Origin) fetchTrack(ctx context.Context, e *entry) (*media.Manifest, error) {
	start := time.Now()
	o.mu.Lock()
	catalogued := e.summary
	o.mu.Unlock()
	dir, err := os.MkdirTemp(o.cfg.TempDir, "ztream-origin-*")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			o.log.Warn("origin: temporary files left", "dir", dir, "err", err)
		}
	}()
	src := dir + "/source" + strings.ToLower(path.Ext(e.item.URL.Path))
	sha, size, err := o.download(ctx, e, src)
	if err != nil {
		return nil, timeoutErr(err, time.Since(start))
	}
	o.metricFetched("track", size, time.Since(start))

	mp3, info := src, &media.SourceInfo{Format: "mp3", SHA256: sha, Size: size}
	var warnings []string
	if e.item.Format != "MP3" {
		if o.cfg.Transcoder == nil {
			return nil, fmt.Errorf("%s needs transcoding: %w", e.item.Format, o.cfg.NoTranscoder)
		}
		out, err := o.cfg.Transcoder.Transcode(ctx, src)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w while transcoding", ErrTimeout)
			}
			// The details (ffmpeg's words, the hub's paths) are the log's.
			o.log.Warn("origin: transcode failed", "url", e.item.URL.Redacted(), "err", err)
			return nil, ErrTranscode
		}
		defer out.Close()
		mp3 = out.Path
		warnings = out.Warnings
		info.Format, info.Bitrate, info.SampleRate, info.Channels = out.Source.Format, out.Source.Bitrate, out.Source.SampleRate, out.Source.Channels
	}
	tr, err := media.OpenFileAs(mp3, path.Base(e.item.URL.Path))
	if err != nil {
		return nil, fmt.Errorf("cutting it into chunks: %w", err)
	}
	defer tr.Close()
	m := tr.Manifest
	if info.Format == "mp3" {
		info.Bitrate, info.SampleRate, info.Channels = m.Bitrate, m.SampleRate, m.Channels
	}
	m.ID, m.Origin, m.Source = e.id, o.tag, info
	if m.Title == strings.TrimSuffix(path.Base(e.item.URL.Path), path.Ext(e.item.URL.Path)) {
		m.Title = catalogued.Title // no title tag: the catalog's (#EXTINF) title
	}
	if m.Artist == "Unknown artist" {
		m.Artist = catalogued.Artist
	}
	for _, w := range append(warnings, tr.Warnings...) {
		o.log.Info("origin: "+w, "url", e.item.URL.Redacted())
	}
	if tr.Cover != nil {
		if err := o.cache.PutCover(ctx, *m.Cover, tr.Cover.Data); err != nil {
			return nil, fmt.Errorf("storing its cover: %w", err)
		}
	}
	if err := o.cache.PutTrack(ctx, m, tr.Chunk); err != nil {
		return nil, fmt.Errorf("storing it: %w", err)
	}
	return m, nil
}

// download writes e's file to path and returns its SHA-256 and size. The
// answer must be e's version (If-Match with a strong ETag; the ETag, size
// and Last-Modified compared), an audio type, and exactly as long as it
// says, at most MaxTrackBytes.
func (o *Origin) download(ctx context.Context, e *entry, dst string) (string, int64, error) {
	req, err := newRequest(ctx, e.item.URL.String())
	if err != nil {
		return "", 0, err
	}
	if e.etag != "" && !strings.HasPrefix(e.etag, "W/") {
		req.Header.Set("If-Match", e.etag)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return "", 0, requestErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, statusError(resp)
	}
	if ct := resp.Header.Get("Content-Type"); !audioType(ct) {
		return "", 0, fmt.Errorf("%w: the origin says %s", ErrContentType, ct)
	}
	v := versionOf(resp)
	switch {
	case e.etag != "" && v.etag != e.etag:
		return "", 0, fmt.Errorf("%w: ETag %s, catalogued %s", ErrChanged, v.etag, e.etag)
	case e.size >= 0 && v.size >= 0 && v.size != e.size:
		return "", 0, fmt.Errorf("%w: %d bytes, catalogued %d", ErrChanged, v.size, e.size)
	case e.lastModified != "" && v.lastModified != "" && v.lastModified != e.lastModified:
		return "", 0, fmt.Errorf("%w: modified %s, catalogued %s", ErrChanged, v.lastModified, e.lastModified)
	case v.size > o.cfg.MaxTrackBytes:
		return "", 0, fmt.Errorf("%w: %d bytes, the bound is %d", ErrTooLarge, v.size, o.cfg.MaxTrackBytes)
	}
	f, err := os.Create(dst)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, o.cfg.MaxTrackBytes+1))
	switch {
	case err != nil && v.size >= 0 && n < v.size && !errors.Is(err, context.DeadlineExceeded) && !isNetTimeout(err):
		return "", 0, fmt.Errorf("%w: %d of %d bytes, then %w", ErrTruncated, n, v.size, err)
	case err != nil:
		return "", 0, err
	case n > o.cfg.MaxTrackBytes:
		return "", 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, o.cfg.MaxTrackBytes)
	case v.size >= 0 && n != v.size:
		return "", 0, fmt.Errorf("%w: %d of %d bytes", ErrTruncated, n, v.size)
	case v.size < 0 && e.size >= 0 && n != e.size:
		// No length in the answer: the catalogued one says whether the
		// body ended early (a dropped connection) or is another file.
		return "", 0, fmt.Errorf("%w: %d bytes, catalogued %d", ErrTruncated, n, e.size)
	case n == 0:
		return "", 0, fmt.Errorf("%w: an empty body", ErrTruncated)
	}
	if err := f.Close(); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// fetchError is a failed fetch as the store's callers see it: a
// store.ErrUpstream, and store.ErrNotFound too when the file is gone or
// changed (its track id is no more). Its message names the file by its
// base name only: the API shows it to listeners, who need not learn where
// the origin is (the log has the whole URL).
type fetchError struct {
	file string
	err  error
}

func (e *fetchError) Error() string { return "origin: " + e.file + ": " + e.err.Error() }

func (e *fetchError) Unwrap() []error {
	if errors.Is(e.err, ErrRateLimited) {
		return []error{store.ErrLimited, e.err} // the origin did not fail
	}
	if errors.Is(e.err, ErrGone) || errors.Is(e.err, ErrChanged) {
		return []error{store.ErrNotFound, store.ErrUpstream, e.err}
	}
	return []error{store.ErrUpstream, e.err}
}
