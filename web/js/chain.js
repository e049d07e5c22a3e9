// Gapless playback: consecutive tracks in one MediaSource. Each track (a
// part) takes the span [base, base + duration) of the Media Source's
// timeline, the next one starting exactly where the one before it ends.
// Chunk seq of a part is appended at timestampOffset base + chunkStartSec
// (raw MP3, generated timestamps) or base − encoder_delay/sr (fMP4, whose
// fragments carry the chunk's own decode time), inside the append window
// [base, base + duration): the window cuts each track's encoder delay and
// padding, so the decoder goes from the last real sample of one track to
// the first of the next. Pure logic, no DOM: unit-tested in node.

import { chunkAt, chunkStartSec, durationSec } from './timeline.js';
import { planAppends } from './scheduler.js';

/** @typedef {import('./api.js').Manifest} Manifest */
/** @typedef {import('./scheduler.js').SeqSet} SeqSet */

/**
 * Tolerance (s) at a part's start: a playhead this close before a part's
 * base is already in it (engines report times a little off the exact
 * sample).
 */
export const EDGE_SEC = 0.001;

/**
 * One track in a chain.
 * @typedef {object} Part
 * @property {Manifest} m
 * @property {number} base where the track starts in the Media Source's timeline (s)
 * @property {Set<number>} appended its chunks in the SourceBuffer
 */

/**
 * The end of part p in the timeline (s).
 * @param {{m: Manifest, base: number}} p
 */
export function partEnd(p) {
  return p.base + durationSec(p.m);
}

/**
 * Whether track b can follow track a in one SourceBuffer: the same sample
 * rate, channels and MPEG frame size (a decoder configuration change
 * mid-buffer is not something every engine does).
 * @param {Manifest} a
 * @param {Manifest} b
 */
export function chainable(a, b) {
  return a.sample_rate === b.sample_rate && a.channels === b.channels && a.samples_per_frame === b.samples_per_frame;
}

/**
 * The index of the part that plays at timeline time t: the last one whose
 * base is at or before t (the first part before it starts), or -1 when
 * there are none.
 * @param {{base: number}[]} parts in timeline order
 * @param {number} t
 */
export function partAt(parts, t) {
  let i = parts.length - 1;
  while (i > 0 && parts[i].base > t + EDGE_SEC) i--;
  return i;
}

/**
 * What to append next, from the part under the playhead on: that part's
 * chunks as planAppends orders them, and once every chunk from the playhead
 * to its end is appended, the next part's from its start, as long as it
 * starts less than aheadSec after the playhead. Null: nothing now.
 * @param {{parts: Part[], cur: number, position: number, have: (p: Part) => SeqSet, aheadSec: number}} p
 *   position: the playhead in the timeline (s); have: the chunks held for a part
 * @returns {{part: number, seq: number}|null}
 */
export function nextAppend({ parts, cur, position, have, aheadSec }) {
  for (let i = cur; i >= 0 && i < parts.length; i++) {
    const p = parts[i];
    const local = Math.max(0, position - p.base);
    const ahead = aheadSec - Math.max(0, p.base - position);
    if (ahead <= 0) return null;
    const todo = planAppends({ manifest: p.m, position: local, have: have(p), appended: p.appended, aheadSec: ahead });
    if (todo.length > 0) return { part: i, seq: todo[0] };
    if (!appendedFrom(p, local)) return null; // this part's rest is not all in: the next one waits
  }
  return null;
}

/**
 * Whether every chunk of part p from local time t to its end is appended.
 * @param {Part} p
 * @param {number} t seconds into the track
 */
export function appendedFrom(p, t) {
  const n = p.m.chunks.length;
  for (let s = chunkAt(p.m, t); s < n; s++) if (!p.appended.has(s)) return false;
  return n > 0;
}

/**
 * Whether the stream can end: every part from the playhead's to the last
 * is appended to its end.
 * @param {Part[]} parts
 * @param {number} cur the part under the playhead
 * @param {number} position the playhead in the timeline (s)
 */
export function appendedToEnd(parts, cur, position) {
  if (cur < 0) return false;
  for (let i = cur; i < parts.length; i++) {
    if (!appendedFrom(parts[i], Math.max(0, position - parts[i].base))) return false;
  }
  return true;
}

/**
 * The SourceBuffer settings for appending chunk seq of part p: the
 * timestampOffset (see the header; clamped at 0 when the engine drops
 * media before 0 s, which leaves the first track untrimmed) and the append
 * window.
 * @param {{m: Manifest, base: number}} p
 * @param {number} seq
 * @param {{mode: 'mpeg'|'mp4', negativeOffsets: boolean}} o
 */
export function appendSettings(p, seq, { mode, negativeOffsets }) {
  const at = mode === 'mpeg' ? chunkStartSec(p.m, seq) : -p.m.encoder_delay / p.m.sample_rate;
  const offset = p.base + at;
  return {
    timestampOffset: negativeOffsets ? offset : Math.max(0, offset),
    windowStart: p.base,
    windowEnd: partEnd(p),
  };
}

/**
 * The chunks of part p whose time overlaps the timeline range [start, end):
 * those to forget as appended after a remove.
 * @param {Part} p
 * @param {number} start
 * @param {number} end
 */
export function partChunksIn(p, start, end) {
  const from = Math.max(start - p.base, 0);
  const to = Math.min(end - p.base, durationSec(p.m));
  if (to <= from) return [];
  const out = [];
  for (let s = chunkAt(p.m, from); s < p.m.chunks.length && chunkStartSec(p.m, s) < to; s++) out.push(s);
  return out;
}
