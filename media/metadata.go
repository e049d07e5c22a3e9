package media

import (
	"io"
	"strings"
	"unicode/utf8"

	"github.com/dhowden/tag"
)

// maxTagRead bounds the bytes handed to the tag reader, which loads whole
// ID3v2 frames (cover art included) into memory.
const maxTagRead = 16 << 20

// maxTagValue bounds the length in bytes of a title, artist or album.
const maxTagValue = 512

// metadata is the catalog text read from the tags.
type metadata struct {
	title, artist, album string
}

// readMetadata reads title, artist and album from the ID3v2 tag at the start
// of the input (limited to its declared size, at most maxTagRead bytes) or
// else from an ID3v1 tag at the end. Any failure, even a panic in the tag
// library, yields empty metadata: tags are optional.
func readMetadata(r io.ReaderAt, size, tagsEnd int64) (md metadata) {
	defer func() {
		if recover() != nil {
			md = metadata{}
		}
	}()
	n := size
	if tagsEnd > 0 && tagsEnd < size {
		// Leading tags exist: read only them (the reader then finds no ID3v1).
		n = min(tagsEnd, maxTagRead)
	}
	m, err := tag.ReadFrom(io.NewSectionReader(r, 0, n))
	if err != nil {
		return metadata{}
	}
	return metadata{title: clean(m.Title()), artist: clean(m.Artist()), album: clean(m.Album())}
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
