package synth

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"testing"
	"time"
)

// testSong is a short song with every section kind, at 120 bpm.
func testSong(seed uint64, length time.Duration) Song {
	return Song{
		Seed:         seed,
		Length:       length,
		Key:          Key{Tonic: 60, Mode: Major},
		VerseChords:  []int{0, 4, 5, 3},
		ChorusChords: []int{3, 0, 4, 5},
		Sections: []Section{
			{Kind: Intro, Bars: 1}, {Kind: Verse, Bars: 2}, {Kind: Chorus, Bars: 2},
			{Kind: Breakdown, Bars: 2}, {Kind: Outro, Bars: 2},
		},
		Drums: Backbeat,
		Pluck: Arpeggio,
		Bass:  Eighths,
		Lead:  Lead{Ratio: 2, Index: 1.5},
	}
}

// shortLength gives testSong 9 bars at 120 bpm plus the tail.
const shortLength = 20 * time.Second

func renderWAV(t *testing.T, s Song) []byte {
	t.Helper()
	audio, err := Render(s)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var buf bytes.Buffer
	if err := WriteWAV(&buf, audio); err != nil {
		t.Fatalf("write wav: %v", err)
	}
	return buf.Bytes()
}

func TestRenderIsDeterministic(t *testing.T) {
	a := renderWAV(t, testSong(7, shortLength))
	b := renderWAV(t, testSong(7, shortLength))
	if !bytes.Equal(a, b) {
		t.Fatal("two renders of the same song differ")
	}
	c := renderWAV(t, testSong(8, shortLength))
	if bytes.Equal(a, c) {
		t.Fatal("a different seed rendered the same audio")
	}
}

func TestRenderLengthLevelAndNoClipping(t *testing.T) {
	for _, length := range []time.Duration{shortLength, shortLength + 333*time.Millisecond} {
		s := testSong(1, length)
		audio, err := Render(s)
		if err != nil {
			t.Fatalf("render: %v", err)
		}
		want := int(math.Round(length.Seconds() * SampleRate))
		if audio.Len() != want || s.Frames() != want || len(audio.R) != want {
			t.Fatalf("length %v: %d frames (Frames() %d), want %d", length, audio.Len(), s.Frames(), want)
		}
		var sum float64
		for i := range audio.L {
			for _, v := range []float64{audio.L[i], audio.R[i]} {
				if math.IsNaN(v) || math.Abs(v) >= limiterCeiling {
					t.Fatalf("sample %d = %v, want |x| < %v", i, v, limiterCeiling)
				}
				sum += v * v
			}
		}
		rms := math.Sqrt(sum / float64(2*want))
		if rms < 0.03 {
			t.Errorf("RMS %.4f: render is nearly silent", rms)
		}
		if tail := audio.L[want-1]; math.Abs(tail) > 1e-3 {
			t.Errorf("last sample %v, want faded to silence", tail)
		}
	}
}

func TestTempoFillsLength(t *testing.T) {
	s := testSong(1, shortLength) // 9 bars of 4 beats in 18 s
	if got := s.Tempo(); math.Abs(got-120) > 1e-9 {
		t.Fatalf("tempo %v, want 120", got)
	}
}

func TestValidateRejectsBadSongs(t *testing.T) {
	cases := map[string]func(*Song){
		"no sections":  func(s *Song) { s.Sections = nil },
		"zero bars":    func(s *Song) { s.Sections[0].Bars = 0 },
		"unknown kind": func(s *Song) { s.Sections[0].Kind = Outro + 1 },
		"no chords":    func(s *Song) { s.ChorusChords = nil },
		"too fast":     func(s *Song) { s.Length = 5 * time.Second },
		"too slow":     func(s *Song) { s.Length = 10 * time.Minute },
	}
	for name, mutate := range cases {
		s := testSong(1, shortLength)
		mutate(&s)
		if _, err := Render(s); err == nil {
			t.Errorf("%s: Render accepted the song", name)
		}
	}
}

func TestSoftLimitStaysBelowCeiling(t *testing.T) {
	s := NewStereo(5)
	copy(s.L, []float64{0, 1e9, -3, 0.1, -1e-9})
	copy(s.R, []float64{2, -1e9, 0.5, 0, 7})
	SoftLimit(s)
	for i := range s.L {
		if math.Abs(s.L[i]) >= limiterCeiling || math.Abs(s.R[i]) >= limiterCeiling {
			t.Fatalf("frame %d = (%v, %v), want below %v", i, s.L[i], s.R[i], limiterCeiling)
		}
	}
	if s.L[1] <= 0 || s.L[2] >= 0 {
		t.Errorf("signs not kept: %v", s.L)
	}
	// Below the threshold the clipper is the identity; above it, monotonic.
	if softClip(0.3) != 0.3 {
		t.Errorf("softClip(0.3) = %v", softClip(0.3))
	}
	for x := limiterThreshold; x < 4; x += 0.01 {
		if softClip(x+0.01) <= softClip(x) && softClip(x) < limiterCeiling-1e-9 {
			t.Fatalf("softClip not increasing at %v", x)
		}
	}
}

func TestWriteWAV(t *testing.T) {
	s := NewStereo(3)
	copy(s.L, []float64{0, 1.5, 0.5})
	copy(s.R, []float64{-1.5, -0.25, 0})
	var buf bytes.Buffer
	if err := WriteWAV(&buf, s); err != nil {
		t.Fatalf("write: %v", err)
	}
	b := buf.Bytes()
	if len(b) != 44+3*4 || string(b[0:4]) != "RIFF" || string(b[8:16]) != "WAVEfmt " || string(b[36:40]) != "data" {
		t.Fatalf("bad header/length: %q (%d bytes)", b[:44], len(b))
	}
	le := binary.LittleEndian
	if le.Uint32(b[4:]) != uint32(len(b)-8) || le.Uint16(b[22:]) != 2 || le.Uint32(b[24:]) != SampleRate ||
		le.Uint16(b[34:]) != 16 || le.Uint32(b[40:]) != 12 {
		t.Fatalf("bad header fields: % x", b[:44])
	}
	want := []int16{0, -32768, 32767, -8192, 16384, 0}
	for i, w := range want {
		if got := int16(le.Uint16(b[44+2*i:])); got != w {
			t.Errorf("sample %d = %d, want %d", i, got, w)
		}
	}
}

func TestKeyNotesAndChords(t *testing.T) {
	c := Key{Tonic: 60, Mode: Major}
	for deg, want := range map[int]int{0: 60, 4: 67, 7: 72, -1: 59, -7: 48} {
		if got := c.note(deg); got != want {
			t.Errorf("C major degree %d = %d, want %d", deg, got, want)
		}
	}
	if got := c.triad(5); got != [3]int{9, 0, 4} { // vi = A minor
		t.Errorf("C major vi = %v, want A C E", got)
	}
	a := Key{Tonic: 57, Mode: Minor}
	var pent []int
	for p := 0; p <= 5; p++ {
		pent = append(pent, a.pentatonicNote(p))
	}
	if want := []int{57, 60, 62, 64, 67, 69}; !slices.Equal(pent, want) {
		t.Errorf("A minor pentatonic %v, want %v", pent, want)
	}
	if got := a.triad(6); got != [3]int{7, 11, 2} { // VII = G major
		t.Errorf("A minor VII = %v, want G B D", got)
	}
	for pc := 0; pc < 12; pc++ {
		n := placeNote(pc, 60)
		if mod12(n) != pc || n < 54 || n >= 66 {
			t.Errorf("placeNote(%d, 60) = %d", pc, n)
		}
	}
}

func TestMotifStaysInPhraseAndRange(t *testing.T) {
	rng := NewRand(3)
	for i := 0; i < 50; i++ {
		m := newMotif(rng, 0.4, 2, 8).vary(rng, 0.5, 2, 8)
		if len(m) == 0 || m[0].step != 0 {
			t.Fatalf("motif %v does not start on the downbeat", m)
		}
		for j, n := range m {
			if n.pitch < 2 || n.pitch > 8 || n.length < 1 || n.step+n.length > phraseEighths {
				t.Fatalf("note %d of %v out of range", j, m)
			}
			if j > 0 && n.step <= m[j-1].step {
				t.Fatalf("onsets not increasing in %v", m)
			}
		}
	}
}

func TestFitToChordOnStrongBeats(t *testing.T) {
	k := Key{Tonic: 60, Mode: Major}
	chord := k.triad(4) // G B D
	for p := 0; p < 10; p++ {
		if n := fitToChord(k, p, true, chord); !inChord(n, chord) {
			t.Errorf("strong step %d -> %d, not in G major", p, n)
		}
		if n := fitToChord(k, p, false, chord); n != k.pentatonicNote(p) {
			t.Errorf("weak step %d moved to %d", p, n)
		}
	}
}

func TestPluckIsInTune(t *testing.T) {
	const freq = 220.0
	note := pluckNote(freq, 0.5, NewRand(1))
	period := SampleRate / freq
	// The lag of the highest autocorrelation near the expected period.
	best, bestLag := math.Inf(-1), 0
	for lag := int(period) - 10; lag <= int(period)+10; lag++ {
		sum := 0.0
		for i := 2000; i < 12000; i++ {
			sum += note[i] * note[i+lag]
		}
		if sum > best {
			best, bestLag = sum, lag
		}
	}
	if math.Abs(float64(bestLag)-period) > 1 {
		t.Fatalf("pluck period %d samples, want %.2f", bestLag, period)
	}
}

func TestADSR(t *testing.T) {
	e := ADSR{Attack: 0.1, Decay: 0.1, Sustain: 0.5, Release: 0.2}
	for _, c := range []struct{ t, want float64 }{
		{-1, 0}, {0.05, 0.5}, {0.1, 1}, {0.15, 0.75}, {0.5, 0.5}, {1.1, 0.25}, {1.2, 0}, {5, 0},
	} {
		if got := e.Level(c.t, 1); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Level(%v) = %v, want %v", c.t, got, c.want)
		}
	}
	if (ADSR{}).Level(0, 1) != 0 || math.IsNaN((ADSR{}).Level(2, 1)) {
		t.Error("zero envelope misbehaves")
	}
}

func TestRandIsSeeded(t *testing.T) {
	a, b, c := NewRand(42), NewRand(42), NewRand(43)
	same := true
	for i := 0; i < 100; i++ {
		x, y, z := a.Float64(), b.Float64(), c.Float64()
		if x != y {
			t.Fatal("same seed, different sequence")
		}
		if x != z {
			same = false
		}
		if x < 0 || x >= 1 {
			t.Fatalf("Float64 = %v out of [0, 1)", x)
		}
	}
	if same {
		t.Fatal("different seeds gave the same sequence")
	}
}
