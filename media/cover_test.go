package media

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// id3v23 builds an ID3v2.3 tag of the given frames (id → body).
func id3v23(frames ...[2][]byte) []byte {
	var body []byte
	for _, f := range frames {
		n := len(f[1])
		body = append(body, f[0]...)
		body = append(body, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0, 0)
		body = append(body, f[1]...)
	}
	return append(append([]byte{'I', 'D', '3', 3, 0, 0}, syncsafeBytes(len(body))...), body...)
}

// text is a text frame (ISO-8859-1).
func text(id, s string) [2][]byte { return [2][]byte{[]byte(id), append([]byte{0}, s...)} }

// apic is an APIC frame (front cover) holding pic, declared as mime.
func apic(mime string, pic []byte) [2][]byte {
	b := append([]byte{0}, mime...)
	b = append(b, 0, 3, 0) // end of MIME, picture type 3 (front cover), empty description
	return [2][]byte{[]byte("APIC"), append(b, pic...)}
}

// TestCoverAndNumbers: the front cover of the ID3v2 tag is kept with its
// sniffed type and SHA-256, with the album artist, year, track and disc
// numbers; the audio (hence the id) does not change. An oversized picture or
// one that is not an image is skipped with a warning and the rest is kept.
func TestCoverAndNumbers(t *testing.T) {
	base := readFile(t, "testdata/cbr128_44k_stereo.mp3")
	ref, err := Analyze(bytes.NewReader(base), int64(len(base)), "base.mp3")
	if err != nil {
		t.Fatal(err)
	}
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{1}, 4000)...)
	tags := []([2][]byte){text("TIT2", "Song"), text("TPE1", "Band"), text("TALB", "Album"), text("TPE2", "Various"),
		text("TYER", "1999"), text("TRCK", "4/12"), text("TPOS", "2/2")}
	file := append(id3v23(append(tags, apic("image/jpeg", png))...), base...) // a wrong declared type
	tr, err := Analyze(bytes.NewReader(file), int64(len(file)), "x.mp3")
	if err != nil {
		t.Fatal(err)
	}
	m := tr.Manifest
	if m.ID != ref.Manifest.ID {
		t.Errorf("the tag changed the id: %s vs %s", m.ID, ref.Manifest.ID)
	}
	if m.Title != "Song" || m.AlbumArtist != "Various" || m.Year != 1999 || m.TrackNo != 4 || m.DiscNo != 2 {
		t.Errorf("tags: %+v", m)
	}
	sum := sha256.Sum256(png)
	if m.Cover == nil || tr.Cover == nil || m.Cover.MIME != "image/png" || m.Cover.SHA256 != hex.EncodeToString(sum[:]) ||
		m.Cover.Size != len(png) || !bytes.Equal(tr.Cover.Data, png) {
		t.Fatalf("cover %+v", m.Cover)
	}
	if len(tr.Warnings) != 0 {
		t.Errorf("warnings %v", tr.Warnings)
	}
	if s := m.Summary(); s.Cover != m.Cover.SHA256 || s.TrackNo != 4 {
		t.Errorf("summary %+v", s)
	}

	for name, pic := range map[string][]byte{
		"oversized":    append([]byte("\xff\xd8\xff\xe0"), make([]byte, MaxCoverBytes)...),
		"not an image": []byte("<html><script>alert(1)</script></html>"),
	} {
		file := append(id3v23(append(tags, apic("image/jpeg", pic))...), base...)
		tr, err := Analyze(bytes.NewReader(file), int64(len(file)), "x.mp3")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tr.Cover != nil || tr.Manifest.Cover != nil {
			t.Errorf("%s: kept as cover", name)
		}
		if len(tr.Warnings) != 1 || !strings.Contains(tr.Warnings[0], "cover art") {
			t.Errorf("%s: warnings %v", name, tr.Warnings)
		}
		if tr.Manifest.Title != "Song" || tr.Manifest.TrackNo != 4 {
			t.Errorf("%s: the other tags were lost: %+v", name, tr.Manifest)
		}
	}
}
