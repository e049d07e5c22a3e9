import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseFrameHeader, splitFrames } from '../../js/mp3.js';
import { makeFrame, concat } from './helpers.mjs';

test('parseFrameHeader: MPEG-1 Layer III 128 kbit/s 44.1 kHz', () => {
  const h = parseFrameHeader(makeFrame({ bitrateIndex: 9, srIndex: 0 }));
  assert.equal(h.version, '1');
  assert.equal(h.bitrate, 128);
  assert.equal(h.sampleRate, 44100);
  assert.equal(h.samplesPerFrame, 1152);
  assert.equal(h.frameSize, 417);
  assert.equal(h.channels, 2);
  assert.equal(parseFrameHeader(makeFrame({ padding: true })).frameSize, 418);
});

test('parseFrameHeader: MPEG-2 and MPEG-2.5 use 576 samples and the 72× size factor', () => {
  const h2 = parseFrameHeader(makeFrame({ mpeg: '2', bitrateIndex: 8, srIndex: 0, mono: true })); // 64 kbit/s, 22.05 kHz
  assert.deepEqual([h2.version, h2.sampleRate, h2.samplesPerFrame, h2.frameSize, h2.channels], ['2', 22050, 576, 208, 1]);
  const h25 = parseFrameHeader(makeFrame({ mpeg: '2.5', bitrateIndex: 1, srIndex: 2 })); // 8 kbit/s, 8 kHz
  assert.deepEqual([h25.version, h25.sampleRate, h25.samplesPerFrame, h25.frameSize], ['2.5', 8000, 576, 72]);
});

test('parseFrameHeader rejects non-headers', () => {
  const good = makeFrame();
  assert.equal(parseFrameHeader(good.subarray(0, 3)), null, 'too short');
  const cases = {
    'no sync': (f) => { f[0] = 0xfe; },
    'reserved version': (f) => { f[1] = (f[1] & ~0x18) | 0x08; },
    'layer I': (f) => { f[1] = (f[1] & ~0x06) | 0x06; },
    'free format': (f) => { f[2] &= 0x0f; },
    'bad bitrate': (f) => { f[2] |= 0xf0; },
    'reserved sample rate': (f) => { f[2] |= 0x0c; },
  };
  for (const [name, mutate] of Object.entries(cases)) {
    const f = good.slice();
    mutate(f);
    assert.equal(parseFrameHeader(f), null, name);
  }
  assert.equal(parseFrameHeader(good, -1), null);
});

test('splitFrames splits a run of frames of varying size', () => {
  const frames = [makeFrame(), makeFrame({ padding: true }), makeFrame({ bitrateIndex: 14 }), makeFrame()];
  const got = splitFrames(concat(frames));
  assert.deepEqual(got.map((f) => f.size), [417, 418, 1044, 417]);
  assert.deepEqual(got.map((f) => f.offset), [0, 417, 835, 1879]);
  assert.deepEqual(splitFrames(new Uint8Array(0)), []);
});

test('splitFrames throws on a cut frame or garbage', () => {
  const two = concat([makeFrame(), makeFrame()]);
  assert.throws(() => splitFrames(two.subarray(0, two.length - 1)), /needs 417 bytes/);
  const bad = two.slice();
  bad[417] = 0;
  assert.throws(() => splitFrames(bad), /at byte 417/);
});

test('splitFrames walks a real LAME file (bundled demo track) to its end', () => {
  const path = fileURLToPath(new URL('../../../demo/tracks/01-handshake-at-dawn.mp3', import.meta.url));
  let b = new Uint8Array(readFileSync(path));
  if (b[0] === 0x49 && b[1] === 0x44 && b[2] === 0x33) { // ID3v2: syncsafe size after 10-byte header
    const size = (b[6] << 21) | (b[7] << 14) | (b[8] << 7) | b[9];
    b = b.subarray(10 + size + ((b[5] & 0x10) ? 10 : 0));
  }
  if (b.length >= 128 && b[b.length - 128] === 0x54 && b[b.length - 127] === 0x41 && b[b.length - 126] === 0x47) {
    b = b.subarray(0, b.length - 128); // ID3v1
  }
  const frames = splitFrames(b);
  assert.ok(frames.length > 1000, `${frames.length} frames`);
  const h = parseFrameHeader(b);
  assert.equal(h.sampleRate, 44100);
  const last = frames[frames.length - 1];
  assert.equal(last.offset + last.size, b.length);
});
