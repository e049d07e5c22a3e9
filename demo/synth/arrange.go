package synth

// Mix levels and placements of the parts.
const (
	padGain     = 0.13
	pluckGain   = 0.26
	bassGain    = 0.5
	leadGain    = 0.26
	kickGain    = 0.85
	snareGain   = 0.42
	hatGain     = 0.11
	openHatGain = 0.09
	crashGain   = 0.2

	// Octave placement around the key's tonic, in semitones.
	padCenter   = 0
	pluckCenter = 7
	bassCenter  = -24

	// Pentatonic ranges of the verse and chorus melodies.
	verseLow, verseHigh   = 0, 7
	chorusLow, chorusHigh = 3, 10

	// Echo of the melody, in beats, and its feedback.
	delayBeats    = 0.75
	delayFeedback = 0.38
	// Level of the reverb and echo returns in the master.
	reverbReturn = 1.0
	delayReturn  = 0.8
	// introFadeSeconds avoids a click at the very start.
	introFadeSeconds = 0.05
)

// renderer turns a Song into notes on a mixer.
type renderer struct {
	song Song
	mix  *mixer
	// compose drives musical choices, noise drives sound details; keeping
	// them apart means timbre tweaks do not change the tune.
	compose, noise *Rand
	barFrames      float64
	verseMotif     motif
	chorusMotif    motif
	fadeStart      int
}

func newRenderer(s Song) *renderer {
	r := &renderer{
		song:      s,
		mix:       newMixer(s.Frames()),
		compose:   NewRand(s.Seed),
		noise:     NewRand(s.Seed ^ 0x5eed_0f_a0d10),
		barFrames: SampleRate * 60 / s.Tempo() * beatsPerBar,
		fadeStart: -1,
	}
	r.verseMotif = newMotif(r.compose, 0.3, verseLow, verseHigh)
	r.chorusMotif = newMotif(r.compose, 0.45, chorusLow, chorusHigh)
	return r
}

// frame returns the sample frame of a 16th-note step within a bar.
func (r *renderer) frame(bar int, step float64) int {
	return int((float64(bar)*stepsPerBar + step) * r.barFrames / stepsPerBar)
}

// stepSeconds is the length of one 16th note.
func (r *renderer) stepSeconds() float64 {
	return r.barFrames / stepsPerBar / SampleRate
}

// chordAt returns the scale degree of the chord of bar b of a section.
func (r *renderer) chordAt(kind SectionKind, b int) int {
	prog := r.song.VerseChords
	if kind == Chorus || kind == Outro {
		prog = r.song.ChorusChords
	}
	return prog[b%len(prog)]
}

// section renders every part of one section starting at bar start.
func (r *renderer) section(sec Section, start int, next SectionKind) {
	for b := 0; b < sec.Bars; b++ {
		bar := start + b
		chord := r.song.Key.triad(r.chordAt(sec.Kind, b))
		last := b == sec.Bars-1
		second := b >= sec.Bars/2
		switch sec.Kind {
		case Intro:
			r.pad(bar, chord, 2.5, 0.8)
			r.pluck(bar, chord, 0.6)
			if second {
				r.drums(bar, false, false, true)
			}
		case Verse:
			r.pad(bar, chord, 3, 0.7)
			r.pluck(bar, chord, 1)
			r.bass(bar, chord, 0.9)
			r.drums(bar, b == 0, last && next == Chorus, false)
		case Chorus:
			r.pad(bar, chord, 5, 1)
			r.pluck(bar, chord, 1)
			r.bass(bar, chord, 1)
			r.drums(bar, b == 0, last && next != Chorus && next != Outro, false)
		case Breakdown:
			r.pad(bar, chord, 2, 1.1)
			r.sustainedBass(bar, chord)
			if last {
				r.snareBuild(bar)
			}
		case Outro:
			if b == sec.Bars/2 {
				r.fadeStart = r.frame(bar, 0)
			}
			r.pad(bar, chord, 4, 1)
			r.pluck(bar, chord, 0.8)
			if !second {
				r.bass(bar, chord, 1)
			}
			r.drums(bar, b == 0, false, second)
		}
	}
	r.melody(sec, start)
}

// pad holds the chord for the whole bar, one detuned voice per chord tone
// spread across the stereo field.
func (r *renderer) pad(bar int, chord [3]int, bright, level float64) {
	gate := r.barFrames / SampleRate
	pans := [3]float64{-0.5, 0.1, 0.5}
	for i, pc := range chord {
		n := placeNote(pc, r.song.Key.Tonic+padCenter)
		note := padNote(midiToHz(float64(n)), gate, bright, r.noise)
		r.mix.play(r.frame(bar, 0), note, voice{gain: padGain * level, pan: pans[i], reverbSend: 0.7})
	}
}

// pluckNotes returns the chord as ascending MIDI notes plus the root an
// octave up.
func (r *renderer) pluckNotes(chord [3]int) []int {
	center := r.song.Key.Tonic + pluckCenter
	root := placeNote(chord[0], center)
	notes := []int{root}
	for _, pc := range chord[1:] {
		notes = append(notes, root+mod12(pc-chord[0]))
	}
	return append(notes, root+12)
}

// pluck plays the chord in the song's pluck style.
func (r *renderer) pluck(bar int, chord [3]int, level float64) {
	notes := r.pluckNotes(chord)
	step := r.stepSeconds()
	v := voice{gain: pluckGain * level, reverbSend: 0.35, delay: 0.15}
	switch r.song.Pluck {
	case Arpeggio:
		order := []int{0, 1, 2, 3, 2, 1, 3, 2}
		for i, idx := range order {
			v.pan = 0.35
			if i%2 == 1 {
				v.pan = -0.35
			}
			accent := 0.8 + 0.2*r.compose.Float64()
			n := pluckNote(midiToHz(float64(notes[idx])), 1.8*step, r.noise)
			r.mix.play(r.frame(bar, float64(2*i)), n, voice{gain: v.gain * accent, pan: v.pan, reverbSend: v.reverbSend, delay: v.delay})
		}
	case Offbeat:
		for _, s := range []float64{2, 6, 10, 14} {
			for i, m := range notes[:3] {
				v.pan = float64(i-1) * 0.4
				n := pluckNote(midiToHz(float64(m)), 1.2*step, r.noise)
				r.mix.play(r.frame(bar, s), n, v)
			}
		}
	case Strum:
		const strumSteps = 0.12 // time between strings, in 16ths
		for _, s := range []float64{0, 4, 8, 12, 14} {
			for i, m := range notes {
				v.pan = float64(i)*0.25 - 0.4
				n := pluckNote(midiToHz(float64(m)), 3.5*step, r.noise)
				r.mix.play(r.frame(bar, s+float64(i)*strumSteps), n, voice{gain: v.gain * 0.7, pan: v.pan, reverbSend: v.reverbSend, delay: v.delay})
			}
		}
	}
}

// bass plays the chord root in the song's bass style.
func (r *renderer) bass(bar int, chord [3]int, level float64) {
	root := placeNote(chord[0], r.song.Key.Tonic+bassCenter)
	step := r.stepSeconds()
	type hit struct{ step, length, octave float64 }
	var hits []hit
	switch r.song.Bass {
	case Eighths:
		for s := 0.0; s < stepsPerBar; s += 2 {
			oct := 0.0
			if s == 6 || s == 14 {
				oct = 12
			}
			hits = append(hits, hit{s, 1.6, oct})
		}
	case Syncopated:
		hits = []hit{{0, 2.7, 0}, {3, 2.7, 0}, {6, 1.7, 12}, {8, 2.7, 0}, {11, 2.7, 0}, {14, 1.7, 7}}
	case Pulse:
		hits = []hit{{0, 7.5, 0}, {8, 5.5, 0}, {14, 1.7, 12}}
	}
	for _, h := range hits {
		n := bassNote(midiToHz(float64(root)+h.octave), h.length*step)
		r.mix.play(r.frame(bar, h.step), n, voice{gain: bassGain * level})
	}
}

// sustainedBass holds the root for the whole bar, quietly.
func (r *renderer) sustainedBass(bar int, chord [3]int) {
	root := placeNote(chord[0], r.song.Key.Tonic+bassCenter)
	n := bassNote(midiToHz(float64(root)), 15*r.stepSeconds())
	r.mix.play(r.frame(bar, 0), n, voice{gain: bassGain * 0.6, reverbSend: 0.2})
}

// drumPatterns returns the kick, snare and hat patterns of a style, one
// character per 16th: 'x' hit, 'o' open hat, '.' rest.
func drumPatterns(style DrumStyle) (kick, snare, hat string) {
	switch style {
	case FourOnFloor:
		return "x...x...x...x...", "....x.......x...", "x.o.x.o.x.o.x.o."
	case HalfTime:
		return "x......x..x.....", "........x.......", "x.xxx.x.x.xxx.x."
	}
	return "x.....x.x.....x.", "....x.......x...", "x.x.x.x.x.x.x.x."
}

// fillFrom is the first 16th of a bar replaced by a snare fill.
const fillFrom = 12

// drums plays one bar of the beat: crash marks a section start, fill
// rolls into the next section, hatsOnly thins the beat out.
func (r *renderer) drums(bar int, crash, fill, hatsOnly bool) {
	kickPat, snarePat, hatPat := drumPatterns(r.song.Drums)
	if crash && !hatsOnly {
		r.mix.play(r.frame(bar, 0), hiHat(true, r.noise), voice{gain: crashGain, pan: -0.3, reverbSend: 0.4})
	}
	for s := 0; s < stepsPerBar; s++ {
		at := r.frame(bar, float64(s))
		if c := hatPat[s]; c != '.' {
			accent := 0.7 + 0.3*r.compose.Float64()
			if s%4 == 0 {
				accent += 0.2
			}
			gain := hatGain
			if c == 'o' {
				gain = openHatGain
			}
			r.mix.play(at, hiHat(c == 'o', r.noise), voice{gain: gain * accent, pan: 0.3, reverbSend: 0.1})
		}
		if hatsOnly {
			continue
		}
		if kickPat[s] == 'x' {
			r.mix.play(at, kick(r.noise), voice{gain: kickGain})
		}
		switch {
		case fill && s >= fillFrom:
			r.mix.play(at, snare(r.noise), voice{gain: snareGain * (0.6 + 0.1*float64(s-fillFrom)), pan: -0.1, reverbSend: 0.25})
		case snarePat[s] == 'x':
			r.mix.play(at, snare(r.noise), voice{gain: snareGain, pan: -0.1, reverbSend: 0.25})
		}
	}
}

// snareBuild is a bar of 16th snares growing louder, ending a breakdown.
func (r *renderer) snareBuild(bar int) {
	for s := 0; s < stepsPerBar; s++ {
		gain := snareGain * (0.15 + 0.85*float64(s)/stepsPerBar)
		r.mix.play(r.frame(bar, float64(s)), snare(r.noise), voice{gain: gain, reverbSend: 0.3})
	}
}

// melody plays the section's motif phrase by phrase, varying every
// repetition a little. Breakdowns echo the chorus motif in their second
// half; intros and the end of outros have no melody.
func (r *renderer) melody(sec Section, start int) {
	const barsPerPhrase = phraseEighths / 8
	m, low, high, level, echo := r.verseMotif, verseLow, verseHigh, 1.0, 0.25
	first, end := 0, sec.Bars
	switch sec.Kind {
	case Intro:
		return
	case Chorus:
		m, low, high = r.chorusMotif, chorusLow, chorusHigh
	case Breakdown:
		m, low, high, level, echo = r.chorusMotif, chorusLow, chorusHigh, 0.7, 0.55
		first = sec.Bars / 2
		end = sec.Bars - 1
	case Outro:
		m, low, high = r.chorusMotif, chorusLow, chorusHigh
		end = sec.Bars / 2
	}
	eighth := 2 * r.stepSeconds()
	for p := first; p+barsPerPhrase <= end; p += barsPerPhrase {
		phrase := m
		if (p/barsPerPhrase)%2 == 1 {
			phrase = m.vary(r.compose, 0.3, low, high)
		}
		for _, n := range phrase {
			b := p + n.step/8
			chord := r.song.Key.triad(r.chordAt(sec.Kind, b))
			pitch := fitToChord(r.song.Key, n.pitch, n.step%4 == 0, chord)
			note := leadNote(r.song.Lead, midiToHz(float64(pitch)), float64(n.length)*eighth*0.92)
			r.mix.play(r.frame(start+b, float64(2*(n.step%8))), note,
				voice{gain: leadGain * level, pan: 0.1, reverbSend: 0.35, delay: echo})
		}
	}
}

// master mixes the buses, fades and limits the result.
func (r *renderer) master() *Stereo {
	out := r.mix.dry
	delayed := PingPongDelay(r.mix.delay, delayBeats*r.barFrames/beatsPerBar/SampleRate, delayFeedback)
	r.mix.reverb.add(delayed, 0.3) // echoes are reverberated too
	out.add(Reverb(r.mix.reverb), reverbReturn)
	out.add(delayed, delayReturn)
	FadeIn(out, seconds(introFadeSeconds))
	if r.fadeStart < 0 { // no outro: fade over the last two bars
		r.fadeStart = out.Len() - int(2*r.barFrames) - seconds(tailSeconds)
	}
	FadeOut(out, max(0, r.fadeStart))
	RemoveDC(out)
	SoftLimit(out)
	return out
}
