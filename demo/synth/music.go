package synth

// Mode is the scale of a key.
type Mode int

// The supported modes.
const (
	Major Mode = iota // Ionian
	Minor             // natural minor (Aeolian)
)

// intervals returns the semitones above the tonic of the seven scale degrees.
func (m Mode) intervals() [7]int {
	if m == Minor {
		return [7]int{0, 2, 3, 5, 7, 8, 10}
	}
	return [7]int{0, 2, 4, 5, 7, 9, 11}
}

// pentatonic returns the five scale degrees of the mode's pentatonic scale.
func (m Mode) pentatonic() [5]int {
	if m == Minor {
		return [5]int{0, 2, 3, 4, 6}
	}
	return [5]int{0, 1, 2, 4, 5}
}

// Key is a tonal center: a tonic and a mode.
type Key struct {
	// Tonic is the MIDI note of the tonic around which melodies sit (60 = C4).
	Tonic int
	Mode  Mode
}

// note returns the MIDI note of scale degree deg counted from the tonic
// (0 = tonic, 7 = the tonic an octave up, -1 = the leading tone below).
func (k Key) note(deg int) int {
	octave := floorDiv(deg, 7)
	return k.Tonic + 12*octave + k.Mode.intervals()[deg-7*octave]
}

// pentatonicNote returns the MIDI note of step p of the key's pentatonic
// scale (0 = tonic, 5 = the tonic an octave up).
func (k Key) pentatonicNote(p int) int {
	octave := floorDiv(p, 5)
	return k.note(k.Mode.pentatonic()[p-5*octave] + 7*octave)
}

// triad returns the pitch classes of the diatonic triad built on degree deg:
// root, third, fifth.
func (k Key) triad(deg int) [3]int {
	return [3]int{mod12(k.note(deg)), mod12(k.note(deg + 2)), mod12(k.note(deg + 4))}
}

// placeNote places pitch class pc in the octave [center-6, center+6).
func placeNote(pc, center int) int {
	n := center - 6 + mod12(pc-(center-6))
	return n
}

// inChord reports whether MIDI note n belongs to the chord's pitch classes.
func inChord(n int, chord [3]int) bool {
	for _, pc := range chord {
		if mod12(n) == pc {
			return true
		}
	}
	return false
}

func mod12(n int) int {
	return ((n % 12) + 12) % 12
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
