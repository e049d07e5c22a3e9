// Package musicdir keeps the library in step with a music folder (`ztream
// serve --music DIR`): it ingests the folder's MP3 files at start, then
// follows the folder with fsnotify. A file added or replaced is ingested
// once it has stopped changing (Config.Settle: half-written files wait); a
// removed file's track leaves the library two Settle periods later when no
// file of the folder has the same audio by then; a file renamed or moved
// within the folder keeps its track (it is known by its size and
// modification time, and not read again). The folder's tracks carry its tag (media.Manifest
// Origin), so the tracks of files removed while the server was down leave
// too, once the first scan has seen every directory and ingested every
// file; tracks ingested by hand stay.
//
// Only the folder is read: symbolic links are not followed (a link to a
// file or a directory is skipped), so neither a link out of the folder nor
// a link loop is ever walked. A file that fails (not an MP3, vanished
// mid-ingest, unreadable) is logged once and tried again only when it
// changes; an unreadable directory is logged and skipped. Nothing stops the
// server.
package musicdir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ztream/ztream/ingest"
	"github.com/ztream/ztream/store"
	"github.com/ztream/ztream/transcode"
)

// Config is a Folder's configuration.
type Config struct {
	// Dir is the music folder.
	Dir string
	// Store receives the tracks.
	Store store.Store
	// Logger (default: discard).
	Logger *slog.Logger
	// Settle is how long a file must stay unchanged (size and modification
	// time) before it is ingested (default 2 s).
	Settle time.Duration
	// Workers bounds the files analysed at once (default GOMAXPROCS).
	Workers int
	// Transcoder turns FLAC, M4A, Ogg, Opus and WAV files into MP3s; nil
	// follows MP3 files only and logs once that the others are skipped,
	// with NoTranscoder's reason.
	Transcoder   *transcode.Transcoder
	NoTranscoder error
	// MaxFiles bounds the files followed (default 1,000,000); more are
	// logged and ignored.
	MaxFiles int
	// OnChange, if set, is called after the library changed (tracks added,
	// replaced or removed), from the Folder's goroutine.
	OnChange func()
}

// Status is what a Folder has done so far.
type Status struct {
	Dir string `json:"dir"`
	// Scanned is true once the first scan ended.
	Scanned bool `json:"scanned"`
	// Files are the audio files followed, Tracks the distinct tracks they
	// hold, Failed the files that could not be ingested.
	Files  int `json:"files"`
	Tracks int `json:"tracks"`
	Failed int `json:"failed"`
	// Pending are changed files waiting to settle.
	Pending int `json:"pending"`
}

// progressEvery is how often a long ingest logs its progress.
const progressEvery = 5 * time.Second

// fileState is a followed file: what it was when last ingested (or failed).
type fileState struct {
	size   int64
	mod    time.Time
	id     string // its track id; "" when it failed
	failed bool
}

// pendingFile is a changed file waiting to settle.
type pendingFile struct {
	size  int64
	mod   time.Time
	since time.Time // when size and mod were first seen as they are
}

// orphan is a track whose last file went.
type orphan struct {
	since time.Time
	path  string  // the file that went last
	key   fileKey // its size and modification time
}

// fileKey is what a rename keeps of a file: its size and modification
// time. A file that arrives with an orphan's key is that file, moved.
type fileKey struct {
	size int64
	mod  int64 // UnixNano
}

// Folder follows one music folder. Its state belongs to the goroutine of
// Run; Status reads a copy.
type Folder struct {
	cfg Config
	log *slog.Logger
	dir string // absolute, cleaned
	// origin tags the folder's tracks (media.Manifest.Origin).
	origin string

	files   map[string]fileState // path → state
	holders map[string]int       // track id → files holding it
	// orphans are tracks whose last file went, by id: dropped once they
	// stayed without a file for two Settle periods.
	orphans map[string]orphan
	// moved finds an orphan by its file's key.
	moved   map[fileKey]string
	pending map[string]pendingFile // path → waiting to settle
	watched map[string]bool        // directories watched
	dirty   bool                   // Status is behind
	// storeDown is set while the store fails (logged once until it works).
	storeDown bool
	// incomplete is set when a scan could not see every file (an
	// unreadable directory, too many files); sweepDue while the first
	// scan's sweep of gone files waits for every file to be ingested.
	incomplete bool
	sweepDue   bool
	// untranscodedLogged is set once the files skipped for want of a
	// transcoder were logged.
	untranscodedLogged bool

	mu     sync.Mutex
	status Status
}

// New checks the folder (it must exist and be a directory) and returns its
// Folder; Run follows it.
func New(cfg Config) (*Folder, error) {
	if cfg.Store == nil {
		return nil, errors.New("musicdir: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 2 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = 1_000_000
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("musicdir: %s: %w", cfg.Dir, err)
	}
	// The folder itself may be a link (~/Music → a share): its target is
	// the folder; links inside it are still not followed.
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return nil, fmt.Errorf("musicdir: music folder: %w", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("musicdir: music folder: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("musicdir: music folder %s is not a directory", dir)
	}
	sum := sha256.Sum256([]byte(dir))
	return &Folder{
		cfg: cfg, log: cfg.Logger.With("music", dir), dir: dir, origin: "music:" + hex.EncodeToString(sum[:8]),
		files: make(map[string]fileState), holders: make(map[string]int), orphans: make(map[string]orphan), moved: make(map[fileKey]string),
		pending: make(map[string]pendingFile), watched: make(map[string]bool),
		status: Status{Dir: dir},
	}, nil
}

// Status returns what the Folder has done so far.
func (f *Folder) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

// Run scans the folder, ingests what changed since the library last saw it,
// and follows the folder until ctx ends. It returns an error only when the
// folder cannot be watched at all.
func (f *Folder) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("musicdir: watching %s: %w", f.dir, err)
	}
	defer w.Close()
	start := time.Now()
	found := f.scan(ctx, w, f.dir)
	f.ingest(ctx, found)
	f.log.Info("music folder scanned", "files", len(f.files), "tracks", f.trackCount(), "failed", f.failedCount(),
		"took", time.Since(start).Round(time.Millisecond))
	if f.incomplete {
		f.log.Warn("music folder: not every file could be seen; tracks of files removed while the server was down stay")
	} else {
		f.sweepDue = true
		f.sweep(ctx)
	}
	f.publish(true)

	tick := time.NewTicker(max(f.cfg.Settle/4, 50*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			f.event(ctx, w, ev)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// Typically an event queue overflow: rescan to catch up,
			// removals included.
			f.log.Warn("music folder watch error: rescanning", "err", err)
			f.rescan(ctx, w)
			f.publish(true)
		case <-tick.C:
			f.settle(ctx)
		}
	}
}

// takes reports whether the folder ingests the file name: an MP3, or
// another audio format when there is a transcoder.
func (f *Folder) takes(name string) bool {
	if strings.EqualFold(filepath.Ext(name), ".mp3") {
		return true
	}
	return f.cfg.Transcoder != nil && transcode.FormatOf(name) != ""
}

// scan walks root: it watches every directory and returns the regular audio
// files that are new or changed since they were last seen.
func (f *Folder) scan(ctx context.Context, w *fsnotify.Watcher, root string) []string {
	var changed []string
	skipped, untranscoded := 0, 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return fs.SkipAll // shutting down
		}
		if err != nil {
			f.log.Warn("music folder: skipped what cannot be read", "path", path, "err", err)
			f.incomplete = true
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			f.log.Debug("music folder: symbolic link not followed", "path", path)
		case d.IsDir():
			f.watch(w, path)
		case !d.Type().IsRegular():
		case !f.takes(path):
			skipped++
			if transcode.FormatOf(path) != "" {
				untranscoded++
			}
		default:
			info, err := d.Info()
			if err != nil {
				return nil // vanished meanwhile
			}
			if st, ok := f.files[path]; ok && st.size == info.Size() && st.mod.Equal(info.ModTime()) {
				return nil
			}
			if _, ok := f.files[path]; !ok && len(f.files)+len(changed) >= f.cfg.MaxFiles {
				f.log.Warn("music folder: too many files, ignored", "path", path, "max", f.cfg.MaxFiles)
				f.incomplete = true
				return nil
			}
			changed = append(changed, path)
		}
		return nil
	})
	if err != nil {
		f.log.Warn("music folder scan", "err", err)
	}
	if untranscoded > 0 && !f.untranscodedLogged {
		f.untranscodedLogged = true
		f.log.Warn("music folder: FLAC, M4A, Ogg, Opus and WAV files skipped: they need ffmpeg",
			"count", untranscoded, "under", root, "reason", f.cfg.NoTranscoder)
	}
	if skipped > 0 {
		f.log.Debug("music folder: files that are not audio skipped", "count", skipped, "under", root)
	}
	return changed
}

// rescan catches up after lost events: files new or changed are
// ingested, files gone are removed.
func (f *Folder) rescan(ctx context.Context, w *fsnotify.Watcher) {
	f.ingest(ctx, f.scan(ctx, w, f.dir))
	var gone []string
	if _, err := os.Stat(f.dir); err != nil {
		f.log.Warn("music folder unreadable: nothing removed", "err", err)
		return
	}
	for p := range f.files {
		if info, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) || (err == nil && !info.Mode().IsRegular()) {
			gone = append(gone, p)
		}
	}
	for _, p := range gone {
		delete(f.pending, p)
		f.forget(p)
	}
	f.dirty = true
}

// unwatch drops the watches of directory path and of those under it.
func (f *Folder) unwatch(w *fsnotify.Watcher, path string) {
	prefix := path + string(filepath.Separator)
	for d := range f.watched {
		if d == path || strings.HasPrefix(d, prefix) {
			_ = w.Remove(d) // gone already for a removed directory
			delete(f.watched, d)
		}
	}
}

// watch adds a watch on directory path (fsnotify watches one level).
func (f *Folder) watch(w *fsnotify.Watcher, path string) {
	if f.watched[path] {
		return
	}
	if err := w.Add(path); err != nil {
		f.log.Warn("music folder: cannot watch a directory; its changes are seen at the next rescan", "path", path, "err", err)
		return
	}
	f.watched[path] = true
}

// event handles one fsnotify event.
func (f *Folder) event(ctx context.Context, w *fsnotify.Watcher, ev fsnotify.Event) {
	path := filepath.Clean(ev.Name)
	if path != f.dir && !strings.HasPrefix(path, f.dir+string(filepath.Separator)) {
		return // not ours
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		f.unwatch(w, path)
		f.removed(path)
		return
	}
	info, err := os.Lstat(path)
	if err != nil {
		return // gone already: its Remove event follows
	}
	switch {
	case info.IsDir():
		// A new directory (or one renamed or moved in): its files, and
		// fresh watches (a renamed directory's old watch may still carry
		// its old name).
		f.unwatch(w, path)
		for _, p := range f.scan(ctx, w, path) {
			if fi, err := os.Lstat(p); err == nil {
				f.arrived(p, fi)
			}
		}
	case info.Mode().IsRegular() && f.takes(path):
		f.arrived(path, info)
	}
}

// changed notes that path was written: it is ingested once it settles.
func (f *Folder) changed(path string) {
	if _, ok := f.files[path]; !ok && len(f.files)+len(f.pending) >= f.cfg.MaxFiles {
		return
	}
	f.pending[path] = pendingFile{since: time.Now(), size: -1}
	f.dirty = true
}

// settle ingests the pending files that have not changed for Settle.
func (f *Folder) settle(ctx context.Context) {
	var ready []string
	now := time.Now()
	for path, p := range f.pending {
		info, err := os.Lstat(path)
		if err != nil || !info.Mode().IsRegular() {
			delete(f.pending, path)
			continue
		}
		if info.Size() != p.size || !info.ModTime().Equal(p.mod) {
			f.pending[path] = pendingFile{size: info.Size(), mod: info.ModTime(), since: now}
			continue
		}
		if now.Sub(p.since) >= f.cfg.Settle {
			delete(f.pending, path)
			if st, ok := f.files[path]; ok && st.size == p.size && st.mod.Equal(p.mod) {
				continue // touched, not changed
			}
			ready = append(ready, path)
		}
	}
	if len(ready) > 0 {
		f.ingest(ctx, ready)
		f.dirty = true
	}
	f.dropOrphans(ctx, now)
	f.sweep(ctx)
	if f.dirty {
		f.publish(false)
	}
}

// ingest stores paths' tracks and records the outcome; a file whose audio
// changed gives up its previous track (if no other file has it).
func (f *Folder) ingest(ctx context.Context, paths []string) {
	if len(paths) == 0 {
		return
	}
	type stat struct {
		size int64
		mod  time.Time
	}
	stats := make(map[string]stat, len(paths))
	var files []string
	for _, p := range paths {
		info, err := os.Lstat(p)
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		stats[p] = stat{info.Size(), info.ModTime()}
		files = append(files, p)
	}
	sources := ingest.FileSources(files)
	for i := range sources {
		sources[i].Origin = f.origin
	}
	last := time.Now()
	progress := func(done, total int, _ *ingest.Result) {
		if time.Since(last) >= progressEvery {
			last = time.Now()
			f.log.Info("music folder: ingesting", "done", done, "of", total)
		}
	}
	run := ingest.Config{Store: f.cfg.Store, Workers: f.cfg.Workers, Transcoder: f.cfg.Transcoder,
		NoTranscoder: f.cfg.NoTranscoder, Progress: progress}
	sum, err := run.Run(ctx, sources)
	if err != nil {
		f.log.Warn("music folder ingest interrupted", "err", err)
	}
	changed := false
	var replaced []string // ids files held before this batch: dropped once every result is in
	for _, r := range sum.Results {
		st := stats[r.Path]
		old, had := f.files[r.Path]
		if r.Err != nil && (errors.Is(r.Err, ingest.ErrStore) || ctx.Err() != nil) {
			// Not the file's fault (the store is down, or shutting
			// down): tried again after Settle, logged once per outage.
			if !f.storeDown && ctx.Err() == nil {
				f.log.Warn("music folder: the store failed; retrying", "err", r.Err)
			}
			f.storeDown = true
			f.pending[r.Path] = pendingFile{since: time.Now(), size: -1}
			continue
		}
		if r.Err != nil {
			if !had || !old.failed || old.size != st.size || !old.mod.Equal(st.mod) {
				f.log.Warn("music folder: file not ingested", "err", r.Err) // once per version of the file
			}
			f.setFile(r.Path, fileState{size: st.size, mod: st.mod, failed: true})
			if had && old.id != "" {
				replaced = append(replaced, old.id)
			}
			continue
		}
		for _, w := range r.Warnings {
			f.log.Warn("music folder: "+w, "path", r.Path)
		}
		f.storeDown = false
		f.setFile(r.Path, fileState{size: st.size, mod: st.mod, id: r.Manifest.ID})
		if !r.Existed || (had && old.id != r.Manifest.ID) {
			f.log.Info("music folder: track added", "path", r.Path, "id", r.Manifest.ID, "title", r.Manifest.Title)
		}
		if had || !r.Existed {
			changed = true // new, or a file that changed: its tags may have (pages reload the catalog)
		}
		if had && old.id != "" && old.id != r.Manifest.ID {
			replaced = append(replaced, old.id)
		}
	}
	for _, id := range replaced {
		if f.dropIfUnused(ctx, id) {
			changed = true
		}
	}
	if changed && f.cfg.OnChange != nil {
		f.cfg.OnChange()
	}
}

// removed forgets path, or every file under it when it was a directory
// (one pass over the files).
func (f *Folder) removed(path string) {
	delete(f.pending, path)
	var gone []string
	prefix := path + string(filepath.Separator)
	if _, ok := f.files[path]; ok {
		gone = append(gone, path)
	}
	for p := range f.files {
		if strings.HasPrefix(p, prefix) {
			gone = append(gone, p)
		}
	}
	for p := range f.pending {
		if strings.HasPrefix(p, prefix) {
			delete(f.pending, p)
		}
	}
	for _, p := range gone {
		f.forget(p)
	}
	f.dirty = true
}

// setFile records path's state, keeping the holder counts.
func (f *Folder) setFile(path string, st fileState) {
	if old, ok := f.files[path]; ok && old.id != "" {
		f.holders[old.id]--
		if f.holders[old.id] <= 0 {
			delete(f.holders, old.id)
		}
	}
	f.files[path] = st
	if st.id != "" {
		f.holders[st.id]++
		f.unorphan(st.id) // a file has it (again)
	}
}

// unorphan forgets that track id has no file.
func (f *Folder) unorphan(id string) {
	if o, ok := f.orphans[id]; ok {
		delete(f.orphans, id)
		if f.moved[o.key] == id {
			delete(f.moved, o.key)
		}
	}
}

// arrived takes a file that appeared at path: when it has the size and
// modification time of a file whose track lost its last file, it is that
// file renamed or moved, and keeps its track without being read again.
// Otherwise it waits to settle (changed).
func (f *Folder) arrived(path string, info fs.FileInfo) {
	key := fileKey{info.Size(), info.ModTime().UnixNano()}
	if id, ok := f.moved[key]; ok {
		if _, known := f.files[path]; !known {
			f.setFile(path, fileState{size: info.Size(), mod: info.ModTime(), id: id})
			f.log.Debug("music folder: file moved", "from", f.orphanPath(id), "to", path, "id", id)
			f.dirty = true
			return
		}
	}
	f.changed(path)
}

// orphanPath is where orphan id's file was; "" when id is not an orphan.
func (f *Folder) orphanPath(id string) string {
	return f.orphans[id].path
}

// forget drops path; when it held the last copy of its track, the track
// becomes an orphan (dropOrphans removes it unless a file comes back with
// it: a rename or a move).
func (f *Folder) forget(path string) {
	st, ok := f.files[path]
	if !ok {
		return
	}
	delete(f.files, path)
	if st.id == "" {
		return
	}
	f.holders[st.id]--
	if f.holders[st.id] <= 0 {
		delete(f.holders, st.id)
		key := fileKey{st.size, st.mod.UnixNano()}
		f.orphans[st.id] = orphan{since: time.Now(), path: path, key: key}
		f.moved[key] = st.id
	}
}

// dropOrphans removes the tracks that have had no file for two Settle
// periods (a file renamed or moved within the folder is matched at once:
// arrived).
func (f *Folder) dropOrphans(ctx context.Context, now time.Time) {
	changed := false
	for id, o := range f.orphans {
		if now.Sub(o.since) < 2*f.cfg.Settle {
			continue
		}
		f.unorphan(id)
		if f.dropIfUnused(ctx, id) {
			changed = true
			f.log.Info("music folder: track removed", "path", o.path, "id", id)
		}
	}
	if changed && f.cfg.OnChange != nil {
		f.cfg.OnChange()
	}
}

// sweep removes, once after the first scan, the folder's tracks (those
// with its Origin) that no file of it holds any more: files removed while
// the server was down. It waits until no file is pending (the store failed
// for some: their tracks are not known yet).
func (f *Folder) sweep(ctx context.Context) {
	if !f.sweepDue || len(f.pending) > 0 || f.storeDown || ctx.Err() != nil {
		return
	}
	list, err := f.cfg.Store.ListTracks(ctx)
	if err != nil {
		f.log.Warn("music folder: listing the library to remove the tracks of files gone; trying again", "err", err)
		return
	}
	f.sweepDue = false
	removed := 0
	for _, t := range list {
		if f.holders[t.ID] > 0 {
			continue
		}
		m, err := f.cfg.Store.Manifest(ctx, t.ID)
		if err != nil || m.Origin != f.origin {
			continue // ingested by hand, by another folder, or gone meanwhile
		}
		if err := f.cfg.Store.DeleteTrack(ctx, t.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			f.log.Warn("music folder: removing a track", "id", t.ID, "err", err)
			continue
		}
		f.log.Info("music folder: track removed: its file went while the server was down", "id", t.ID, "title", m.Title)
		removed++
	}
	if removed > 0 && f.cfg.OnChange != nil {
		f.cfg.OnChange()
	}
}

// dropIfUnused deletes track id from the library when no followed file
// holds it any more, and reports whether it did.
func (f *Folder) dropIfUnused(ctx context.Context, id string) bool {
	if f.holders[id] > 0 {
		return false
	}
	if err := f.cfg.Store.DeleteTrack(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		f.log.Warn("music folder: removing a track", "id", id, "err", err)
		return false
	}
	return true
}

func (f *Folder) trackCount() int {
	return len(f.holders)
}

func (f *Folder) failedCount() int {
	n := 0
	for _, st := range f.files {
		if st.failed {
			n++
		}
	}
	return n
}

// publish copies the counts for Status (a pass over the files: at most
// once a tick).
func (f *Folder) publish(scanned bool) {
	f.dirty = false
	s := Status{Dir: f.dir, Files: len(f.files), Tracks: f.trackCount(), Failed: f.failedCount(), Pending: len(f.pending)}
	f.mu.Lock()
	defer f.mu.Unlock()
	s.Scanned = f.status.Scanned || scanned
	f.status = s
}
