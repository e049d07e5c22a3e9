// Mapping between chunk numbers and playback time for a track manifest
// (media/manifest.go). Chunk seq holds frames [seq·F, seq·F+F) of the stream;
// its first sample is sample seq·F·S of the decoded stream, which plays at
// (seq·F·S − encoder_delay)/sr seconds once the encoder delay is trimmed.

/** @typedef {import('./api.js').Manifest} Manifest */

/**
 * Samples in one chunk (F·S).
 * @param {Manifest} m
 */
export function samplesPerChunk(m) {
  return m.frames_per_chunk * m.samples_per_frame;
}

/**
 * Playable duration in seconds after gapless trimming: total_samples/sr.
 * @param {Manifest} m
 */
export function durationSec(m) {
  return m.total_samples / m.sample_rate;
}

/**
 * Presentation time (s) of the first sample of chunk seq; chunk 0 starts before 0 (the trimmed delay).
 * @param {Manifest} m
 * @param {number} seq
 */
export function chunkStartSec(m, seq) {
  return (seq * samplesPerChunk(m) - m.encoder_delay) / m.sample_rate;
}

/**
 * Presentation time (s) just after the last sample of chunk seq, not past the end of the track.
 * @param {Manifest} m
 * @param {number} seq
 */
export function chunkEndSec(m, seq) {
  const frames = m.chunks[seq] ? m.chunks[seq].frames : m.frames_per_chunk;
  const end = (seq * samplesPerChunk(m) + frames * m.samples_per_frame - m.encoder_delay) / m.sample_rate;
  return Math.min(end, durationSec(m));
}

/**
 * The chunk that plays at time t (clamped to the track's chunks).
 * @param {Manifest} m
 * @param {number} t
 */
export function chunkAt(m, t) {
  const n = m.chunks.length;
  if (n === 0) return 0;
  const seq = Math.floor((t * m.sample_rate + m.encoder_delay) / samplesPerChunk(m));
  return Math.max(0, Math.min(n - 1, seq));
}

/**
 * The Media Source parameters for gapless playback of chunk seq appended to
 * an 'audio/mpeg' SourceBuffer (generated timestamps, sequence mode):
 * timestampOffset puts its first sample at chunkStartSec, and the append
 * window [0, total_samples/sr) trims the encoder delay and padding.
 * @param {Manifest} m
 * @param {number} seq
 */
export function appendParams(m, seq) {
  return { timestampOffset: chunkStartSec(m, seq), appendWindowStart: 0, appendWindowEnd: durationSec(m) };
}

/**
 * Formats seconds as m:ss.
 * @param {number} sec
 */
export function formatTime(sec) {
  if (!Number.isFinite(sec) || sec < 0) sec = 0;
  const s = Math.floor(sec);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
