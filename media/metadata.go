package media

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/dhowden/tag"
)

// maxTagRead bounds the bytes handed to the tag reader, which loads whole
// ID3v2 frames (cover art included) into memory.
const maxTagRead = 16 << 20

// maxTagValue bounds the length in bytes of a title, artist or album.
const maxTagValue = 512

// metadata is what the catalog takes from the tags.
type metadata struct {
	title, artist, album, albumArtist string
	year, track, disc                 int
	cover                             *Cover
	warnings                          []string
	read                              bool // the tag library read a tag
}

// MaxCoverBytes bounds an embedded picture kept as cover art; a larger one
// is skipped with a warning.
const MaxCoverBytes = 2 << 20

// Cover is a track's cover art: the embedded picture (ID3v2 APIC) of its
// file, its content type sniffed from the bytes (JPEG, PNG, GIF or WebP).
type Cover struct {
	MIME string
	Data []byte
}

// IsCoverType reports whether a picture of content type mime is kept as
// cover art: JPEG, PNG, GIF or WebP.
func IsCoverType(mime string) bool {
	switch mime {
	case "image/jpeg", "image/png", "image/gif", "image/webp":
		return true
	}
	return false
}

// readMetadata reads the catalog text, numbers and cover art from the
// ID3v2 tag at the start of the input (limited to its declared size, at
// most maxTagRead bytes) or else the text from an ID3v1 tag at the end. Any
// failure, even a panic in the tag library, yields empty metadata: tags are
// optional. A picture that is too large or not an image is skipped with a
// warning.
func readMetadata(r io.ReaderAt, size, tagsEnd int64) (md metadata) {
	defer func() {
		if recover() != nil {
			md = metadata{warnings: []string{"unreadable tags ignored"}}
		}
	}()
	n := size
	if tagsEnd > 0 && tagsEnd < size {
		// Leading tags exist: read only them (the reader then finds no ID3v1).
		if tagsEnd > maxTagRead {
			md.warnings = append(md.warnings, fmt.Sprintf("tags of %d bytes: only the first %d read", tagsEnd, maxTagRead))
		}
		n = min(tagsEnd, maxTagRead)
	}
	m, err := tag.ReadFrom(io.NewSectionReader(r, 0, n))
	if err != nil {
		return md
	}
	md.read = true
	md.title, md.artist, md.album, md.albumArtist = clean(m.Title()), clean(m.Artist()), clean(m.Album()), clean(m.AlbumArtist())
	md.year = bounded(m.Year(), 0, 9999)
	track, _ := m.Track()
	disc, _ := m.Disc()
	md.track, md.disc = bounded(track, 0, 9999), bounded(disc, 0, 999)
	if p := m.Picture(); p != nil && len(p.Data) > 0 {
		switch typ := http.DetectContentType(p.Data); {
		case len(p.Data) > MaxCoverBytes:
			md.warnings = append(md.warnings, fmt.Sprintf("cover art of %d bytes skipped (limit %d)", len(p.Data), MaxCoverBytes))
		case !IsCoverType(typ):
			md.warnings = append(md.warnings, fmt.Sprintf("cover art skipped: %s, not JPEG, PNG, GIF or WebP", typ))
		default:
			md.cover = &Cover{MIME: typ, Data: p.Data}
		}
	}
	return md
}

// bounded returns v if lo ≤ v ≤ hi, else 0 (unknown).
func bounded(v, lo, hi int) int {
	if v < lo || v > hi {
		return 0
	}
	return v
}

// clean makes a tag value valid, trimmed, single-line UTF-8 of bounded length.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7F {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxTagValue {
		cut := maxTagValue
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// Tags is what the catalog takes from a file's tags.
type Tags struct {
	Title, Artist, Album, AlbumArtist string
	Year, TrackNo, DiscNo             int
	// Cover is the embedded picture, nil without one (or when it was
	// skipped: Warnings say why).
	Cover    *Cover
	Warnings []string
}

// ReadTags reads the tags of the first size bytes of r, in any format the
// tag library knows: ID3v2 (MP3), MP4 (M4A), FLAC and Vorbis comments (Ogg,
// Opus). ok is false when no tags could be read, which is not an error (an
// untagged file, or a head cut before its tags end). Values are cleaned as
// Analyze cleans them.
func ReadTags(r io.ReaderAt, size int64) (t Tags, ok bool) {
	md := readMetadata(r, min(size, maxTagRead), 0)
	t = Tags{Title: md.title, Artist: md.artist, Album: md.album, AlbumArtist: md.albumArtist,
		Year: md.year, TrackNo: md.track, DiscNo: md.disc, Cover: md.cover, Warnings: md.warnings}
	return t, md.read
}
