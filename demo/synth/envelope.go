package synth

// ADSR is a linear attack-decay-sustain-release envelope. Times are in
// seconds, Sustain is a level in [0, 1].
type ADSR struct {
	Attack, Decay, Sustain, Release float64
}

// minStage is the shortest stage, so a zero time never divides by zero.
const minStage = 1.0 / SampleRate

// Level returns the envelope level t seconds after note-on for a note held
// for gate seconds.
func (e ADSR) Level(t, gate float64) float64 {
	if t < 0 {
		return 0
	}
	if t < gate {
		return e.held(t)
	}
	start := e.held(gate)
	rel := max(e.Release, minStage)
	dt := t - gate
	if dt >= rel {
		return 0
	}
	return start * (1 - dt/rel)
}

// held is the level while the note is still held.
func (e ADSR) held(t float64) float64 {
	att := max(e.Attack, minStage)
	dec := max(e.Decay, minStage)
	switch {
	case t < att:
		return t / att
	case t < att+dec:
		return 1 - (1-e.Sustain)*(t-att)/dec
	}
	return e.Sustain
}

// Length is how long, in seconds, a note held for gate seconds sounds.
func (e ADSR) Length(gate float64) float64 {
	return gate + e.Release
}
