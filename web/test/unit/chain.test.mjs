import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendSettings, appendedFrom, appendedToEnd, chainable, nextAppend, partAt, partChunksIn, partEnd,
} from '../../js/chain.js';
import { chunkStartSec, durationSec } from '../../js/timeline.js';
import { makeManifest } from './helpers.mjs';

// Two tracks of 10 chunks (~9.9 s each) and one of 3 chunks (~2.9 s): a long and a short track.
const a = { ...makeManifest({ n: 10 }).manifest, id: 'a' };
const b = { ...makeManifest({ n: 10, delay: 1105, padding: 500 }).manifest, id: 'b' };
const c = { ...makeManifest({ n: 3, lastFrames: 5 }).manifest, id: 'c' };

/** Parts a, b, c back to back, with the given chunks appended. */
function chain(appended = [[], [], []]) {
  const parts = [];
  let base = 0;
  for (const [i, m] of [a, b, c].entries()) {
    parts.push({ m, base, appended: new Set(appended[i]) });
    base += durationSec(m);
  }
  return parts;
}
const all = (m) => Array.from({ length: m.chunks.length }, (_, s) => s);
const everything = () => ({ has: () => true });

test('parts follow each other exactly: each starts at the last sample of the one before', () => {
  const parts = chain();
  assert.equal(partEnd(parts[0]), a.total_samples / a.sample_rate);
  assert.equal(parts[1].base, partEnd(parts[0]));
  assert.equal(parts[2].base, partEnd(parts[1]));
});

test('partAt: the part under the playhead, with a tolerance just before a start', () => {
  const parts = chain();
  assert.equal(partAt(parts, 0), 0);
  assert.equal(partAt(parts, -0.5), 0, 'before the first part: the first');
  assert.equal(partAt(parts, parts[1].base - 0.01), 0);
  assert.equal(partAt(parts, parts[1].base - 0.0005), 1, 'half a millisecond before the start is in it');
  assert.equal(partAt(parts, parts[1].base), 1);
  assert.equal(partAt(parts, parts[2].base + 100), 2, 'past the end: the last');
  assert.equal(partAt([], 3), -1);
});

test('appendSettings: the track\'s own trim at its own base (raw MP3 and fMP4)', () => {
  const parts = chain();
  const p = parts[1];
  const mpeg = appendSettings(p, 0, { mode: 'mpeg', negativeOffsets: true });
  assert.equal(mpeg.timestampOffset, p.base - b.encoder_delay / b.sample_rate, 'chunk 0 starts its delay before the base');
  assert.equal(mpeg.windowStart, p.base, 'the window cuts the delay');
  assert.equal(mpeg.windowEnd, p.base + b.total_samples / b.sample_rate, 'and the padding');
  assert.equal(appendSettings(p, 4, { mode: 'mpeg', negativeOffsets: true }).timestampOffset, p.base + chunkStartSec(b, 4));
  // fMP4 fragments carry their own decode time: one offset for the whole track.
  assert.equal(appendSettings(p, 4, { mode: 'mp4', negativeOffsets: true }).timestampOffset, p.base - b.encoder_delay / b.sample_rate);
  // An engine that drops media before 0 s: the first track starts untrimmed, later ones keep their trim.
  assert.equal(appendSettings(parts[0], 0, { mode: 'mpeg', negativeOffsets: false }).timestampOffset, 0);
  assert.equal(appendSettings(p, 0, { mode: 'mpeg', negativeOffsets: false }).timestampOffset, mpeg.timestampOffset);
});

test('nextAppend: the playhead\'s track first, the next one only once the rest of it is in', () => {
  let parts = chain();
  assert.deepEqual(nextAppend({ parts, cur: 0, position: 0, have: everything, aheadSec: 40 }), { part: 0, seq: 0 });
  // Track a appended to its end: b's start comes next, then c's (within 40 s of the playhead).
  parts = chain([all(a)]);
  assert.deepEqual(nextAppend({ parts, cur: 0, position: 1, have: everything, aheadSec: 40 }), { part: 1, seq: 0 });
  parts = chain([all(a), all(b)]);
  assert.deepEqual(nextAppend({ parts, cur: 0, position: 1, have: everything, aheadSec: 40 }), { part: 2, seq: 0 });
  // Not beyond aheadSec: b starts ~9.9 s after a playhead at 1 s.
  parts = chain([all(a)]);
  assert.equal(nextAppend({ parts, cur: 0, position: 1, have: everything, aheadSec: 5 }), null);
  assert.deepEqual(nextAppend({ parts, cur: 0, position: 6, have: everything, aheadSec: 5 }), { part: 1, seq: 0 });
  // A chunk of a not downloaded yet: b waits, even though all of b is held.
  parts = chain([[0, 1, 2, 3, 4, 5, 6, 7, 8]]);
  const holeInA = (p) => ({ has: (s) => p.m.id !== 'a' || s !== 9 });
  assert.equal(nextAppend({ parts, cur: 0, position: 2, have: holeInA, aheadSec: 40 }), null);
  // Only b's first chunks are held (a prefetch): they go in, in order, and the missing one stops it.
  parts = chain([all(a)]);
  const bStart = (p) => ({ has: (s) => p.m.id !== 'b' || s < 2 });
  assert.deepEqual(nextAppend({ parts, cur: 0, position: 5, have: bStart, aheadSec: 40 }), { part: 1, seq: 0 });
  parts = chain([all(a), [0, 1]]);
  assert.equal(nextAppend({ parts, cur: 0, position: 5, have: bStart, aheadSec: 40 }), null);
  // Playing b: a is not touched again.
  parts = chain([[], [0, 1, 2]]);
  assert.deepEqual(nextAppend({ parts, cur: 1, position: parts[1].base + 1, have: everything, aheadSec: 40 }), { part: 1, seq: 3 });
});

test('appendedToEnd: every part from the playhead to the last, each to its end', () => {
  assert.equal(appendedToEnd(chain([all(a), all(b), all(c)]), 0, 0), true);
  assert.equal(appendedToEnd(chain([all(a), all(b), [0, 1]]), 0, 0), false, 'the last chunk of the last track is missing');
  const parts = chain([[], all(b), all(c)]);
  assert.equal(appendedToEnd(parts, 1, parts[1].base + 2), true, 'what is behind the playhead does not count');
  assert.equal(appendedFrom(chain([[5, 6, 7, 8, 9]])[0], 5), true);
  assert.equal(appendedFrom(chain([[6, 7, 8, 9]])[0], 5), false);
  assert.equal(appendedToEnd([], -1, 0), false);
});

test('chainable: the same sample rate, channels and frame size', () => {
  assert.equal(chainable(a, b), true);
  assert.equal(chainable(a, { ...b, sample_rate: 48000 }), false);
  assert.equal(chainable(a, { ...b, channels: 1 }), false);
  assert.equal(chainable(a, { ...b, samples_per_frame: 576 }), false);
});

test('partChunksIn: the chunks of a part that a removed range covers', () => {
  const parts = chain();
  const p = parts[1];
  assert.deepEqual(partChunksIn(p, 0, p.base), [], 'a range before the part');
  assert.deepEqual(partChunksIn(p, 0, p.base + 0.5), [0]);
  assert.deepEqual(partChunksIn(p, p.base + chunkStartSec(b, 3) + 0.01, Infinity), [3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(partChunksIn(p, 0, Infinity), all(b));
  assert.deepEqual(partChunksIn(p, partEnd(p), Infinity), [], 'a range after the part');
});
