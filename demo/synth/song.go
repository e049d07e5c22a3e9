package synth

import (
	"errors"
	"fmt"
	"time"
)

// SectionKind is the role of a section in the song structure; it decides
// which instruments play.
type SectionKind int

// The section kinds.
const (
	Intro     SectionKind = iota // pad and plucks, hi-hats joining
	Verse                        // full groove, verse melody
	Chorus                       // everything, brighter, chorus melody
	Breakdown                    // no drums, pad and an echoing melody, then a build
	Outro                        // chorus groove thinning out under the fade
)

// Section is a run of bars of one kind. Bars should be a multiple of the
// progression length so every section starts on its first chord.
type Section struct {
	Kind SectionKind
	Bars int
}

// DrumStyle is the drum pattern of a song.
type DrumStyle int

// The drum styles.
const (
	Backbeat    DrumStyle = iota // pop beat, snare on 2 and 4
	FourOnFloor                  // kick on every beat, open hats off the beat
	HalfTime                     // snare on 3, laid back
)

// PluckStyle is how the plucked guitar-like part plays the chords.
type PluckStyle int

// The pluck styles.
const (
	Arpeggio PluckStyle = iota // broken chord in eighths
	Offbeat                    // short chord stabs off the beat
	Strum                      // strummed chords on the beat
)

// BassStyle is the rhythm of the bass line.
type BassStyle int

// The bass styles.
const (
	Eighths    BassStyle = iota // driving root eighths with octave jumps
	Syncopated                  // dotted pattern
	Pulse                       // half notes
)

// Song is everything needed to render a track. Rendering is a pure
// function of the Song: the same Song always gives the same samples.
type Song struct {
	Seed uint64
	// Length is the exact length of the render. The bars of Sections fill
	// it except for the last tailSeconds, where the reverb rings out; the
	// tempo follows.
	Length time.Duration
	Key    Key
	// VerseChords and ChorusChords are progressions of scale degrees
	// (0 = I, 4 = V, 5 = vi), one chord per bar, repeated through a section.
	// Intro, verse and breakdown use VerseChords; chorus and outro ChorusChords.
	VerseChords, ChorusChords []int
	Sections                  []Section
	Drums                     DrumStyle
	Pluck                     PluckStyle
	Bass                      BassStyle
	Lead                      Lead
}

// tailSeconds is the time after the last bar, left for the reverb tail.
const tailSeconds = 2.0

// Tempo limits accepted by Render, in beats per minute.
const (
	minTempo = 50
	maxTempo = 200
)

// beatsPerBar and stepsPerBar: songs are in 4/4, sequenced in 16th notes.
const (
	beatsPerBar = 4
	stepsPerBar = 16
)

// Bars returns the total number of bars of the song's sections.
func (s Song) Bars() int {
	n := 0
	for _, sec := range s.Sections {
		n += sec.Bars
	}
	return n
}

// Tempo returns the tempo in beats per minute at which the sections fill
// Length minus the tail.
func (s Song) Tempo() float64 {
	music := s.Length.Seconds() - tailSeconds
	if music <= 0 {
		return 0
	}
	return float64(s.Bars()*beatsPerBar) * 60 / music
}

// Frames returns the number of sample frames Render produces.
func (s Song) Frames() int {
	return seconds(s.Length.Seconds())
}

// Validate reports whether s can be rendered.
func (s Song) Validate() error {
	if len(s.Sections) == 0 {
		return errors.New("song has no sections")
	}
	for i, sec := range s.Sections {
		if sec.Bars <= 0 {
			return fmt.Errorf("section %d has %d bars", i, sec.Bars)
		}
		if sec.Kind < Intro || sec.Kind > Outro {
			return fmt.Errorf("section %d has unknown kind %d", i, sec.Kind)
		}
	}
	if len(s.VerseChords) == 0 || len(s.ChorusChords) == 0 {
		return errors.New("song needs verse and chorus chords")
	}
	if t := s.Tempo(); t < minTempo || t > maxTempo {
		return fmt.Errorf("tempo %.1f bpm out of range [%d, %d]: adjust Length or bars", t, minTempo, maxTempo)
	}
	return nil
}

// Render synthesizes the song to a stereo signal of exactly s.Frames()
// frames whose samples are all below 1 in magnitude.
func Render(s Song) (*Stereo, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	r := newRenderer(s)
	bar := 0
	for i, sec := range s.Sections {
		next := SectionKind(-1)
		if i+1 < len(s.Sections) {
			next = s.Sections[i+1].Kind
		}
		r.section(sec, bar, next)
		bar += sec.Bars
	}
	return r.master(), nil
}
