import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeChunk, decodeChunk, encodeText, decodeText, validTrackId, HEADER_SIZE, MAX_PAYLOAD, encodeBitfield, decodeBitfield, MAX_BITFIELD_CHUNKS } from '../../js/wire.js';

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

test('bitfield codec: bit i is byte i/8, MSB first, standard base64 (the PROTOCOL.md examples)', () => {
  const flags = (n, set) => Array.from({ length: n }, (_, i) => set(i));
  // §2.3: 31 chunks, the first 17 held → ff ff 80 00.
  assert.equal(encodeBitfield(flags(31, (i) => i < 17)), '//+AAA==');
  assert.deepEqual(decodeBitfield('//+AAA==', 31), flags(31, (i) => i < 17));
  // §4.1: 31 chunks, the first 7 held → fe 00 00 00.
  assert.equal(encodeBitfield(flags(31, (i) => i < 7)), '/gAAAA==');
  assert.equal(encodeBitfield([]), '');
  assert.equal(encodeBitfield(flags(8, (i) => i === 0 || i === 7)), 'gQ==');
  // Round trips at every length around byte boundaries, against Node's base64.
  for (const n of [1, 7, 8, 9, 15, 16, 17, 100, 1000]) {
    const f = flags(n, (i) => (i * 7919) % 3 === 0);
    const s = encodeBitfield(f);
    const bytes = Buffer.from(s, 'base64');
    assert.equal(bytes.length, Math.ceil(n / 8));
    for (let i = 0; i < n; i++) assert.equal((bytes[i >> 3] & (0x80 >> (i & 7))) !== 0, f[i], `bit ${i} of ${n}`);
    assert.deepEqual(decodeBitfield(s, n), f);
  }
});

test('bitfield codec: a bitfield not matching the chunk count is refused (null)', () => {
  assert.equal(decodeBitfield('//+AAA==', 24), null, '4 bytes for 24 chunks');
  assert.equal(decodeBitfield('//+AAA==', 33), null, '4 bytes for 33 chunks');
  assert.ok(decodeBitfield('//+AAA==', 30), '30 chunks fit in 4 bytes, the unused bits being zero');
  assert.equal(decodeBitfield('//+AAQ==', 31), null, 'a bit set past the last chunk');
  assert.equal(decodeBitfield('//+A', 31), null, 'too short');
  assert.equal(decodeBitfield('//+AAAA=', 31), null, 'too long');
  assert.equal(decodeBitfield('//+AAA', 31), null, 'unpadded');
  assert.equal(decodeBitfield('//+A AA=', 31), null, 'not base64');
  assert.equal(decodeBitfield('//+AAA==', 0), null, 'no chunks');
  assert.equal(decodeBitfield('', 0), null);
  assert.equal(decodeBitfield('gA==', 1.5), null);
  assert.equal(decodeBitfield('gA==', MAX_BITFIELD_CHUNKS + 1), null);
  assert.equal(decodeBitfield(null, 8), null);
  assert.equal(decodeBitfield(42, 8), null);
  assert.deepEqual(decodeBitfield('gA==', 1), [true]);
  assert.equal(decodeBitfield('wA==', 1), null, 'bit 1 of a 1-chunk track');
});
