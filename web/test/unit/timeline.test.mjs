import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkStartSec, chunkEndSec, chunkAt, durationSec, appendParams, formatTime, samplesPerChunk } from '../../js/timeline.js';
import { makeManifest } from './helpers.mjs';

const { manifest: m } = makeManifest({ n: 10, lastFrames: 20 });

test('chunk times follow seq·F·S minus the encoder delay', () => {
  assert.equal(samplesPerChunk(m), 38 * 1152);
  assert.equal(chunkStartSec(m, 0), -576 / 44100);
  assert.equal(chunkStartSec(m, 3), (3 * 38 * 1152 - 576) / 44100);
  assert.equal(chunkEndSec(m, 3), chunkStartSec(m, 4));
  assert.equal(durationSec(m), (9 * 38 * 1152 + 20 * 1152 - 576 - 1080) / 44100);
  assert.equal(chunkEndSec(m, 9), durationSec(m), 'the last chunk ends at the trimmed duration');
});

test('chunkAt inverts chunkStartSec and clamps', () => {
  for (let s = 0; s < m.chunks.length; s++) {
    assert.equal(chunkAt(m, chunkStartSec(m, s) + 1e-6), s);
    assert.equal(chunkAt(m, chunkEndSec(m, s) - 1e-6), s);
  }
  assert.equal(chunkAt(m, -5), 0);
  assert.equal(chunkAt(m, 0), 0);
  assert.equal(chunkAt(m, 1e6), 9);
});

test('appendParams: gapless trim window', () => {
  assert.deepEqual(appendParams(m, 2), { timestampOffset: chunkStartSec(m, 2), appendWindowStart: 0, appendWindowEnd: m.total_samples / 44100 });
});

test('formatTime', () => {
  assert.equal(formatTime(0), '0:00');
  assert.equal(formatTime(59.9), '0:59');
  assert.equal(formatTime(125), '2:05');
  assert.equal(formatTime(NaN), '0:00');
});
