import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitTrack, joinTrack } from '../../js/cache.js';
import { backoffDelay } from '../../js/net.js';
import { makeManifest } from './helpers.mjs';

test('joinTrack and splitTrack round trip by manifest chunk sizes', () => {
  const { manifest, data } = makeManifest({ n: 5, lastFrames: 7 });
  const joined = joinTrack(data);
  assert.equal(joined.length, manifest.size);
  const back = splitTrack(manifest, joined);
  assert.equal(back.length, 5);
  back.forEach((c, i) => assert.deepEqual(c, data[i]));
  assert.equal(splitTrack(manifest, joined.subarray(1)), null, 'a size mismatch is refused');
});

test('reconnect backoff doubles from 0.5 s to 15 s with ±25 % jitter', () => {
  assert.equal(backoffDelay(0, () => 0.5), 500);
  assert.equal(backoffDelay(1, () => 0.5), 1000);
  assert.equal(backoffDelay(3, () => 0.5), 4000);
  assert.equal(backoffDelay(20, () => 0.5), 15000);
  assert.equal(backoffDelay(0, () => 0), 375);
  assert.equal(backoffDelay(0, () => 0.999999), 625);
});
