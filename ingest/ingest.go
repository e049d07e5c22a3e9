// Package ingest turns MP3 files into stored tracks: it finds the files,
// analyses each one with the media package and puts it into a store.Store,
// reporting progress as it goes. A bad file is reported and skipped; every
// good file is stored.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/store"
)

// Result is the outcome of ingesting one file.
type Result struct {
	// Path names the file as given (or as found under a directory).
	Path string
	// Manifest is set when the file was stored.
	Manifest *media.Manifest
	// Existed is true when the library already held this audio (same id).
	Existed bool
	// Warnings name what was skipped in the file's tags (media.Track.Warnings).
	Warnings []string
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
}

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
	// Origin is set as the manifest's Origin (a music folder's tag). A
	// source without one leaves the tag of a track stored already: a file
	// ingested by hand does not take a folder's track away from it.
	Origin string
}

// FindFiles expands paths into the files to ingest: a file is taken as it is,
// a directory is walked recursively for files ending in .mp3 (any case),
// sorted by path. A path that does not exist is an error.
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
			if d.Type().IsRegular() && strings.EqualFold(filepath.Ext(path), ".mp3") {
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

// FileSources returns a Source per file path.
func FileSources(paths []string) []Source {
	out := make([]Source, len(paths))
	for i, p := range paths {
		out[i] = Source{Name: p, Open: func() (ReaderAtCloser, int64, error) {
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

// Run ingests every source into st, on as many goroutines as the machine
// has cores (GOMAXPROCS): analysing a file (reading and hashing it) is the
// work; the store serializes what it must. Results keep the order of
// sources. It stops early only when ctx is cancelled; a failed file is
// recorded in its Result and the run goes on. progress is called from one
// goroutine at a time.
func Run(ctx context.Context, st store.Store, sources []Source, progress Progress) (Summary, error) {
	return RunWorkers(ctx, st, sources, runtime.GOMAXPROCS(0), progress)
}

// RunWorkers is Run on at most workers goroutines (at least 1).
func RunWorkers(ctx context.Context, st store.Store, sources []Source, workers int, progress Progress) (Summary, error) {
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
				r.Manifest, r.Existed, r.Warnings, r.Err = one(ctx, st, sources[i])
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
	sum := Summary{Results: results[:started]}
	seen := make(map[string]bool)
	for i := range sum.Results {
		r := &sum.Results[i]
		if r.Err != nil {
			sum.Failed++
			continue
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

// one ingests a single source: its cover first, so that a stored manifest
// never names a missing cover.
func one(ctx context.Context, st store.Store, src Source) (*media.Manifest, bool, []string, error) {
	f, size, err := src.Open()
	if err != nil {
		return nil, false, nil, fmt.Errorf("%s: %w", src.Name, err)
	}
	defer f.Close()
	tr, err := media.Analyze(f, size, src.Name)
	if err != nil {
		return nil, false, nil, err // media errors name the file already
	}
	m := tr.Manifest
	m.Origin = src.Origin
	stored, err := st.Manifest(ctx, m.ID)
	existed := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, false, nil, fmt.Errorf("%s: checking the library: %w: %w", src.Name, ErrStore, err)
	}
	if existed && m.Origin == "" {
		m.Origin = stored.Origin
	}
	if existed && reflect.DeepEqual(stored, m) {
		return m, true, tr.Warnings, nil // the same audio and tags: nothing to write
	}
	if tr.Cover != nil {
		if err := st.PutCover(ctx, *m.Cover, tr.Cover.Data); err != nil {
			return nil, false, nil, fmt.Errorf("%s: storing its cover: %w: %w", src.Name, ErrStore, err)
		}
	}
	if err := st.PutTrack(ctx, m, tr.Chunk); err != nil {
		return nil, false, nil, fmt.Errorf("%s: storing track: %w: %w", src.Name, ErrStore, err)
	}
	return m, existed, tr.Warnings, nil
}

// ErrStore is wrapped by the errors of a Result that come from the store,
// not from the file: trying the file again later may work.
var ErrStore = errors.New("track store")

// WriteSummary prints a human summary of sum to w: one line per failure and
// totals.
func WriteSummary(w io.Writer, sum Summary) {
	for _, r := range sum.Results {
		if r.Err != nil {
			fmt.Fprintf(w, "FAILED  %v\n", r.Err)
		}
		for _, warn := range r.Warnings {
			fmt.Fprintf(w, "WARNING %s: %s\n", r.Path, warn)
		}
	}
	fmt.Fprintf(w, "%d stored (%d new, %d already in the library), %d failed; %s of audio, %.1f MB, in %s\n",
		sum.Stored, sum.New, sum.Stored-sum.New, sum.Failed,
		sum.Duration.Round(time.Second), float64(sum.Bytes)/1e6, sum.Elapsed.Round(time.Millisecond))
}
