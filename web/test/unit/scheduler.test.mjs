import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bufferedAhead, planAppends, planEvictions, chunksInRange, toRanges } from '../../js/scheduler.js';
import { chunkStartSec, chunkEndSec } from '../../js/timeline.js';
import { makeManifest } from './helpers.mjs';

const { manifest: m } = makeManifest({ n: 20 });
const { manifest: mr } = makeManifest({ n: 20, reservoir: (seq) => seq > 0 });
const set = (...xs) => new Set(xs);
const range = (a, b) => Array.from({ length: b - a }, (_, i) => a + i);

test('bufferedAhead counts contiguous ranges from t', () => {
  assert.equal(bufferedAhead([], 3), 0);
  assert.equal(bufferedAhead([[0, 10]], 3), 7);
  assert.equal(bufferedAhead([[0, 5], [5.1, 9]], 3), 6, 'a gap under the tolerance joins ranges');
  assert.equal(bufferedAhead([[0, 5], [6, 9]], 3), 2, 'a real gap stops');
  assert.equal(bufferedAhead([[4, 9]], 3), 0, 't before the first range');
  assert.equal(bufferedAhead([[0, 2], [4, 9]], 3), 0, 't in a hole');
});

test('toRanges reads a TimeRanges-like object', () => {
  const tr = { length: 2, start: (i) => [0, 5][i], end: (i) => [2, 7][i] };
  assert.deepEqual(toRanges(tr), [[0, 2], [5, 7]]);
});

test('planAppends: contiguous downloaded run from the playhead, within the window', () => {
  const have = new Set(range(0, 20));
  const pos = chunkStartSec(m, 2) + 0.5;
  assert.deepEqual(planAppends({ manifest: m, position: pos, have, appended: set(), aheadSec: 3 }), [2, 3, 4, 5]);
  assert.deepEqual(planAppends({ manifest: m, position: pos, have, appended: set(2, 3), aheadSec: 3 }), [4, 5]);
  const holey = new Set([2, 3, 5, 6]);
  assert.deepEqual(planAppends({ manifest: m, position: pos, have: holey, appended: set(), aheadSec: 10 }), [2, 3], 'stops at a missing chunk');
  assert.deepEqual(planAppends({ manifest: m, position: pos, have: set(), appended: set(), aheadSec: 10 }), []);
  assert.deepEqual(planAppends({ manifest: m, position: 1e6, have, appended: set(), aheadSec: 10 }), [19], 'at the end');
});

test('planAppends: after a seek into a reservoir chunk the previous chunk is appended first', () => {
  const have = new Set(range(0, 20));
  const pos = chunkStartSec(mr, 10) + 0.2;
  assert.deepEqual(planAppends({ manifest: mr, position: pos, have, appended: set(), aheadSec: 1 }), [9, 10, 11]);
  assert.deepEqual(planAppends({ manifest: mr, position: pos, have: new Set([10, 11]), appended: set(), aheadSec: 1 }), [],
    'waits for the predecessor');
  assert.deepEqual(planAppends({ manifest: mr, position: pos, have, appended: set(10), aheadSec: 1 }), [11], 'already appended');
});

test('planEvictions removes far behind and far ahead, nothing when small', () => {
  assert.deepEqual(planEvictions({ ranges: [], position: 100, duration: 200 }), []);
  assert.deepEqual(planEvictions({ ranges: [[0, 60]], position: 30, duration: 200, keepBehindSec: 20 }), [[0, 10]]);
  assert.deepEqual(planEvictions({ ranges: [[15, 60]], position: 30, duration: 200, keepBehindSec: 20 }), [], 'within keepBehind');
  assert.deepEqual(planEvictions({ ranges: [[0, 180]], position: 5, duration: 200, keepBehindSec: 20, appendAheadSec: 40, keepAheadSlackSec: 30 }),
    [[75, 200]], 'after a backward seek');
});

test('chunksInRange lists chunks intersecting a time range', () => {
  assert.deepEqual(chunksInRange(m, chunkStartSec(m, 3) + 0.1, chunkEndSec(m, 5) - 0.1), [3, 4, 5]);
  assert.deepEqual(chunksInRange(m, 0, chunkEndSec(m, 1)), [0, 1]);
  assert.deepEqual(chunksInRange(m, chunkStartSec(m, 19), 1e9), [19]);
});
