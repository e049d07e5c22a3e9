package media

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestEstimateDuration: from its first 64 KiB, each MP3 fixture's duration
// is estimated within 2 % (exact from a Xing/Info frame count, close from a
// CBR bitrate); a FLAC's comes from STREAMINFO; text tells nothing.
func TestEstimateDuration(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.mp3"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := OpenFile(p)
		if err != nil {
			continue // a fixture meant to be refused
		}
		want := time.Duration(tr.Manifest.DurationMS) * time.Millisecond
		tr.Close()
		head := data[:min(len(data), 64<<10)]
		got, ok := EstimateDuration(head, int64(len(data)))
		if !ok {
			t.Errorf("%s: no estimate", p)
			continue
		}
		if diff := (got - want).Seconds(); diff > 0.02*want.Seconds()+0.05 || diff < -0.02*want.Seconds()-0.05 {
			t.Errorf("%s: estimated %s, the audio is %s", p, got, want)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d fixtures checked", checked)
	}
	// STREAMINFO of 44.1 kHz stereo, 16 bits, 441,000 samples: 10 s.
	flac := []byte("fLaC\x00\x00\x00\x22" + "\x10\x00\x10\x00\x00\x00\x00\x00\x00\x00" +
		"\x0a\xc4\x42\xf0\x00\x06\xba\xa8" + string(make([]byte, 16)))
	if got, ok := EstimateDuration(flac, 1<<20); !ok || got != 10*time.Second {
		t.Errorf("FLAC: %s, %v; want 10s", got, ok)
	}
	for _, bad := range [][]byte{[]byte("#EXTM3U\nnot audio at all"), nil, flac[:20]} {
		if got, ok := EstimateDuration(bad, 1000); ok {
			t.Errorf("%q: estimated %s", bad, got)
		}
	}
}
