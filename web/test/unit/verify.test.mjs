import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256Hex, verifyChunk, toHex } from '../../js/verify.js';
import { makeManifest } from './helpers.mjs';

test('sha256Hex matches known vectors', async () => {
  assert.equal(await sha256Hex(new Uint8Array(0)), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(await sha256Hex(new TextEncoder().encode('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(toHex(Uint8Array.of(0, 15, 255)), '000fff');
});

test('without crypto.subtle (not a secure context) sha256Hex computes the same digests in JavaScript', async () => {
  const none = /** @type {any} */ (null);
  assert.equal(await sha256Hex(new Uint8Array(0), none), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(await sha256Hex(new TextEncoder().encode('abc'), none), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  for (const n of [1, 55, 56, 64, 65, 16_000, 65_536]) {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + n) & 0xff;
    assert.equal(await sha256Hex(b, none), await sha256Hex(b), `${n} bytes`);
  }
});

test('verifyChunk accepts the right bytes and rejects others', async () => {
  const { manifest, data } = makeManifest({ n: 3 });
  assert.equal(await verifyChunk(manifest, 1, data[1]), null);
  const bad = data[1].slice();
  bad[100] ^= 1;
  assert.match(await verifyChunk(manifest, 1, bad), /sha256/);
  assert.match(await verifyChunk(manifest, 1, data[1].subarray(1)), /bytes, manifest says/);
  assert.match(await verifyChunk(manifest, 0, data[1]), /sha256|bytes/);
  assert.match(await verifyChunk(manifest, 9, data[1]), /not in the manifest/);
});
