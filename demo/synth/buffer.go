package synth

import "math"

// Stereo is a stereo signal at SampleRate with samples nominally in [-1, 1].
type Stereo struct {
	L, R []float64
}

// NewStereo returns a silent signal of n sample frames.
func NewStereo(n int) *Stereo {
	return &Stereo{L: make([]float64, n), R: make([]float64, n)}
}

// Len returns the number of sample frames.
func (s *Stereo) Len() int {
	return len(s.L)
}

// Peak returns the largest absolute sample value of both channels.
func (s *Stereo) Peak() float64 {
	peak := 0.0
	for i := range s.L {
		peak = math.Max(peak, math.Max(math.Abs(s.L[i]), math.Abs(s.R[i])))
	}
	return peak
}

// addMono mixes mono into s starting at frame start, at the given gain and
// pan (-1 left, 0 center, +1 right, constant power). Samples past the end
// are dropped.
func (s *Stereo) addMono(start int, mono []float64, gain, pan float64) {
	angle := (pan + 1) * math.Pi / 4
	gl, gr := gain*math.Cos(angle), gain*math.Sin(angle)
	for i, v := range mono {
		j := start + i
		if j < 0 {
			continue
		}
		if j >= len(s.L) {
			return
		}
		s.L[j] += v * gl
		s.R[j] += v * gr
	}
}

// add mixes o into s sample by sample, scaled by gain.
func (s *Stereo) add(o *Stereo, gain float64) {
	n := min(len(s.L), len(o.L))
	for i := 0; i < n; i++ {
		s.L[i] += gain * o.L[i]
		s.R[i] += gain * o.R[i]
	}
}

// mixer holds the dry bus and the effect send buses of a render.
type mixer struct {
	dry, reverb, delay *Stereo
}

func newMixer(n int) *mixer {
	return &mixer{dry: NewStereo(n), reverb: NewStereo(n), delay: NewStereo(n)}
}

// voice is where and how loud a note goes in the mix.
type voice struct {
	gain, pan         float64
	reverbSend, delay float64
}

// play mixes a rendered note at frame start through the voice settings.
func (m *mixer) play(start int, note []float64, v voice) {
	m.dry.addMono(start, note, v.gain, v.pan)
	if v.reverbSend > 0 {
		m.reverb.addMono(start, note, v.gain*v.reverbSend, v.pan)
	}
	if v.delay > 0 {
		m.delay.addMono(start, note, v.gain*v.delay, v.pan)
	}
}
