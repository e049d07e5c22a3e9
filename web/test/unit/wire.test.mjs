import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeChunk, decodeChunk, encodeText, decodeText, validTrackId, HEADER_SIZE, MAX_PAYLOAD } from '../../js/wire.js';

const track = '0123456789abcdef0123456789abcdef';

test('binary chunk message layout matches chunkproto (kind, raw track id, big-endian seq, payload)', () => {
  const msg = encodeChunk(track, 0x01020304, Uint8Array.of(9, 8, 7));
  assert.equal(HEADER_SIZE, 21);
  assert.deepEqual([...msg.subarray(0, 21)], [
    0x01, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 1, 2, 3, 4,
  ]);
  assert.deepEqual([...msg.subarray(21)], [9, 8, 7]);
  const c = decodeChunk(msg);
  assert.equal(c.track, track);
  assert.equal(c.seq, 0x01020304);
  assert.deepEqual([...c.data], [9, 8, 7]);
});

test('encodeChunk and decodeChunk refuse invalid input', () => {
  assert.throws(() => encodeChunk('XYZ', 0, Uint8Array.of(1)));
  assert.throws(() => encodeChunk(track, -1, Uint8Array.of(1)));
  assert.throws(() => encodeChunk(track, 0, new Uint8Array(0)));
  assert.throws(() => encodeChunk(track, 0, new Uint8Array(MAX_PAYLOAD + 1)));
  const ok = encodeChunk(track, 1, Uint8Array.of(1));
  assert.equal(decodeChunk(ok.subarray(0, 21)), null, 'no payload');
  const bad = ok.slice();
  bad[0] = 2;
  assert.equal(decodeChunk(bad), null, 'unknown kind');
  assert.equal(decodeChunk(new Uint8Array(HEADER_SIZE + MAX_PAYLOAD + 1).fill(1)), null, 'too large');
});

test('text messages', () => {
  assert.equal(encodeText('request', { id: 7, track, from: 0, to: 40 }), `{"type":"request","id":7,"track":"${track}","from":0,"to":40}`);
  assert.deepEqual(decodeText('{"type":"done","id":7}'), { type: 'done', id: 7 });
  assert.equal(decodeText('{"id":7}'), null);
  assert.equal(decodeText('not json'), null);
  assert.equal(decodeText('x'.repeat(5000)), null);
  assert.ok(validTrackId(track));
  assert.ok(!validTrackId(track.toUpperCase()));
  assert.ok(!validTrackId(track + '0'));
});
