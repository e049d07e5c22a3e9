// When WebRTC cannot reach the hub, the page must fall back to the HTTP
// chunk endpoint within a few seconds and still play. Here the hub is made
// unreachable by dropping every remote ICE candidate in the page.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, useServerAndBrowser, waitUntil } from './harness.mjs';

const env = useServerAndBrowser();

test('without a hub DataChannel the page plays over HTTP', { timeout: 60000 }, async () => {
  const context = await env.browser.newContext();
  await context.addInitScript(() => {
    const Orig = window.RTCPeerConnection;
    window.RTCPeerConnection = class extends Orig {
      setRemoteDescription(d) {
        const sdp = d.sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate')).join('\r\n');
        return super.setRemoteDescription({ type: d.type, sdp });
      }
      addIceCandidate() {
        return Promise.resolve();
      }
    };
  });
  try {
    const t0 = Date.now();
    const { page, problems } = await openPage(context, env.server.url);
    const readyMs = Date.now() - t0;
    assert.ok(readyMs < 15000, `ready after ${readyMs} ms`);
    let s = await page.evaluate(() => window.ztream.stats());
    assert.equal(s.transport, 'http');
    assert.ok(s.peer_id, 'the WebSocket signaling itself works');
    const tracks = await (await fetch(`${env.server.url}/api/tracks`)).json();
    await page.evaluate((id) => window.ztream.play(id), tracks[0].id);
    await waitUntil(page, () => window.ztream.stats().currentTime > 1, undefined, { timeout: 15000 });
    s = await page.evaluate(() => window.ztream.stats());
    assert.ok(s.http_bytes > 0, 'chunks came over HTTP');
    assert.equal(s.hub_bytes, 0);
    assert.equal(s.stalls, 0);
    assert.deepEqual(problems.filter((p) => !/WebSocket|ERR_/.test(p)), []);
  } finally {
    await context.close();
  }
});
