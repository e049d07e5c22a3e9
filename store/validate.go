package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/ztream/ztream/media"
)

// ValidateManifest checks the structural consistency a store relies on: a
// non-empty ID, at least one chunk, chunk i having Seq i, non-negative sizes
// summing to m.Size and 64-digit lowercase hex SHA-256 values. Errors wrap
// ErrInvalid.
func ValidateManifest(m *media.Manifest) error {
	if m == nil {
		return fmt.Errorf("nil manifest: %w", ErrInvalid)
	}
	if m.ID == "" {
		return fmt.Errorf("manifest has an empty id: %w", ErrInvalid)
	}
	if len(m.Chunks) == 0 {
		return fmt.Errorf("manifest %s has no chunks: %w", m.ID, ErrInvalid)
	}
	var total int64
	for i, c := range m.Chunks {
		if c.Seq != i {
			return fmt.Errorf("manifest %s: chunk %d has seq %d: %w", m.ID, i, c.Seq, ErrInvalid)
		}
		if c.Size < 0 {
			return fmt.Errorf("manifest %s: chunk %d has size %d: %w", m.ID, i, c.Size, ErrInvalid)
		}
		if !isLowerHex(c.SHA256, sha256.Size*2) {
			return fmt.Errorf("manifest %s: chunk %d sha256 %q is not 64 lowercase hex digits: %w",
				m.ID, i, c.SHA256, ErrInvalid)
		}
		total += int64(c.Size)
	}
	if total != m.Size {
		return fmt.Errorf("manifest %s: size %d but chunks sum to %d: %w", m.ID, m.Size, total, ErrInvalid)
	}
	if c := m.Cover; c != nil {
		if err := validateCoverRef(*c); err != nil {
			return fmt.Errorf("manifest %s: %w", m.ID, err)
		}
	}
	return nil
}

func validateCoverRef(c media.CoverRef) error {
	if !isLowerHex(c.SHA256, sha256.Size*2) {
		return fmt.Errorf("cover sha256 %q is not 64 lowercase hex digits: %w", c.SHA256, ErrInvalid)
	}
	if !media.IsCoverType(c.MIME) {
		return fmt.Errorf("cover type %q is not JPEG, PNG, GIF or WebP: %w", c.MIME, ErrInvalid)
	}
	if c.Size <= 0 || c.Size > media.MaxCoverBytes {
		return fmt.Errorf("cover size %d outside 1..%d: %w", c.Size, media.MaxCoverBytes, ErrInvalid)
	}
	return nil
}

// ValidateCover checks a cover picture against its reference: a valid
// reference whose size and SHA-256 match data. Errors wrap ErrInvalid.
func ValidateCover(c media.CoverRef, data []byte) error {
	if err := validateCoverRef(c); err != nil {
		return err
	}
	if len(data) != c.Size {
		return fmt.Errorf("cover %s has %d bytes, its reference says %d: %w", c.SHA256, len(data), c.Size, ErrInvalid)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != c.SHA256 {
		return fmt.Errorf("cover bytes do not match sha256 %s: %w", c.SHA256, ErrInvalid)
	}
	return nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CheckChunk verifies that data is chunk seq of m: its size and SHA-256 must
// match the manifest. Errors wrap ErrInvalid. m must have passed
// ValidateManifest.
func CheckChunk(m *media.Manifest, seq int, data []byte) error {
	if seq < 0 || seq >= len(m.Chunks) {
		return fmt.Errorf("track %s: chunk %d outside [0,%d): %w", m.ID, seq, len(m.Chunks), ErrInvalid)
	}
	ci := m.Chunks[seq]
	if len(data) != ci.Size {
		return fmt.Errorf("track %s: chunk %d has %d bytes, manifest says %d: %w",
			m.ID, seq, len(data), ci.Size, ErrInvalid)
	}
	sum := sha256.Sum256(data)
	want, err := hex.DecodeString(ci.SHA256)
	if err != nil || !bytes.Equal(sum[:], want) {
		return fmt.Errorf("track %s: chunk %d sha256 %x does not match manifest %s: %w",
			m.ID, seq, sum, ci.SHA256, ErrInvalid)
	}
	return nil
}

// CheckRange validates a chunk range [from, to) against a track of n chunks.
// Errors wrap ErrInvalid.
func CheckRange(id string, n, from, to int) error {
	if from < 0 || to > n || from >= to {
		return fmt.Errorf("track %s: chunk range [%d,%d) outside [0,%d) or empty: %w", id, from, to, n, ErrInvalid)
	}
	return nil
}

// SortSummaries sorts a catalog the way ListTracks returns it: byte-wise by
// artist, album, title, then id.
func SortSummaries(list []media.Summary) {
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.Artist != b.Artist {
			return a.Artist < b.Artist
		}
		if a.Album != b.Album {
			return a.Album < b.Album
		}
		if a.Title != b.Title {
			return a.Title < b.Title
		}
		return a.ID < b.ID
	})
}
