// Several hubs through NATS, in the browser: two `ztream serve --nats`
// processes share one Debian nats-server (JetStream). A Chromium page on hub
// A plays a track; a page on hub B then gets most of it from page A: hub B's
// tracker finds the seeder through the cluster and the two pages' WebRTC
// signaling crosses the hubs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, startNats, hubHealth, launchBrowser, openPage, pageStats, waitUntil, hubMetric, artifactPath, HOST_CANDIDATES,
} from './harness.mjs';

const env = {};
before(async () => {
  env.nats = await startNats();
  env.a = await startServer(['--nats', env.nats.url, '--hub-id', 'hub-a']);
  env.b = await startServer(['--nats', env.nats.url, '--hub-id', 'hub-b']);
  env.browser = await launchBrowser(HOST_CANDIDATES);
});
after(async () => {
  if (env.browser) await env.browser.close();
  for (const s of [env.a, env.b]) if (s) await s.stop();
  if (env.nats) await env.nats.stop();
});

test('a page on hub B gets a track from a page on hub A through the cluster', { timeout: 150000 }, async () => {
  for (let i = 0; ; i++) {
    const [ha, hb] = [await hubHealth(env.a.url), await hubHealth(env.b.url)];
    if (ha.hubs.includes('hub-b') && hb.hubs.includes('hub-a')) break;
    assert.ok(i < 100, `the hubs did not find each other: ${JSON.stringify([ha, hb])}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const ctxA = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const ctxB = await env.browser.newContext({ viewport: { width: 390, height: 844 } });
  try {
    // The two hubs ingested the same demo library: the same track ids.
    const tracks = await (await fetch(`${env.a.url}/api/tracks`)).json();
    const tracksB = await (await fetch(`${env.b.url}/api/tracks`)).json();
    assert.deepEqual(tracksB.map((t) => t.id).sort(), tracks.map((t) => t.id).sort());
    const track = tracks[0];
    const manifest = await (await fetch(`${env.a.url}/api/tracks/${track.id}`)).json();

    const a = await openPage(ctxA, env.a.url);
    await a.page.evaluate((id) => { window.ztream.autoAdvance = false; return window.ztream.play(id); }, track.id);
    await waitUntil(a.page, (id) => window.ztream.stats().complete.includes(id), track.id, { timeout: 60000 });
    for (let i = 0; (await hubHealth(env.b.url)).remote_peers < 1; i++) {
      assert.ok(i < 100, 'hub B never learned of the seeder on hub A');
      await new Promise((r) => setTimeout(r, 100));
    }

    const b = await openPage(ctxB, env.b.url);
    await b.page.evaluate((id) => { window.ztream.autoAdvance = false; return window.ztream.play(id); }, track.id);
    await waitUntil(b.page, (id) => window.ztream.stats().complete.includes(id), track.id, { timeout: 60000 });
    await waitUntil(b.page, () => window.ztream.stats().currentTime > 2, undefined, { timeout: 15000 });
    const sb = await pageStats(b.page);
    const received = sb.server_bytes + sb.p2p_bytes;
    const share = sb.p2p_bytes / received;
    const cross = await hubMetric(env.b.url, 'ztream_cross_hub_pairs_total', {});
    console.log(`cluster: page on hub B: p2p share ${share.toFixed(3)} (peer ${sb.p2p_bytes}, server ${sb.server_bytes}), ` +
      `stalls ${sb.stalls}, start ${sb.startup_ms === null ? 'n/a' : sb.startup_ms.toFixed(0) + ' ms'}, cross-hub pairs on hub B ${cross}`);
    assert.ok(received >= manifest.size, `B received ${received} bytes for a track of ${manifest.size}`);
    assert.ok(share >= 0.6, `p2p share ${share.toFixed(3)}`);
    assert.ok(cross >= 1, `hub B brokered ${cross} cross-hub pairs`);
    assert.equal(sb.stalls, 0);
    assert.equal(sb.bad_chunks, 0);
    const sa = await pageStats(a.page);
    assert.ok(sa.uploaded_bytes >= sb.p2p_bytes, `A uploaded ${sa.uploaded_bytes} ≥ what B got from peers`);
    await b.page.screenshot({ path: artifactPath('cluster-leecher-phone.png') });
    await a.page.screenshot({ path: artifactPath('cluster-seeder.png') });
    assert.deepEqual(a.problems, []);
    assert.deepEqual(b.problems, []);
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});
