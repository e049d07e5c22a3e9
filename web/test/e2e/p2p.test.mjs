// Phase 2 end to end: two browser contexts (two peers) against one hub. The
// first plays a track from the hub and becomes a seeder; the second must get
// most of the same track from the first over a direct DataChannel.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, artifactPath, useServerAndBrowser, pageStats, HOST_CANDIDATES, waitUntil, waitReady } from './harness.mjs';

// Host candidates instead of mDNS names, so that peers on this machine can reach the browser.
const env = useServerAndBrowser({ browserArgs: HOST_CANDIDATES });

test('a reloaded page seeds from its persistent cache; the second peer gets most of the track from it', { timeout: 120000 }, async () => {
  const ctxA = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const ctxB = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const a = await openPage(ctxA, env.server.url);
    const tracks = await (await fetch(`${env.server.url}/api/tracks`)).json();
    const track = tracks[0];
    const manifest = await (await fetch(`${env.server.url}/api/tracks/${track.id}`)).json();

    assert.equal((await pageStats(a.page)).transport, 'hub', 'A reached the hub DataChannel');
    await a.page.evaluate((id) => { window.ztream.autoAdvance = false; return window.ztream.play(id); }, track.id);
    await waitUntil(a.page, (id) => window.ztream.stats().complete.includes(id), track.id, { timeout: 60000 });
    const sa = await pageStats(a.page);
    assert.ok(sa.hub_bytes >= manifest.size, `A got the track from the hub (${sa.hub_bytes} bytes)`);
    assert.equal(sa.http_bytes, 0, 'no HTTP fallback for A');

    // Reload A: the track comes back from its persistent cache (OPFS or
    // IndexedDB) and is announced in hello; A seeds it from there to B.
    await waitUntil(a.page, (id) => window.ztream.stats().cache.tracks.includes(id), track.id, { timeout: 10000 });
    await a.page.reload();
    await waitReady(a.page);
    const cached = await pageStats(a.page);
    assert.ok(cached.cache && cached.cache.tracks.includes(track.id), `cache after reload: ${JSON.stringify(cached.cache)}`);
    assert.equal(cached.complete.length, 0, 'nothing in memory yet');

    const b = await openPage(ctxB, env.server.url);
    assert.equal((await pageStats(b.page)).transport, 'hub');
    await b.page.evaluate((id) => { window.ztream.autoAdvance = false; return window.ztream.play(id); }, track.id);
    await waitUntil(b.page, (id) => window.ztream.stats().complete.includes(id), track.id, { timeout: 60000 });
    await waitUntil(b.page, () => window.ztream.stats().currentTime > 2, undefined, { timeout: 15000 });
    const sb = await pageStats(b.page);
    const received = sb.server_bytes + sb.p2p_bytes;
    assert.ok(received >= manifest.size, `B received ${received} bytes for a track of ${manifest.size}`);
    const share = sb.p2p_bytes / received;
    // The numbers the issue asks for, in the CI log: p2p share ≥ 0.6, no stall, start < 1.5 s.
    console.log(`p2p: second page p2p share ${share.toFixed(3)} (peer ${sb.p2p_bytes}, server ${sb.server_bytes}), ` +
      `stalls ${sb.stalls}, start latency ${sb.startup_ms === null ? 'n/a' : sb.startup_ms.toFixed(0) + ' ms'}, ` +
      `emergency fetches ${sb.emergency_fetches}`);
    if (sb.stalls > 0) console.log(`p2p: B's log:\n${(await b.page.evaluate(() => window.ztream.log.join('\n')))}`);
    assert.ok(share >= 0.6, `p2p share ${share.toFixed(3)} (peer ${sb.p2p_bytes}, server ${sb.server_bytes})`);
    assert.equal(sb.bad_chunks, 0);
    assert.equal(sb.stalls, 0);
    // Product requirement (not a micro-timing): playback starts within 1.5 s of play().
    assert.ok(sb.startup_ms !== null && sb.startup_ms < 1500, `start latency ${sb.startup_ms} ms`);
    assert.ok(sb.playing, 'B plays');
    const sa2 = await pageStats(a.page);
    assert.ok(sa2.uploaded_bytes >= sb.p2p_bytes, `A uploaded ${sa2.uploaded_bytes} ≥ what B got from peers`);
    // A replays the track without the network: every byte from its cache.
    await a.page.evaluate((id) => { window.ztream.autoAdvance = false; return window.ztream.play(id); }, track.id);
    const replay = await pageStats(a.page);
    assert.equal(replay.cache_bytes, manifest.size, 'replayed from the cache');
    assert.equal(replay.server_bytes, 0, 'nothing from the server on replay');
    // B's chunk map shows the peer's chunks.
    const peerCells = await b.page.locator('#chunkmap .c[data-source="peer"]').count();
    assert.ok(peerCells > manifest.chunks.length / 2, `${peerCells} peer cells`);
    await b.page.screenshot({ path: artifactPath('p2p-leecher.png') });
    await a.page.screenshot({ path: artifactPath('p2p-seeder.png') });
    assert.deepEqual(a.problems, []);
    assert.deepEqual(b.problems, []);
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});
