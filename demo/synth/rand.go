package synth

// Rand is a small deterministic pseudo-random generator (SplitMix64).
// Every random choice in a render comes from a Rand seeded by the song,
// so the same song always renders to the same samples.
// A Rand is not safe for concurrent use.
type Rand struct {
	state uint64
}

// NewRand returns a generator seeded with seed.
func NewRand(seed uint64) *Rand {
	return &Rand{state: seed}
}

// Uint64 returns the next 64 pseudo-random bits.
func (r *Rand) Uint64() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Float64 returns a value in [0, 1).
func (r *Rand) Float64() float64 {
	return float64(r.Uint64()>>11) / (1 << 53)
}

// Bipolar returns a value in [-1, 1).
func (r *Rand) Bipolar() float64 {
	return 2*r.Float64() - 1
}

// Intn returns a value in [0, n). It returns 0 when n <= 0.
func (r *Rand) Intn(n int) int {
	if n <= 0 {
		return 0
	}
	return int(r.Uint64() % uint64(n))
}

// Chance reports true with probability p.
func (r *Rand) Chance(p float64) bool {
	return r.Float64() < p
}
