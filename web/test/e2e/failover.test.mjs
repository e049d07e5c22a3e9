// Hubs behind a load balancer: a page opened through a TCP balancer in front
// of hubs A and B (one NATS cluster, no sticky sessions) plays a track seeded
// by a page on hub C. The hub the page's WebSocket landed on is killed
// (SIGKILL) mid-playback: the page keeps playing from its peer and its
// buffer, reconnects to its origin (the balancer sends it to the surviving
// hub), re-announces what it holds, and the cluster forgets the dead hub.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, startNats, startBalancer, hubHealth, launchBrowser, openPage, pageStats, waitUntil, hubMetric,
  artifactPath, HOST_CANDIDATES,
} from './harness.mjs';

const env = {};
before(async () => {
  env.nats = await startNats();
  env.a = await startServer(['--nats', env.nats.url, '--hub-id', 'hub-a']);
  env.b = await startServer(['--nats', env.nats.url, '--hub-id', 'hub-b']);
  env.c = await startServer(['--nats', env.nats.url, '--hub-id', 'hub-c']);
  env.lb = await startBalancer([env.a.port, env.b.port]);
  env.browser = await launchBrowser(HOST_CANDIDATES);
});
after(async () => {
  if (env.browser) await env.browser.close();
  if (env.lb) await env.lb.close();
  for (const s of [env.a, env.b, env.c]) if (s) await s.stop();
  if (env.nats) await env.nats.stop();
});

/** Waits (bounded) until cond(hub C's /healthz cluster state) holds. */
async function untilHubC(cond, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = await hubHealth(env.c.url);
    if (cond(h)) return h;
    assert.ok(Date.now() < deadline, `${what}: hub C sees ${JSON.stringify(h)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a page behind a load balancer keeps playing when its hub is killed', { timeout: 180000 }, async () => {
  await untilHubC((h) => h.hubs.includes('hub-a') && h.hubs.includes('hub-b'), 'the hubs did not find each other');
  const ctxS = await env.browser.newContext();
  const ctxP = await env.browser.newContext({ viewport: { width: 390, height: 844 } });
  try {
    const tracks = await (await fetch(`${env.c.url}/api/tracks`)).json();
    const track = tracks[tracks.length - 1];
    const manifest = await (await fetch(`${env.c.url}/api/tracks/${track.id}`)).json();

    // The seeder, on hub C (not behind the balancer).
    const s = await openPage(ctxS, env.c.url);
    await s.page.evaluate((id) => { window.ztream.autoAdvance = false; return window.ztream.play(id); }, track.id);
    await waitUntil(s.page, (id) => window.ztream.stats().complete.includes(id), track.id, { timeout: 60000 });
    for (const hub of [env.a, env.b]) {
      for (let i = 0; (await hubHealth(hub.url)).remote_peers < 1; i++) {
        assert.ok(i < 100, 'a hub behind the balancer never learned of the seeder on hub C');
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    // The listener, through the balancer.
    const p = await openPage(ctxP, env.lb.url);
    await waitUntil(p.page, () => window.ztream.stats().transport === 'hub', undefined, { timeout: 20000 });
    const before = await pageStats(p.page);
    const onA = await hubMetric(env.a.url, 'ztream_connected_peers', {});
    const onB = await hubMetric(env.b.url, 'ztream_connected_peers', {});
    assert.equal(onA + onB, 1, `the page is on one hub (A ${onA}, B ${onB})`);
    const [dead, alive, deadID] = onA === 1 ? [env.a, env.b, 'hub-a'] : [env.b, env.a, 'hub-b'];

    await p.page.evaluate((id) => { window.ztream.autoAdvance = false; return window.ztream.play(id); }, track.id);
    await waitUntil(p.page, () => window.ztream.stats().currentTime > 1, undefined, { timeout: 30000 });
    const atKill = await pageStats(p.page);
    const killedAt = Date.now();
    await dead.kill();

    // Back on a hub, through the same origin: the balancer skips the dead one.
    await waitUntil(p.page, (first) => {
      const st = window.ztream.stats();
      return st.transport === 'hub' && st.peer_id && st.peer_id !== first;
    }, before.peer_id, { timeout: 45000 });
    const reconnectMs = Date.now() - killedAt;
    assert.equal(await hubMetric(alive.url, 'ztream_connected_peers', {}), 1, 'the page is on the surviving hub');

    await waitUntil(p.page, (id) => window.ztream.stats().complete.includes(id), track.id, { timeout: 60000 });
    await waitUntil(p.page, (t) => window.ztream.stats().currentTime > t + 10, atKill.currentTime, { timeout: 30000 });

    // Hub C forgets the dead hub and learns the page again from the survivor
    // (the page's hello lists the track it now holds).
    await untilHubC((h) => !h.hubs.includes(deadID), 'the dead hub was not forgotten');
    await untilHubC((h) => h.remote_peers >= 1, 'the page did not re-announce its track');

    const st = await pageStats(p.page);
    const received = st.server_bytes + st.p2p_bytes;
    console.log(`failover: page reconnected ${reconnectMs} ms after its hub (${deadID}) was killed, at ${atKill.currentTime.toFixed(1)} s ` +
      `into the track; p2p share ${(st.p2p_bytes / received).toFixed(3)} (peer ${st.p2p_bytes}, server ${st.server_bytes}), ` +
      `stalls ${st.stalls}, balancer picks ${JSON.stringify([...env.lb.picks])}`);
    assert.ok(received >= manifest.size, `received ${received} bytes for a track of ${manifest.size}`);
    assert.equal(st.stalls, 0, 'no stall across the failover');
    assert.equal(st.bad_chunks, 0);
    await p.page.screenshot({ path: artifactPath('failover-phone.png') });
    // A dead hub makes the browser log failed WebSocket connections (console
    // errors it prints itself); nothing else may go wrong.
    const others = p.problems.filter((m) => !/WebSocket connection to .* failed/.test(m));
    assert.deepEqual(others, []);
    assert.deepEqual(s.problems, []);
  } finally {
    await ctxS.close();
    await ctxP.close();
  }
});
