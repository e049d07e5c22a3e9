import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matches, fold, formatBytes, degradedNotice } from '../../js/ui.js';

const t = { title: 'Lanterns on the Mesh', artist: 'Ztream Demo Band', album: 'Café Ztream' };

test('search matches every word in title, artist or album, ignoring case and accents', () => {
  assert.ok(matches(t, ''));
  assert.ok(matches(t, '  '));
  assert.ok(matches(t, 'lantern'));
  assert.ok(matches(t, 'MESH demo'));
  assert.ok(matches(t, 'cafe'));
  assert.ok(!matches(t, 'mesh rock'));
  assert.equal(fold('Éé'), 'ee');
});

test('formatBytes', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(12345), '12.3 kB');
  assert.equal(formatBytes(4560000), '4.56 MB');
  assert.equal(formatBytes(2e9), '2.00 GB');
});

test('degradedNotice: one calm line naming what is missing, nothing when all is there', () => {
  assert.equal(degradedNotice({ cache: true, webrtc: true }), '');
  assert.match(degradedNotice({ cache: false, webrtc: true }), /^Tracks are not kept after this page closes/);
  assert.match(degradedNotice({ cache: true, webrtc: false }), /^This browser cannot share music with other listeners \(no WebRTC\)/);
  const both = degradedNotice({ cache: false, webrtc: false });
  assert.match(both, /no WebRTC.*; tracks are not kept.*\.$/);
  assert.equal(both.split('\n').length, 1);
  // Streaming whole files replaces what WebRTC would say: no peers either way.
  const stream = degradedNotice({ cache: true, webrtc: false, mse: false });
  assert.match(stream, /^This browser cannot play tracks piece by piece \(no usable Media Source for MP3\), so each track streams whole from the server/);
  assert.doesNotMatch(stream, /WebRTC/);
  assert.equal(degradedNotice({ cache: true, webrtc: true, mse: true }), '');
});
