package origin

import (
	"bytes"
	"net/url"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ztream/ztream/transcode"
)

// Item is one audio file an index names.
type Item struct {
	// URL is the file's absolute address.
	URL *url.URL
	// Format is "MP3" or transcode.FormatOf's name, from the path's
	// extension.
	Format string
	// Artist, Title and Seconds come from the entry's #EXTINF line ("",
	// "" and -1 without one; "Artist - Title" is split): the catalog's
	// fallback when the file has no tags.
	Artist, Title string
	Seconds       int
}

// Skipped counts what an index named and the catalog leaves out, by reason.
type Skipped struct {
	// OtherHost: entries on another scheme, host or port than the index
	// (an origin cannot send the hub to fetch from elsewhere).
	OtherHost int
	// NotAudio: entries whose extension is not .mp3 nor one of
	// transcode.Extensions.
	NotAudio int
	// Invalid: lines that are not URLs, or longer than maxLine.
	Invalid int
	// Duplicate: entries named twice.
	Duplicate int
	// OverLimit: entries past maxItems.
	OverLimit int
	// Example is one skipped entry, for the log.
	Example string
}

// Total is the number of skipped entries.
func (s Skipped) Total() int {
	return s.OtherHost + s.NotAudio + s.Invalid + s.Duplicate + s.OverLimit
}

// maxLine bounds one line of an index; a longer one is skipped (Invalid).
const maxLine = 8 << 10

// ParseM3U reads an M3U or M3U8 playlist fetched from base: one entry per
// line, a URL relative to base or absolute, "#" lines comments except
// #EXTINF (duration and title of the next entry). It keeps at most maxItems
// entries; what it leaves out is counted in Skipped. The input is UTF-8
// (M3U8) or else read as Latin-1 (M3U).
func ParseM3U(base *url.URL, data []byte, maxItems int) ([]Item, Skipped) {
	var (
		items   []Item
		skipped Skipped
		seen    = make(map[string]bool)
		title   string
		seconds = -1
	)
	skip := func(n *int, entry string) {
		*n++
		if skipped.Example == "" {
			skipped.Example = entry
		}
	}
	for rest := data; len(rest) > 0; {
		raw, after, _ := bytes.Cut(rest, []byte("\n"))
		rest = after
		if len(raw) > maxLine {
			skip(&skipped.Invalid, string(raw[:64])+"...")
			title, seconds = "", -1
			continue
		}
		line := strings.TrimSpace(strings.TrimPrefix(string(raw), "\ufeff"))
		if !utf8.ValidString(line) {
			line = latin1(line)
		}
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "#EXTINF:"):
			seconds, title = extinf(line[len("#EXTINF:"):])
			continue
		case strings.HasPrefix(line, "#"):
			continue
		}
		t, s := title, seconds
		title, seconds = "", -1
		var artist string
		if a, rest, ok := strings.Cut(t, " - "); ok && a != "" && rest != "" {
			artist, t = strings.TrimSpace(a), strings.TrimSpace(rest)
		}
		ref, err := url.Parse(line)
		if err != nil {
			skip(&skipped.Invalid, line)
			continue
		}
		u := base.ResolveReference(ref)
		u.Fragment = ""
		// The index's own credentials, if any, carry over to its entries;
		// an entry may not bring others.
		if u.Scheme != base.Scheme || u.Host != base.Host || ref.User != nil && ref.User.String() != base.User.String() {
			skip(&skipped.OtherHost, u.Redacted())
			continue
		}
		format := formatOf(u.Path)
		if format == "" {
			skip(&skipped.NotAudio, u.String())
			continue
		}
		if seen[u.String()] {
			skip(&skipped.Duplicate, u.String())
			continue
		}
		if len(items) >= maxItems {
			skip(&skipped.OverLimit, u.String())
			continue
		}
		seen[u.String()] = true
		items = append(items, Item{URL: u, Format: format, Artist: artist, Title: t, Seconds: s})
	}
	return items, skipped
}

// formatOf names the format of a URL path by its extension: "MP3", a
// transcode format, or "".
func formatOf(p string) string {
	if strings.EqualFold(path.Ext(p), ".mp3") {
		return "MP3"
	}
	return transcode.FormatOf(p)
}

// extinf reads "#EXTINF:" 's value: "<seconds>[ attributes],<title>".
func extinf(v string) (int, string) {
	dur, title, _ := strings.Cut(v, ",")
	if i := strings.IndexByte(dur, ' '); i >= 0 {
		dur = dur[:i] // attributes (tvg-id="...") follow
	}
	s := -1
	if f, err := strconv.ParseFloat(strings.TrimSpace(dur), 64); err == nil && f >= 0 && f < 1e6 {
		s = int(f)
	}
	return s, strings.TrimSpace(title)
}

// latin1 reads s as ISO 8859-1.
func latin1(s string) string {
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}
