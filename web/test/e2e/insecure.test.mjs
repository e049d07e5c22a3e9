// A page opened by a LAN address over plain HTTP is not a secure context:
// no crypto.subtle, no OPFS. The client must still play there (SHA-256 in
// JavaScript, no persistent cache), seed another such page peer to peer and
// reject a corrupted chunk from a bad seeder.
//
// Chromium treats 127.0.0.1 and localhost as secure; the host name lan.test,
// mapped to 127.0.0.1 by --host-resolver-rules, is not, as a LAN address
// such as http://192.168.1.20:8080 is not.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, useServerAndBrowser, pageStats, firstManifests, HOST_CANDIDATES, waitUntil } from './harness.mjs';

const env = useServerAndBrowser({
  serverArgs: ['--max-peers-per-ip', '-1'],
  browserArgs: [...HOST_CANDIDATES, '--host-resolver-rules=MAP lan.test 127.0.0.1'],
  goPeers: true,
});

/** The client's URL on the host name lan.test (not a secure context). */
const lanURL = () => env.server.url.replace('127.0.0.1', 'lan.test');

/**
 * Opens the client on lan.test in a fresh context and checks that the page
 * is not a secure context.
 */
async function openInsecure() {
  const ctx = await env.browser.newContext();
  const p = await openPage(ctx, `${lanURL()}/`);
  const secure = await p.page.evaluate(() => ({
    secure: window.isSecureContext,
    subtle: !!(globalThis.crypto && globalThis.crypto.subtle),
    opfs: !!(navigator.storage && navigator.storage.getDirectory),
  }));
  assert.deepEqual(secure, { secure: false, subtle: false, opfs: false }, 'lan.test is not a secure context');
  return { ctx, ...p };
}

test('A: without a secure context a page plays and completes a track, then seeds a second such page peer to peer', { timeout: 120000 }, async () => {
  const [m] = await firstManifests(env.server.url, 1);
  const a = await openInsecure();
  const b = await openInsecure();
  try {
    assert.equal((await pageStats(a.page)).transport, 'hub', 'A reached the hub DataChannel');
    await a.page.evaluate((id) => { window.ztream.autoAdvance = false; return window.ztream.play(id); }, m.id);
    await waitUntil(a.page, (id) => window.ztream.stats().complete.includes(id), m.id, { timeout: 60000 });
    await waitUntil(a.page, () => window.ztream.stats().currentTime > 2, undefined, { timeout: 20000 });
    const sa = await pageStats(a.page);
    assert.equal(sa.bad_chunks, 0, 'every chunk verified by the JavaScript SHA-256');
    assert.equal(sa.stalls, 0);

    await b.page.evaluate((id) => { window.ztream.autoAdvance = false; return window.ztream.play(id); }, m.id);
    await waitUntil(b.page, (id) => window.ztream.stats().complete.includes(id), m.id, { timeout: 60000 });
    await waitUntil(b.page, () => window.ztream.stats().currentTime > 2, undefined, { timeout: 20000 });
    const sb = await pageStats(b.page);
    console.log(`insecure A: ${JSON.stringify({ server: sa.server_bytes, p2p: sa.p2p_bytes })} B: ${JSON.stringify({ server: sb.server_bytes, p2p: sb.p2p_bytes, startup_ms: sb.startup_ms })}`);
    assert.ok(sb.p2p_bytes > m.size / 2, `B got most of the track from A: ${sb.p2p_bytes} of ${m.size} bytes`);
    assert.equal(sb.bad_chunks, 0);
    assert.equal(sb.stalls, 0);
    assert.ok(sb.playing, 'B plays');
    assert.deepEqual(a.problems, []);
    assert.deepEqual(b.problems, []);
  } finally {
    await a.ctx.close();
    await b.ctx.close();
  }
});

test('B: without a secure context a corrupt chunk from a bad seeder is rejected; the track completes verified', { timeout: 120000 }, async () => {
  const [, m] = await firstManifests(env.server.url, 2);
  const g = env.startGoPeer(m.id, { hold: '80s', fault: 'bad_bytes' });
  const played = await g.played(60000);
  assert.ok(played.complete, `the Go peer played the whole track: ${JSON.stringify(played)}`);
  const b = await openInsecure();
  try {
    await b.page.evaluate((id) => { window.ztream.autoAdvance = false; return window.ztream.play(id); }, m.id);
    await waitUntil(b.page, (id) => window.ztream.stats().complete.includes(id), m.id, { timeout: 60000 });
    const sb = await pageStats(b.page);
    assert.ok(sb.bad_chunks > 0, 'the page got (and rejected) corrupt chunks from the Go peer');
    assert.ok(sb.bad_peers.includes(played.peer_id), `the Go peer ${played.peer_id} is remembered as bad: ${sb.bad_peers}`);
    assert.equal(sb.p2p_bytes, 0, 'no byte of the corrupt seeder was kept');
    assert.equal(sb.server_bytes + sb.p2p_bytes, m.size, 'every verified chunk once: the whole track');
    assert.equal(sb.stalls, 0);
    assert.deepEqual(b.problems, []);
  } finally {
    await b.ctx.close();
    await g.stop();
  }
});
