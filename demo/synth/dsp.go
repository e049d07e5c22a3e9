package synth

import "math"

// SampleRate is the rate, in Hz, of every rendered signal.
const SampleRate = 44100

// midiToHz converts a MIDI note number to a frequency in Hz (A4 = 69 = 440 Hz).
func midiToHz(note float64) float64 {
	return 440 * math.Pow(2, (note-69)/12)
}

// seconds converts a duration in seconds to a whole number of samples.
func seconds(s float64) int {
	return int(math.Round(s * SampleRate))
}

// sawOsc is a band-limited sawtooth oscillator (PolyBLEP).
type sawOsc struct {
	phase, inc float64
}

func newSaw(freq, phase float64) sawOsc {
	return sawOsc{phase: phase, inc: freq / SampleRate}
}

func (o *sawOsc) next() float64 {
	v := 2*o.phase - 1 - polyBLEP(o.phase, o.inc)
	o.phase += o.inc
	if o.phase >= 1 {
		o.phase--
	}
	return v
}

// polyBLEP is the polynomial correction that removes most aliasing from the
// discontinuity of a naive sawtooth at phase t with phase increment dt.
func polyBLEP(t, dt float64) float64 {
	switch {
	case t < dt:
		t /= dt
		return t + t - t*t - 1
	case t > 1-dt:
		t = (t - 1) / dt
		return t*t + t + t + 1
	}
	return 0
}

// svf is a state-variable filter (Simper's trapezoidal form) with fixed
// cutoff. It gives low-, band- and high-pass outputs at once.
type svf struct {
	k, a1, a2, a3 float64
	ic1, ic2      float64
}

// newSVF returns a filter with the given cutoff in Hz and resonance q
// (0.707 is flat, higher rings).
func newSVF(cutoff, q float64) svf {
	cutoff = math.Min(cutoff, 0.45*SampleRate)
	g := math.Tan(math.Pi * cutoff / SampleRate)
	k := 1 / q
	a1 := 1 / (1 + g*(g+k))
	a2 := g * a1
	return svf{k: k, a1: a1, a2: a2, a3: g * a2}
}

func (f *svf) process(x float64) (lp, bp, hp float64) {
	v3 := x - f.ic2
	v1 := f.a1*f.ic1 + f.a2*v3
	v2 := f.ic2 + f.a2*f.ic1 + f.a3*v3
	f.ic1 = 2*v1 - f.ic1
	f.ic2 = 2*v2 - f.ic2
	return v2, v1, x - f.k*v1 - v2
}

func (f *svf) lowpass(x float64) float64 {
	lp, _, _ := f.process(x)
	return lp
}

func (f *svf) highpass(x float64) float64 {
	_, _, hp := f.process(x)
	return hp
}

// onePole is a one-pole low-pass smoother.
type onePole struct {
	a, y float64
}

func newOnePole(cutoff float64) onePole {
	return onePole{a: 1 - math.Exp(-2*math.Pi*cutoff/SampleRate)}
}

func (p *onePole) process(x float64) float64 {
	p.y += p.a * (x - p.y)
	return p.y
}
