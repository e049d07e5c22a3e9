// Pure buffer logic of the player: which downloaded chunks to append to the
// SourceBuffer, and which buffered time ranges to remove. No I/O here, so it
// is unit-tested in node. Which chunks to fetch, from whom, is the peer
// algorithm's (swarm.js schedule(), driven by loader.js).

import { chunkAt, chunkStartSec, chunkEndSec } from './timeline.js';

/** @typedef {import('./api.js').Manifest} Manifest */
/**
 * A set of chunk numbers: a Set, or the keys of a Map.
 * @typedef {{has(seq: number): boolean}} SeqSet
 */

/** Default tuning. */
export const DEFAULTS = Object.freeze({
  /** Chunks are appended to the SourceBuffer up to this far ahead of the playhead. */
  appendAheadSec: 40,
  /** Buffered media further behind the playhead than this is removed. */
  keepBehindSec: 20,
  /** Buffered media further ahead than appendAheadSec + this is removed (after a backward seek). */
  keepAheadSlackSec: 30,
  /** Tolerance (s) when checking that buffered ranges are contiguous. */
  gapToleranceSec: 0.15,
});

/**
 * Seconds of media buffered contiguously from t.
 * @param {Array<[number, number]>} ranges sorted, as from TimeRanges
 * @param {number} t
 * @param {number} [tol]
 */
export function bufferedAhead(ranges, t, tol = DEFAULTS.gapToleranceSec) {
  let end = -1;
  for (const [s, e] of ranges) {
    if (end < 0) {
      if (s - tol <= t && t < e) end = e;
    } else if (s - tol <= end) {
      end = Math.max(end, e);
    }
  }
  return end < 0 ? 0 : Math.max(0, end - t);
}

/**
 * Converts a TimeRanges object to an array of [start, end].
 * @param {TimeRanges} timeRanges
 * @returns {Array<[number, number]>}
 */
export function toRanges(timeRanges) {
  /** @type {Array<[number, number]>} */
  const out = [];
  for (let i = 0; i < timeRanges.length; i++) out.push([timeRanges.start(i), timeRanges.end(i)]);
  return out;
}

/**
 * The chunks to append now, in order: the contiguous run of downloaded chunks
 * from the playhead chunk up to position + aheadSec, skipping those already
 * appended, stopping at the first chunk not downloaded. When the playhead
 * chunk is not appended and needs the reservoir, the previous chunk comes first.
 * @param {{manifest: Manifest, position: number, have: SeqSet, appended: SeqSet, aheadSec?: number}} p
 * @returns {number[]}
 */
export function planAppends({ manifest: m, position, have, appended, aheadSec = DEFAULTS.appendAheadSec }) {
  const n = m.chunks.length;
  if (n === 0) return [];
  const start = chunkAt(m, position);
  const last = chunkAt(m, position + aheadSec);
  const out = [];
  if (!appended.has(start) && start > 0 && m.chunks[start].reservoir && !appended.has(start - 1)) {
    if (!have.has(start - 1)) return [];
    out.push(start - 1);
  }
  for (let s = start; s <= last && s < n; s++) {
    if (appended.has(s)) continue;
    if (!have.has(s)) break;
    out.push(s);
  }
  return out;
}

/**
 * Time ranges to remove from the SourceBuffer: what lies more than keepBehindSec
 * behind the playhead or more than appendAheadSec+keepAheadSlackSec ahead of it.
 * @param {{ranges: Array<[number, number]>, position: number, duration: number,
 *   keepBehindSec?: number, appendAheadSec?: number, keepAheadSlackSec?: number}} p
 * @returns {Array<[number, number]>}
 */
export function planEvictions({ ranges, position, duration, keepBehindSec = DEFAULTS.keepBehindSec,
  appendAheadSec = DEFAULTS.appendAheadSec, keepAheadSlackSec = DEFAULTS.keepAheadSlackSec }) {
  /** @type {Array<[number, number]>} */
  const out = [];
  if (ranges.length === 0) return out;
  const behind = position - keepBehindSec;
  if (behind > 0 && ranges[0][0] < behind - 1) out.push([0, behind]);
  const ahead = position + appendAheadSec + keepAheadSlackSec;
  const lastEnd = ranges[ranges.length - 1][1];
  if (lastEnd > ahead + 1) out.push([ahead, Math.max(duration, lastEnd)]);
  return out;
}

/**
 * The chunks whose time span intersects [start, end): those to forget as appended after a remove.
 * @param {Manifest} m
 * @param {number} start
 * @param {number} end
 */
export function chunksInRange(m, start, end) {
  const out = [];
  for (let s = chunkAt(m, start); s < m.chunks.length; s++) {
    if (chunkStartSec(m, s) >= end) break;
    if (chunkEndSec(m, s) > start) out.push(s);
  }
  return out;
}
