package origin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"

	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/media"
)

// catalogFileVersion is the format of Config.CatalogFile.
const catalogFileVersion = 1

// maxCatalogFileBytes bounds the catalog file read at start (100,000
// entries take about 50 MB).
const maxCatalogFileBytes = 256 << 20

// savedCatalog is Config.CatalogFile's content: the catalog as the last run
// left it, so that a restart does not read every file's tags again.
type savedCatalog struct {
	Version int `json:"version"`
	// Origin is the Origin's tag (of its index URL); Bitrate the
	// transcoder's. Both are part of the track ids: a file of another
	// index or bitrate is not used.
	Origin  string       `json:"origin"`
	Bitrate int          `json:"bitrate"`
	Entries []savedEntry `json:"entries"`
}

// savedEntry is one catalogued file.
type savedEntry struct {
	// URL is the file's, without credentials; Credentials says it had the
	// index's (an entry with others is never catalogued), added back when
	// read. The file holds no password.
	URL          string        `json:"url"`
	Credentials  bool          `json:"credentials,omitempty"`
	Format       string        `json:"format"`
	Artist       string        `json:"extinf_artist,omitempty"`
	Title        string        `json:"extinf_title,omitempty"`
	Seconds      int           `json:"extinf_seconds"`
	ID           string        `json:"id"`
	ETag         string        `json:"etag,omitempty"`
	LastModified string        `json:"last_modified,omitempty"`
	Size         int64         `json:"size"`
	Summary      media.Summary `json:"summary"`
}

// restoreCatalog puts the entries of Config.CatalogFile in the catalog and
// returns how many; a missing file is no error, and an entry that does not
// check out (its id is not the one its URL and version give) is left out.
// The refresh that follows reads only the files it does not name.
func (o *Origin) restoreCatalog() (int, error) {
	if o.cfg.CatalogFile == "" {
		return 0, nil
	}
	f, err := os.Open(o.cfg.CatalogFile)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var saved savedCatalog
	dec := json.NewDecoder(io.LimitReader(f, maxCatalogFileBytes))
	if err := dec.Decode(&saved); err != nil {
		return 0, fmt.Errorf("%s: %w", o.cfg.CatalogFile, err)
	}
	switch {
	case saved.Version != catalogFileVersion:
		return 0, fmt.Errorf("%s: format %d, not %d: read the files again", o.cfg.CatalogFile, saved.Version, catalogFileVersion)
	case saved.Origin != o.tag:
		return 0, fmt.Errorf("%s: of another playlist URL: read the files again", o.cfg.CatalogFile)
	case saved.Bitrate != o.bitrate():
		return 0, fmt.Errorf("%s: of another --transcode-bitrate (%d): read the files again", o.cfg.CatalogFile, saved.Bitrate)
	}
	n := 0
	for _, s := range saved.Entries {
		if n >= o.cfg.MaxEntries {
			break
		}
		e, ok := o.savedToEntry(s)
		if !ok {
			continue
		}
		o.add(e)
		n++
	}
	if skipped := len(saved.Entries) - n; skipped > 0 {
		o.log.Warn("origin: catalog file entries left out", "file", o.cfg.CatalogFile, "entries", skipped)
	}
	return n, nil
}

// savedToEntry checks s and makes it an entry.
func (o *Origin) savedToEntry(s savedEntry) (*entry, bool) {
	u, err := url.Parse(s.URL)
	// The index's host (its scheme may be another: a redirect to https).
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Hostname() != o.index.Hostname() || u.User != nil {
		return nil, false
	}
	if s.Credentials {
		u.User = o.index.User
	}
	it := Item{URL: u, Format: s.Format, Artist: s.Artist, Title: s.Title, Seconds: s.Seconds}
	v := version{etag: s.ETag, lastModified: s.LastModified, size: s.Size}
	if !chunkproto.ValidTrackID(s.ID) || s.Summary.ID != s.ID || o.idOf(it, v) != s.ID {
		return nil, false
	}
	return &entry{item: it, id: s.ID, etag: s.ETag, lastModified: s.LastModified, size: s.Size, summary: s.Summary}, true
}

// saveCatalog writes the catalog to Config.CatalogFile when it changed
// since it was last written; the file is replaced whole (a crash leaves
// the old one).
func (o *Origin) saveCatalog() error {
	if o.cfg.CatalogFile == "" {
		return nil
	}
	o.mu.Lock()
	gen := o.catalogGen
	if gen == o.savedGen {
		o.mu.Unlock()
		return nil
	}
	saved := savedCatalog{Version: catalogFileVersion, Origin: o.tag, Bitrate: o.bitrate(),
		Entries: make([]savedEntry, 0, len(o.entries))}
	for _, e := range o.entries {
		u := *e.item.URL
		creds := u.User != nil
		u.User = nil
		saved.Entries = append(saved.Entries, savedEntry{URL: u.String(), Credentials: creds, Format: e.item.Format, Artist: e.item.Artist,
			Title: e.item.Title, Seconds: e.item.Seconds, ID: e.id, ETag: e.etag, LastModified: e.lastModified,
			Size: e.size, Summary: e.summary})
	}
	o.mu.Unlock()
	sort.Slice(saved.Entries, func(i, j int) bool { return saved.Entries[i].URL < saved.Entries[j].URL })
	if err := writeFileAtomic(o.cfg.CatalogFile, saved); err != nil {
		return err
	}
	o.mu.Lock()
	o.savedGen = gen
	o.mu.Unlock()
	return nil
}

// writeFileAtomic writes v as JSON to a file beside path, then renames it
// over path.
func writeFileAtomic(path string, v any) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // after the rename, nothing is there
	enc := json.NewEncoder(tmp)
	if err := enc.Encode(v); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}
