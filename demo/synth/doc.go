// Package synth is the small deterministic synthesizer behind the bundled
// demo tracks: it renders a Song (length, key, chord progressions, sections,
// drum, pluck, bass and lead styles, and a seed) into stereo samples with its
// instruments and effects, and writes them as a 16-bit WAV file. Rendering is
// a pure function of the Song, so a song always renders to the same samples.
// demo/generate uses it to make the MP3 files embedded by package demo.
package synth
