// The hub restarts: the page notices, keeps working over HTTP meanwhile,
// reconnects with backoff and gets its hub DataChannel back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, openPage, useServerAndBrowser, waitUntil } from './harness.mjs';

const env = useServerAndBrowser();

test('the page reconnects to a restarted hub', { timeout: 90000 }, async () => {
  const context = await env.browser.newContext();
  try {
    const { page } = await openPage(context, env.server.url);
    const transport = () => page.evaluate(() => window.ztream.stats().transport);
    assert.equal(await transport(), 'hub');
    const firstPeer = await page.evaluate(() => window.ztream.stats().peer_id);

    const { port, data } = env.server;
    await env.server.stop({ keepData: true });
    await waitUntil(page, () => window.ztream.stats().transport === 'http', undefined, { timeout: 20000 });
    env.server = await startServer([], { port, data });
    await waitUntil(page, () => window.ztream.stats().transport === 'hub', undefined, { timeout: 45000 });
    const s0 = await page.evaluate(() => window.ztream.stats());
    assert.notEqual(s0.peer_id, firstPeer, 'a new session with the hub');

    const tracks = await (await fetch(`${env.server.url}/api/tracks`)).json();
    await page.evaluate((id) => window.ztream.play(id), tracks[0].id);
    await waitUntil(page, () => window.ztream.stats().hub_bytes > 0, undefined, { timeout: 15000 });
    const s = await page.evaluate(() => window.ztream.stats());
    assert.equal(s.http_bytes, 0, 'chunks came over the new hub DataChannel');
  } finally {
    await context.close();
  }
});
