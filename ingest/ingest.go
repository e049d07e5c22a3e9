// Package ingest turns audio files into stored tracks: it finds the files,
// analyses each MP3 with the media package, transcodes the other formats
// (FLAC, M4A, Ogg Vorbis, Opus, WAV) to MP3 with package transcode first, and
// puts each track into a store.Store, reporting progress as it goes. A bad
// file is reported and skipped; every good file is stored.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/store"
	"github.com/ztream/ztream/transcode"
)

// Result is the outcome of ingesting one file.
type Result struct {
	// Path names the file as given (or as found under a directory).
	Path string
	// Manifest is set when the file was stored.
	Manifest *media.Manifest
	// Existed is true when the library already held this audio (same id).
	Existed bool
	// Warnings name what was skipped in the file's tags (media.Track.Warnings)
	// or dropped by its transcode.
	Warnings []string
	// Format names the file's format: "MP3", or transcode.FormatOf's name.
	Format string
	// Transcoded is true when the file was transcoded in this run (false
	// for an MP3, and for a file whose transcoded track was stored already).
	Transcoded bool
	// Err is set when the file could not be ingested.
	Err error
}

// Summary totals a run.
type Summary struct {
	Results  []Result
	Stored   int
	New      int
	Failed   int
	Bytes    int64
	Duration time.Duration // of the stored audio
	Elapsed  time.Duration
	// Formats counts the files by format (Result.Format).
	Formats map[string]*FormatCount
	// NoTranscoder counts the files not ingested because there is no
	// transcoder (errors wrapping ErrNoTranscoder), and NoTranscoderWhy says
	// why there is none (Config.NoTranscoder).
	NoTranscoder    int
	NoTranscoderWhy error
}

// FormatCount counts the files of one format in a run.
type FormatCount struct {
	// Stored files (transcoded or not), of which Transcoded were
	// transcoded in this run; Failed files were not stored.
	Stored, Transcoded, Failed int
}

// ErrNoTranscoder is wrapped by the error of a file that needs transcoding
// when the run has no transcoder (ffmpeg was not found).
var ErrNoTranscoder = errors.New("no transcoder")

// Progress is told about each file before (done = index) and after it is
// handled; it may be nil.
type Progress func(done, total int, r *Result)

// ReaderAtCloser is a file opened for random access.
type ReaderAtCloser interface {
	io.ReaderAt
	io.Closer
}

// Source is one file to ingest: a name for messages and a way to open it.
type Source struct {
	Name string
	Open func() (ReaderAtCloser, int64, error)
	// Path is the file on disk, if it is one: formats other than MP3 are
	// transcoded from it (ffmpeg reads files, not readers).
	Path string
	// Origin is set as the manifest's Origin (a music folder's tag). A
	// source without one leaves the tag of a track stored already: a file
	// ingested by hand does not take a folder's track away from it.
	Origin string
}

// FindFiles expands paths into the files to ingest: a file is taken as it is,
// a directory is walked recursively for audio files (IsAudio), sorted by
// path. A path that does not exist is an error.
func FindFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && IsAudio(path) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("ingest: walking %s: %w", p, err)
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	return files, nil
}

// IsAudio reports whether name's extension is one of an audio file that
// ingest takes: .mp3 or one that transcode.FormatOf knows (any case).
func IsAudio(name string) bool {
	return strings.EqualFold(filepath.Ext(name), ".mp3") || transcode.FormatOf(name) != ""
}

// FileSources returns a Source per file path.
func FileSources(paths []string) []Source {
	out := make([]Source, len(paths))
	for i, p := range paths {
		out[i] = Source{Name: p, Path: p, Open: func() (ReaderAtCloser, int64, error) {
			f, err := os.Open(p)
			if err != nil {
				return nil, 0, err
			}
			info, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, 0, err
			}
			return f, info.Size(), nil
		}}
	}
	return out
}

// FSSources returns a Source per named file of fsys (for the embedded demo
// tracks). Files of fsys must implement io.ReaderAt, as embed.FS files do.
func FSSources(fsys fs.FS, names []string) []Source {
	out := make([]Source, len(names))
	for i, name := range names {
		out[i] = Source{Name: name, Open: func() (ReaderAtCloser, int64, error) {
			f, err := fsys.Open(name)
			if err != nil {
				return nil, 0, err
			}
			info, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, 0, err
			}
			ra, ok := f.(ReaderAtCloser)
			if !ok {
				f.Close()
				return nil, 0, fmt.Errorf("%s: file system does not support random access", name)
			}
			return ra, info.Size(), nil
		}}
	}
	return out
}

// Config configures a run.
type Config struct {
	// Store receives the tracks.
	Store store.Store
	// Workers bounds the files handled at once (0 = GOMAXPROCS): analysing
	// a file (reading and hashing it) is the work; the store serializes
	// what it must. The transcoder bounds its own processes.
	Workers int
	// Transcoder transcodes the formats other than MP3; nil takes MP3s
	// only, and the others fail with ErrNoTranscoder and NoTranscoder.
	Transcoder *transcode.Transcoder
	// NoTranscoder says why there is no Transcoder (New's error), for
	// messages.
	NoTranscoder error
	// Progress may be nil.
	Progress Progress
}

// Run ingests every source into st, on as many goroutines as the machine
// has cores, with no transcoder (MP3 only). See Config.Run.
func Run(ctx context.Context, st store.Store, sources []Source, progress Progress) (Summary, error) {
	return Config{Store: st, Progress: progress}.Run(ctx, sources)
}

// Run ingests every source into c.Store. Results keep the order of sources.
// It stops early only when ctx is cancelled; a failed file is recorded in
// its Result and the run goes on. Progress is called from one goroutine at a
// time.
func (c Config) Run(ctx context.Context, sources []Source) (Summary, error) {
	workers, progress := c.Workers, c.Progress
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	start := time.Now()
	results := make([]Result, len(sources))
	var (
		mu      sync.Mutex // serializes progress and counts done
		done    int
		started int
		wg      sync.WaitGroup
	)
	next := make(chan int)
	for range max(min(workers, len(sources)), 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := &results[i]
				r.Path = sources[i].Name
				if progress != nil {
					mu.Lock()
					progress(done, len(sources), r)
					mu.Unlock()
				}
				c.one(ctx, sources[i], r)
				mu.Lock()
				done++
				if progress != nil {
					progress(done, len(sources), r)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range sources {
		if ctx.Err() != nil {
			break
		}
		select {
		case next <- i:
			started++
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	sum := Summary{Results: results[:started], Formats: make(map[string]*FormatCount), NoTranscoderWhy: c.noTranscoder()}
	seen := make(map[string]bool)
	for i := range sum.Results {
		r := &sum.Results[i]
		fc := sum.Formats[r.Format]
		if fc == nil {
			fc = &FormatCount{}
			sum.Formats[r.Format] = fc
		}
		if r.Err != nil {
			sum.Failed++
			fc.Failed++
			if errors.Is(r.Err, ErrNoTranscoder) {
				sum.NoTranscoder++
			}
			continue
		}
		fc.Stored++
		if r.Transcoded {
			fc.Transcoded++
		}
		if seen[r.Manifest.ID] {
			r.Existed = true // the same audio twice in this run: new once
		}
		seen[r.Manifest.ID] = true
		sum.Stored++
		if !r.Existed {
			sum.New++
		}
		sum.Bytes += r.Manifest.Size
		sum.Duration += time.Duration(r.Manifest.DurationMS) * time.Millisecond
	}
	sum.Elapsed = time.Since(start)
	if err := ctx.Err(); err != nil {
		return sum, fmt.Errorf("ingest interrupted after %d of %d files: %w", started, len(sources), err)
	}
	return sum, nil
}

// one ingests a single source into r: an MP3 as it is, another format
// through the transcoder.
func (c Config) one(ctx context.Context, src Source, r *Result) {
	r.Format = transcode.FormatOf(src.Name)
	if r.Format != "" {
		r.Manifest, r.Existed, r.Warnings, r.Err = c.transcoded(ctx, src, r)
		return
	}
	r.Format = "MP3"
	f, size, err := src.Open()
	if err != nil {
		r.Err = fmt.Errorf("%s: %w", src.Name, err)
		return
	}
	defer f.Close()
	tr, err := media.Analyze(f, size, src.Name)
	if err != nil {
		r.Err = err // media errors name the file already
		return
	}
	r.Manifest, r.Existed, r.Err = c.put(ctx, src, tr)
	if r.Err == nil {
		r.Warnings = tr.Warnings
	}
}

// transcoded ingests a source that is not an MP3: unless the track made from
// this very file (same content, same bitrate) is stored already, it
// transcodes the file and stores the MP3 under an id derived from the
// source (transcode.TrackID).
func (c Config) transcoded(ctx context.Context, src Source, r *Result) (*media.Manifest, bool, []string, error) {
	if c.Transcoder == nil {
		return nil, false, nil, fmt.Errorf("%s: %s needs transcoding: %w: %w", src.Name, r.Format, ErrNoTranscoder, c.noTranscoder())
	}
	if src.Path == "" {
		return nil, false, nil, fmt.Errorf("%s: %s needs transcoding, which reads a file on disk", src.Name, r.Format)
	}
	before, err := os.Stat(src.Path)
	if err != nil {
		return nil, false, nil, fmt.Errorf("%s: %w", src.Name, err)
	}
	sha, size, err := transcode.HashFile(ctx, src.Path)
	if err != nil {
		return nil, false, nil, fmt.Errorf("%s: %w", src.Name, err)
	}
	id := transcode.TrackID(sha, c.Transcoder.Bitrate())
	stored, err := c.Store.Manifest(ctx, id)
	switch {
	case err == nil && stored.Source != nil && stored.Source.SHA256 == sha && (src.Origin == "" || src.Origin == stored.Origin):
		return stored, true, nil, nil // this file's track: nothing to transcode
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, false, nil, fmt.Errorf("%s: checking the library: %w: %w", src.Name, ErrStore, err)
	}
	out, err := c.Transcoder.Transcode(ctx, src.Path)
	if err != nil {
		return nil, false, nil, err // transcode errors name the file already
	}
	defer out.Close()
	if after, err := os.Stat(src.Path); err != nil || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		// The id is the content hashed before: another content may not
		// be stored under it.
		return nil, false, nil, fmt.Errorf("%s: the file changed while it was transcoded; ingest it again", src.Name)
	}
	r.Transcoded = true
	tr, err := media.OpenFileAs(out.Path, src.Name)
	if err != nil {
		return nil, false, nil, fmt.Errorf("the MP3 transcoded from %w", err)
	}
	defer tr.Close()
	tr.Manifest.ID = id
	tr.Manifest.Source = &media.SourceInfo{Format: out.Source.Format, Bitrate: out.Source.Bitrate,
		SampleRate: out.Source.SampleRate, Channels: out.Source.Channels, SHA256: sha, Size: size}
	m, existed, err := c.put(ctx, src, tr)
	if err != nil {
		return nil, false, nil, err
	}
	return m, existed, append(out.Warnings, tr.Warnings...), nil
}

// noTranscoder says why there is no transcoder.
func (c Config) noTranscoder() error {
	if c.NoTranscoder != nil {
		return c.NoTranscoder
	}
	return errors.New("no transcoder configured")
}

// put stores tr unless the library holds the same manifest already: its
// cover first, so that a stored manifest never names a missing cover.
func (c Config) put(ctx context.Context, src Source, tr *media.Track) (*media.Manifest, bool, error) {
	st := c.Store
	m := tr.Manifest
	m.Origin = src.Origin
	stored, err := st.Manifest(ctx, m.ID)
	existed := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, false, fmt.Errorf("%s: checking the library: %w: %w", src.Name, ErrStore, err)
	}
	if existed && m.Origin == "" {
		m.Origin = stored.Origin
	}
	if existed && reflect.DeepEqual(stored, m) {
		return m, true, nil // the same audio and tags: nothing to write
	}
	if tr.Cover != nil {
		if err := st.PutCover(ctx, *m.Cover, tr.Cover.Data); err != nil {
			return nil, false, fmt.Errorf("%s: storing its cover: %w: %w", src.Name, ErrStore, err)
		}
	}
	if err := st.PutTrack(ctx, m, tr.Chunk); err != nil {
		return nil, false, fmt.Errorf("%s: storing track: %w: %w", src.Name, ErrStore, err)
	}
	return m, existed, nil
}

// ErrStore is wrapped by the errors of a Result that come from the store,
// not from the file: trying the file again later may work.
var ErrStore = errors.New("track store")

// WriteSummary prints a human summary of sum to w: one line per failure
// (the files that need a transcoder when there is none on one line), the
// counts by format when a run had more than MP3s, and totals.
func WriteSummary(w io.Writer, sum Summary) {
	var untranscoded []string
	byFormat := make(map[string]int)
	for _, r := range sum.Results {
		switch {
		case r.Err != nil && errors.Is(r.Err, ErrNoTranscoder):
			untranscoded = append(untranscoded, r.Path)
			byFormat[r.Format]++
		case r.Err != nil:
			fmt.Fprintf(w, "FAILED  %v\n", r.Err)
		}
		for _, warn := range r.Warnings {
			fmt.Fprintf(w, "WARNING %s: %s\n", r.Path, warn)
		}
	}
	if len(untranscoded) > 0 {
		fmt.Fprintf(w, "SKIPPED %d files that need transcoding (%s; first %s): %v\n",
			len(untranscoded), formatCounts(byFormat), untranscoded[0], sum.NoTranscoderWhy)
	}
	if len(sum.Formats) > 1 || sum.Formats["MP3"] == nil && len(sum.Formats) == 1 {
		fmt.Fprintf(w, "by format: %s\n", formatLine(sum))
	}
	fmt.Fprintf(w, "%d stored (%d new, %d already in the library), %d failed; %s of audio, %.1f MB, in %s\n",
		sum.Stored, sum.New, sum.Stored-sum.New, sum.Failed,
		sum.Duration.Round(time.Second), float64(sum.Bytes)/1e6, sum.Elapsed.Round(time.Millisecond))
}

// formatCounts lists "FLAC 3, Opus 2", formats sorted.
func formatCounts(n map[string]int) string {
	var parts []string
	for _, f := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%s %d", f, n[f]))
	}
	return strings.Join(parts, ", ")
}

// formatLine says per format what was stored, transcoded and failed:
// "FLAC 3 stored (2 transcoded), 1 failed; MP3 10 stored".
func formatLine(sum Summary) string {
	var parts []string
	for _, f := range slices.Sorted(maps.Keys(sum.Formats)) {
		fc := sum.Formats[f]
		var p []string
		if fc.Stored > 0 {
			p = append(p, fmt.Sprintf("%d stored", fc.Stored))
			if fc.Transcoded > 0 {
				p[0] += fmt.Sprintf(" (%d transcoded)", fc.Transcoded)
			}
		}
		if fc.Failed > 0 {
			p = append(p, fmt.Sprintf("%d failed", fc.Failed))
		}
		parts = append(parts, f+" "+strings.Join(p, ", "))
	}
	return strings.Join(parts, "; ")
}
