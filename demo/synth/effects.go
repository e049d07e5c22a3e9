package synth

import "math"

// Freeverb-style reverb tunings, in samples at 44.1 kHz.
const (
	reverbStereoSpread = 23
	reverbFeedback     = 0.83
	reverbDamp         = 0.3
	reverbInputGain    = 0.03
	allpassFeedback    = 0.5
)

// reverbCombTunings and reverbAllpassTunings return the delay lengths of
// the parallel comb and series all-pass filters of one channel.
func reverbCombTunings() []int    { return []int{1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617} }
func reverbAllpassTunings() []int { return []int{556, 441, 341, 225} }

// comb is a feedback comb filter with a damping low-pass in the loop.
type comb struct {
	buf   []float64
	idx   int
	store float64
}

func (c *comb) process(x float64) float64 {
	y := c.buf[c.idx]
	c.store = y*(1-reverbDamp) + c.store*reverbDamp
	c.buf[c.idx] = x + c.store*reverbFeedback
	c.idx = (c.idx + 1) % len(c.buf)
	return y
}

// allpass is a Schroeder all-pass diffuser.
type allpass struct {
	buf []float64
	idx int
}

func (a *allpass) process(x float64) float64 {
	b := a.buf[a.idx]
	a.buf[a.idx] = x + b*allpassFeedback
	a.idx = (a.idx + 1) % len(a.buf)
	return b - x
}

// reverbChannel runs one channel of the reverb over the mono input.
func reverbChannel(in []float64, spread int) []float64 {
	var combs []comb
	for _, n := range reverbCombTunings() {
		combs = append(combs, comb{buf: make([]float64, n+spread)})
	}
	var aps []allpass
	for _, n := range reverbAllpassTunings() {
		aps = append(aps, allpass{buf: make([]float64, n+spread)})
	}
	out := make([]float64, len(in))
	for i, x := range in {
		x *= reverbInputGain
		y := 0.0
		for c := range combs {
			y += combs[c].process(x)
		}
		for a := range aps {
			y = aps[a].process(y)
		}
		out[i] = y
	}
	return out
}

// Reverb returns the wet signal of a Freeverb-style stereo reverb fed with
// the sum of both input channels.
func Reverb(in *Stereo) *Stereo {
	mono := make([]float64, in.Len())
	for i := range mono {
		mono[i] = 0.5 * (in.L[i] + in.R[i])
	}
	return &Stereo{L: reverbChannel(mono, 0), R: reverbChannel(mono, reverbStereoSpread)}
}

// delayDamping is the cutoff, in Hz, of the low-pass in the echo feedback.
const delayDamping = 3500

// PingPongDelay returns the wet signal of a stereo echo that alternates
// between left and right every delaySeconds, each echo feedback times the
// previous one and a little darker.
func PingPongDelay(in *Stereo, delaySeconds, feedback float64) *Stereo {
	d := max(1, seconds(delaySeconds))
	n := in.Len()
	out := NewStereo(n)
	lpL, lpR := newOnePole(delayDamping), newOnePole(delayDamping)
	for i := d; i < n; i++ {
		mono := 0.5 * (in.L[i-d] + in.R[i-d])
		out.L[i] = mono + feedback*lpL.process(out.R[i-d])
		out.R[i] = feedback * lpR.process(out.L[i-d])
	}
	return out
}

// Limiter settings: the mix is normalized so its loudest peak reaches
// limiterDrive, then every sample above limiterThreshold is bent smoothly
// towards limiterCeiling, which it never reaches. The ceiling leaves room
// for MP3 encoding overshoot.
const (
	limiterDrive     = 1.0
	limiterThreshold = 0.45
	limiterCeiling   = 0.7
)

// SoftLimit normalizes s in place and soft-clips it so that every sample
// is strictly below limiterCeiling in magnitude.
func SoftLimit(s *Stereo) {
	peak := s.Peak()
	if peak == 0 {
		return
	}
	gain := limiterDrive / peak
	for i := range s.L {
		s.L[i] = softClip(gain * s.L[i])
		s.R[i] = softClip(gain * s.R[i])
	}
}

// softClip is the identity below limiterThreshold and a tanh knee above it,
// with a continuous slope, approaching limiterCeiling.
func softClip(x float64) float64 {
	a := math.Abs(x)
	if a <= limiterThreshold {
		return x
	}
	span := limiterCeiling - limiterThreshold
	return math.Copysign(limiterThreshold+span*math.Tanh((a-limiterThreshold)/span), x)
}

// FadeIn ramps the first n frames of s up from silence (raised cosine).
func FadeIn(s *Stereo, n int) {
	n = min(n, s.Len())
	for i := 0; i < n; i++ {
		g := 0.5 - 0.5*math.Cos(math.Pi*float64(i)/float64(n))
		s.L[i] *= g
		s.R[i] *= g
	}
}

// FadeOut ramps s down from frame start to silence at its end (raised cosine).
func FadeOut(s *Stereo, start int) {
	n := s.Len() - start
	if n <= 0 {
		return
	}
	for i := 0; i < n; i++ {
		g := 0.5 + 0.5*math.Cos(math.Pi*float64(i)/float64(n))
		s.L[start+i] *= g
		s.R[start+i] *= g
	}
}

// dcBlockPole sets the corner (about 5 Hz) of the DC-blocking high-pass.
const dcBlockPole = 0.9993

// RemoveDC high-passes s in place just below the audible range, removing
// the offset that asymmetric sounds (saturated kicks) leave.
func RemoveDC(s *Stereo) {
	for _, ch := range [][]float64{s.L, s.R} {
		var x1, y1 float64
		for i, x := range ch {
			y := x - x1 + dcBlockPole*y1
			x1, y1 = x, y
			ch[i] = y
		}
	}
}
