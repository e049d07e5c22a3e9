import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matches, fold, formatBytes } from '../../js/ui.js';

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
