// A player that cannot play must stop, say why, and spend no more bandwidth.
// Chromium gets chunks its Media Source cannot decode: the page is served
// (page.route) a manifest whose SHA-256 sums match chunks of zero bytes, and
// those chunks, so they pass verification and reach the SourceBuffer, which
// buffers nothing. (?transport=http keeps the hub DataChannel, whose real
// chunks would fail those sums, out of it.)
//   1. The real file is served as /stream: the page falls back to it (the last
//      resort, a plain <audio src>), plays, and says so in its notice line.
//   2. The file is broken too: the page gives up on the track, says so, does
//      not move on to the next track, and stops downloading.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { openPage, useServerAndBrowser, waitUntil, firstManifests } from './harness.mjs';

const env = useServerAndBrowser();

/**
 * Routes the manifest and chunks of m to undecodable chunks (zero bytes)
 * with matching sums, and /stream to the real file or to zero bytes.
 * Returns the list of request URLs of m's chunks, stream and other tracks'
 * manifests, as they happen.
 * @param {import('playwright-core').BrowserContext} context
 * @param {any} m
 * @param {{brokenStream: boolean}} opts
 */
async function breakTrack(context, m, { brokenStream }) {
  const zeros = m.chunks.map((c) => Buffer.alloc(c.size));
  const fake = { ...m, chunks: m.chunks.map((c, i) => ({ ...c, sha256: createHash('sha256').update(zeros[i]).digest('hex') })) };
  /** @type {{at: number, url: string}[]} */
  const requests = [];
  await context.route(`**/api/tracks/${m.id}`, (route) => route.fulfill({ json: fake }));
  await context.route(new RegExp(`/api/tracks/${m.id}/chunks/(\\d+)$`), (route) => {
    requests.push({ at: Date.now(), url: route.request().url() });
    const seq = Number(/\/chunks\/(\d+)$/.exec(route.request().url())[1]);
    return route.fulfill({ body: zeros[seq], contentType: 'audio/mpeg' });
  });
  await context.route(`**/api/tracks/${m.id}/stream`, (route) => {
    requests.push({ at: Date.now(), url: route.request().url() });
    if (brokenStream) return route.fulfill({ body: Buffer.alloc(m.size), contentType: 'audio/mpeg' });
    return route.continue();
  });
  // Other tracks' manifests: fetched only if the page moved on (or prefetched).
  await context.route(/\/api\/tracks\/[0-9a-f]{32}$/, (route) => {
    if (!route.request().url().endsWith(m.id)) requests.push({ at: Date.now(), url: route.request().url() });
    return route.fallback();
  });
  return requests;
}

/** The page's state the tests look at. */
function pageState(page) {
  return page.evaluate(() => ({
    ...window.ztream.stats(),
    notice: document.getElementById('notice').textContent,
    log: window.ztream.log.slice(-12),
  }));
}

test('chunks the Media Source cannot play: the page streams the file instead and says so', { timeout: 90000 }, async (t) => {
  const [m] = await firstManifests(env.server.url, 1);
  const context = await env.browser.newContext();
  try {
    await breakTrack(context, m, { brokenStream: false });
    const { page } = await openPage(context, `${env.server.url}/?transport=http`);
    page.evaluate((id) => window.ztream.play(id), m.id).catch(() => {});
    await waitUntil(page, () => window.ztream.stats().mode === 'stream' && window.ztream.stats().currentTime > 2, undefined,
      { timeout: 60000, what: 'the page to stream the file and play it' });
    const st = await pageState(page);
    t.diagnostic(`log: ${st.log.join(' | ')}`);
    assert.equal(st.track, m.id);
    assert.equal(st.failure, null);
    assert.match(st.notice, /streams whole from the server/);
    assert.match(st.log.join('\n'), /the Media Source cannot play these tracks/);
  } finally {
    await context.close();
  }
});

test('a track that cannot play at all: the page gives up, says why, stays on it and stops downloading', { timeout: 90000 }, async (t) => {
  const [m, other] = await firstManifests(env.server.url, 2);
  const context = await env.browser.newContext();
  try {
    const requests = await breakTrack(context, m, { brokenStream: true });
    const { page } = await openPage(context, `${env.server.url}/?transport=http`);
    page.evaluate((id) => window.ztream.play(id), m.id).catch(() => {});
    await waitUntil(page, () => window.ztream.stats().failure !== null, undefined, { timeout: 60000, what: 'the page to give up on the track' });
    const failedAt = Date.now();
    const st = await pageState(page);
    t.diagnostic(`failure: ${JSON.stringify(st.failure)}; ${requests.length} requests; log: ${st.log.join(' | ')}`);
    assert.equal(st.failure.track, m.id);
    assert.match(st.notice, new RegExp(`Could not play “${m.title}”`));
    assert.equal(st.playing, false);
    // Nothing more is fetched: no chunk, no stream, no other track.
    await new Promise((r) => setTimeout(r, 4000));
    const late = requests.filter((r) => r.at > failedAt);
    assert.deepEqual(late.map((r) => r.url), [], 'requests after giving up');
    assert.equal(requests.filter((r) => r.url.endsWith(other.id)).length, 0, 'the next track was not started');
    const chunkRequests = requests.filter((r) => /\/chunks\//.test(r.url)).length;
    assert.ok(chunkRequests <= 3 * 40, `${chunkRequests} chunk requests: bounded by a few attempts`);
    const after = await pageState(page);
    assert.equal(after.track, null, 'the player let the track go');
  } finally {
    await context.close();
  }
});
