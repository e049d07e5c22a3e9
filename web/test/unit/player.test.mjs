import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendMode, playMode } from '../../js/player.js';
import { MP4_MIME } from '../../js/fmp4.js';

/** A Media Source class that supports exactly the given types. */
const supports = (...types) => ({ isTypeSupported: (/** @type {string} */ t) => types.includes(t) });

test('playMode: raw MP3 where the Media Source takes it, fMP4 next, else the whole file from the server', () => {
  assert.equal(playMode(supports('audio/mpeg', MP4_MIME)), 'mpeg');
  assert.equal(appendMode(supports(MP4_MIME)), 'mp4');
  assert.equal(playMode(supports(MP4_MIME)), 'mp4');
  assert.equal(appendMode(supports('audio/webm; codecs="opus"')), null);
  assert.equal(playMode(supports('audio/webm; codecs="opus"')), 'stream');
  assert.equal(playMode(null), 'stream', 'no Media Source at all');
});
