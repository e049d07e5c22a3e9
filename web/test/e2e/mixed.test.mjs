// Mixed swarm: browsers and Go reference peers (package peer, run by
// web/test/gopeer) share one hub and seed each other over direct
// DataChannels. A: a Go peer that played a track seeds a browser. B: a
// browser that played a track seeds a Go peer. Every peer chunk is verified
// against the manifest on both sides.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, useServerAndBrowser, pageStats, firstManifests, HOST_CANDIDATES, waitUntil } from './harness.mjs';

// Host candidates instead of mDNS names, so that peers on this machine can reach the browser.
const env = useServerAndBrowser({ serverArgs: ['--max-peers-per-ip', '-1'], browserArgs: HOST_CANDIDATES, goPeers: true });

test('A: a Go peer that played a track seeds a browser, which gets most of it from the Go peer', { timeout: 180000 }, async () => {
  const [m] = await firstManifests(env.server.url, 2);
  const g = env.startGoPeer(m.id, { hold: '150s' });
  const played = await g.played();
  console.log(`mixed A: Go peer played ${m.id}: ${JSON.stringify(played)}`);
  assert.ok(played.complete, 'the Go peer played the whole track');
  assert.equal(played.server_bytes + played.p2p_bytes, m.size, 'it got the track');

  const ctx = await env.browser.newContext();
  try {
    const b = await openPage(ctx, `${env.server.url}/?cache=0`);
    assert.equal((await pageStats(b.page)).transport, 'hub');
    await b.page.evaluate((id) => { window.ztream.autoAdvance = false; return window.ztream.play(id); }, m.id);
    await waitUntil(b.page, (id) => window.ztream.stats().complete.includes(id), m.id, { timeout: 90000 });
    await waitUntil(b.page, () => window.ztream.stats().currentTime > 2, undefined, { timeout: 15000 });
    const sb = await pageStats(b.page);
    const received = sb.server_bytes + sb.p2p_bytes;
    const share = sb.p2p_bytes / received;
    console.log(`mixed A: browser p2p share ${share.toFixed(3)} (peer ${sb.p2p_bytes}, server ${sb.server_bytes}), ` +
      `stalls ${sb.stalls}, start ${sb.startup_ms && sb.startup_ms.toFixed(0)} ms`);
    assert.ok(received >= m.size, `received ${received} of ${m.size}`);
    assert.ok(share >= 0.6, `p2p share ${share.toFixed(3)}`);
    assert.equal(sb.bad_chunks, 0);
    assert.equal(sb.stalls, 0);
    assert.ok(sb.playing);
    assert.deepEqual(b.problems, []);
  } finally {
    await ctx.close();
  }
  const final = await g.stop();
  assert.ok(final, 'the Go peer reported when it left');
  console.log(`mixed A: Go peer uploaded ${final.uploaded_bytes} bytes`);
  assert.ok(final.uploaded_bytes >= m.size * 0.6, `the Go peer uploaded ${final.uploaded_bytes}`);
});

test('B: a browser that played a track seeds a Go peer, which gets most of it from the browser', { timeout: 180000 }, async () => {
  const [, m] = await firstManifests(env.server.url, 2);
  const ctx = await env.browser.newContext();
  try {
    const a = await openPage(ctx, `${env.server.url}/?cache=0`);
    assert.equal((await pageStats(a.page)).transport, 'hub');
    await a.page.evaluate((id) => { window.ztream.autoAdvance = false; return window.ztream.play(id); }, m.id);
    await waitUntil(a.page, (id) => window.ztream.stats().complete.includes(id), m.id, { timeout: 60000 });
    const sa = await pageStats(a.page);
    assert.ok(sa.server_bytes >= m.size, 'the browser got the track from the hub');

    const g = env.startGoPeer(m.id, { hold: '0s' });
    const played = await g.played();
    console.log(`mixed B: Go peer ${JSON.stringify(played)}`);
    assert.ok(played.complete, 'the Go peer played the whole track');
    assert.equal(played.hash_failures, 0, 'every chunk from the browser verified');
    assert.ok(played.p2p_bytes > played.server_bytes, `p2p ${played.p2p_bytes} > server ${played.server_bytes}`);
    assert.ok(played.seeders >= 1);
    const sa2 = await pageStats(a.page);
    console.log(`mixed B: browser uploaded ${sa2.uploaded_bytes} bytes`);
    assert.ok(sa2.uploaded_bytes >= played.p2p_bytes, `browser uploaded ${sa2.uploaded_bytes} ≥ ${played.p2p_bytes}`);
    await g.stop();
    assert.deepEqual(a.problems, []);
  } finally {
    await ctx.close();
  }
});
