// Keepalive (docs/PROTOCOL.md §2.5): the hub pings a quiet peer and closes
// one silent for 30 s. An idle page (nothing to fetch, no stats to send)
// must stay connected by answering pong: same peer id, no reconnect.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, useServerAndBrowser } from './harness.mjs';

/**
 * The hub checks every 15 s and closes a peer quiet for 30 s, so a silent
 * page is closed at the latest 45 s after its last message: wait longer.
 */
const IDLE_MS = 52000;

const env = useServerAndBrowser();

test('an idle page answers the hub pings and keeps its connection', { timeout: IDLE_MS + 60000 }, async () => {
  const ctx = await env.browser.newContext();
  try {
    const { page, problems } = await openPage(ctx, `${env.server.url}/?cache=0`);
    const before = await page.evaluate(() => window.ztream.stats());
    assert.equal(before.transport, 'hub');
    assert.ok(before.peer_id);
    await page.waitForTimeout(IDLE_MS);
    const after = await page.evaluate(() => window.ztream.stats());
    const log = await page.evaluate(() => window.ztream.log.join('\n'));
    assert.ok(!/websocket closed/.test(log), `the WebSocket was closed:\n${log}`);
    assert.equal(after.peer_id, before.peer_id, 'same hub connection');
    assert.equal(after.transport, 'hub');
    assert.deepEqual(problems, []);
  } finally {
    await ctx.close();
  }
});
