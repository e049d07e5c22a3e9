package synth

import "math"

// Each instrument renders one note into a new mono slice that starts at
// note-on. Amplitudes are roughly normalized to a peak of 1; the
// arrangement sets the mix level.

// padDetuneCents is the spread of the three sawtooth voices of a pad note.
const padDetuneCents = 9

// padNote renders a soft detuned-sawtooth pad note through a low-pass filter.
// bright scales the filter cutoff relative to the note frequency.
func padNote(freq, gate, bright float64, rng *Rand) []float64 {
	env := ADSR{Attack: 0.35, Decay: 0.6, Sustain: 0.75, Release: 0.9}
	out := make([]float64, seconds(env.Length(gate)))
	var oscs [3]sawOsc
	for i := range oscs {
		cents := float64(i-1) * padDetuneCents
		oscs[i] = newSaw(freq*math.Pow(2, cents/1200), rng.Float64())
	}
	filter := newSVF(math.Min(freq*bright, 6000), 0.8)
	for i := range out {
		t := float64(i) / SampleRate
		v := (oscs[0].next() + oscs[1].next() + oscs[2].next()) / 3
		out[i] = filter.lowpass(v) * env.Level(t, gate)
	}
	return out
}

// pluckDecay is the per-sample loop gain of the Karplus-Strong string.
const pluckDecay = 0.996

// pluckNote renders a plucked string with the Karplus-Strong algorithm: a
// noise burst circulates in a delay line one period long, losing high
// frequencies on every pass. A first-order all-pass tunes the fractional
// part of the period.
func pluckNote(freq, gate float64, rng *Rand) []float64 {
	const release = 0.08
	period := SampleRate/freq - 0.5 // the averaging filter adds half a sample
	n := int(period)
	frac := period - float64(n)
	if frac < 0.1 { // keep the all-pass coefficient away from 1
		n--
		frac++
	}
	coef := (1 - frac) / (1 + frac)
	line := make([]float64, n)
	prevNoise := 0.0
	for i := range line { // softened noise burst: a gentler attack
		noise := rng.Bipolar()
		line[i] = 0.5 * (noise + prevNoise)
		prevNoise = noise
	}
	out := make([]float64, seconds(gate+release))
	var prev, apIn, apOut float64
	idx := 0
	for i := range out {
		cur := line[idx]
		out[i] = cur * releaseGain(float64(i)/SampleRate, gate, release)
		avg := pluckDecay * 0.5 * (cur + prev)
		apOut = coef*avg + apIn - coef*apOut
		apIn = avg
		line[idx] = apOut
		prev = cur
		idx++
		if idx == n {
			idx = 0
		}
	}
	return out
}

// releaseGain is 1 until gate, then falls linearly to 0 over release seconds.
func releaseGain(t, gate, release float64) float64 {
	if t < gate {
		return 1
	}
	return math.Max(0, 1-(t-gate)/release)
}

// bassNote renders a round bass: a sine with some filtered sawtooth on top.
func bassNote(freq, gate float64) []float64 {
	env := ADSR{Attack: 0.004, Decay: 0.2, Sustain: 0.7, Release: 0.06}
	out := make([]float64, seconds(env.Length(gate)))
	saw := newSaw(freq, 0)
	filter := newSVF(freq*4, 1.1)
	phase := 0.0
	for i := range out {
		t := float64(i) / SampleRate
		v := 0.7*math.Sin(2*math.Pi*phase) + 0.35*filter.lowpass(saw.next())
		phase += freq / SampleRate
		out[i] = v * env.Level(t, gate)
	}
	return out
}

// Lead is the sound of an FM melody voice.
type Lead struct {
	// Ratio is the modulator frequency over the carrier frequency.
	Ratio float64
	// Index is the modulation index at note-on; it decays to a third.
	Index float64
}

// vibrato depth (relative frequency), rate (Hz) and delay (s) of the lead.
const (
	vibratoDepth = 0.004
	vibratoRate  = 5.2
	vibratoDelay = 0.25
)

// leadNote renders a two-operator FM note with a decaying index, so each
// note starts bright and mellows, with a delayed vibrato.
func leadNote(l Lead, freq, gate float64) []float64 {
	env := ADSR{Attack: 0.008, Decay: 0.35, Sustain: 0.55, Release: 0.22}
	out := make([]float64, seconds(env.Length(gate)))
	var carrier, modulator float64
	for i := range out {
		t := float64(i) / SampleRate
		vib := 1.0
		if t > vibratoDelay {
			vib += vibratoDepth * math.Sin(2*math.Pi*vibratoRate*(t-vibratoDelay))
		}
		f := freq * vib
		index := l.Index * (1.0/3 + 2.0/3*math.Exp(-t/0.25))
		out[i] = math.Sin(2*math.Pi*carrier+index*math.Sin(2*math.Pi*modulator)) * env.Level(t, gate)
		carrier += f / SampleRate
		modulator += f * l.Ratio / SampleRate
		carrier -= math.Floor(carrier)
		modulator -= math.Floor(modulator)
	}
	return out
}

// kick renders a bass drum: a sine swept down in pitch plus a short click.
func kick(rng *Rand) []float64 {
	out := make([]float64, seconds(0.45))
	phase := 0.0
	for i := range out {
		t := float64(i) / SampleRate
		freq := 48 + 120*math.Exp(-t/0.035)
		phase += freq / SampleRate
		body := math.Sin(2*math.Pi*phase) * math.Exp(-t/0.22)
		click := 0.25 * rng.Bipolar() * math.Exp(-t/0.002)
		out[i] = math.Tanh(1.6 * (body + click))
	}
	return out
}

// snare renders a snare drum: a short tone plus high-passed noise.
func snare(rng *Rand) []float64 {
	out := make([]float64, seconds(0.3))
	filter := newSVF(1800, 0.7)
	for i := range out {
		t := float64(i) / SampleRate
		tone := 0.5 * math.Sin(2*math.Pi*190*t) * math.Exp(-t/0.05)
		noise := filter.highpass(rng.Bipolar()) * math.Exp(-t/0.09)
		out[i] = tone + 0.8*noise
	}
	return out
}

// hiHat renders a hi-hat: high-passed noise; open hats ring longer.
func hiHat(open bool, rng *Rand) []float64 {
	decay, length := 0.025, 0.12
	if open {
		decay, length = 0.14, 0.5
	}
	out := make([]float64, seconds(length))
	hp := newSVF(7500, 0.9)
	for i := range out {
		t := float64(i) / SampleRate
		out[i] = hp.highpass(rng.Bipolar()) * math.Exp(-t/decay)
	}
	return out
}
