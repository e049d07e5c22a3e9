package synth

// A motif is a melodic phrase of phraseEighths eighth notes whose pitches
// are steps of the key's pentatonic scale. It is generated once per song
// section type and repeated with small variations, so the melody is
// recognizable but not a loop.

// phraseEighths is the length of a motif: two bars of eighth notes.
const phraseEighths = 16

// melodySteps are the pitch moves of the motif random walk, in pentatonic
// steps; small moves are more likely.
func melodySteps() []int { return []int{-2, -1, -1, 0, 1, 1, 2} }

type motifNote struct {
	step   int // onset in eighths from the phrase start
	length int // in eighths
	pitch  int // pentatonic step (0 = tonic)
}

type motif []motifNote

// newMotif generates a phrase whose pitches stay within [low, high]
// pentatonic steps. density is the chance of an onset on an off-beat
// eighth; on-beat eighths are more likely.
func newMotif(rng *Rand, density float64, low, high int) motif {
	const lastOnset = phraseEighths - 4 // leave the phrase end to breathe
	var onsets []int
	for s := 0; s <= lastOnset; s++ {
		p := density
		if s%2 == 0 {
			p += 0.25
		}
		if s == 0 || rng.Chance(p) {
			onsets = append(onsets, s)
		}
	}
	steps := melodySteps()
	pitch := low + (high-low)/2
	m := make(motif, len(onsets))
	for i, s := range onsets {
		pitch = clamp(pitch+steps[rng.Intn(len(steps))], low, high)
		end := phraseEighths
		if i+1 < len(onsets) {
			end = onsets[i+1]
		}
		m[i] = motifNote{step: s, length: min(end-s, 4), pitch: pitch}
	}
	return m
}

// vary returns a copy of m where each note but the first moves by one
// pentatonic step with probability amount, staying within [low, high].
func (m motif) vary(rng *Rand, amount float64, low, high int) motif {
	out := make(motif, len(m))
	copy(out, m)
	for i := 1; i < len(out); i++ {
		if rng.Chance(amount) {
			delta := 1
			if rng.Chance(0.5) {
				delta = -1
			}
			out[i].pitch = clamp(out[i].pitch+delta, low, high)
		}
	}
	return out
}

// fitToChord returns the MIDI note for pentatonic step p. Notes on strong
// beats move to the nearest pentatonic step that is a chord tone, so the
// melody agrees with the harmony; other notes pass freely.
func fitToChord(k Key, p int, strong bool, chord [3]int) int {
	if !strong {
		return k.pentatonicNote(p)
	}
	for _, d := range []int{0, -1, 1, -2, 2} {
		if n := k.pentatonicNote(p + d); inChord(n, chord) {
			return n
		}
	}
	return k.pentatonicNote(p)
}

func clamp(v, lo, hi int) int {
	return max(lo, min(hi, v))
}
