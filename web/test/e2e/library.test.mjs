// The listener's library view in Chromium: the demo album's cover art (an
// APIC picture in the MP3s, kept by ingest) is served by the API and shown
// in the track rows and the now-playing panel, and the Media Session (lock
// screen, media keys) gets the title, artist, album, artwork and playback
// state. (Its action handlers are unit-tested: a page cannot fire them.)
// The album view lists the album's tracks in disc and track order and
// survives a reload (deep link), as does ?t=<track>. A file dropped into
// the music folder of `serve --music` shows up in an open page (the hub's
// catalog message).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPage, useServerAndBrowser, waitUntil, artifactPath, startServer, WEB_DIR } from './harness.mjs';

const env = useServerAndBrowser();

test('cover art and Media Session', { timeout: 90000 }, async () => {
  const tracks = await (await fetch(`${env.server.url}/api/tracks`)).json();
  assert.ok(tracks.length >= 2);
  for (const t of tracks) assert.match(t.cover || '', /^[0-9a-f]{64}$/, `track ${t.title} lists its cover`);
  const first = tracks[0];
  const res = await fetch(`${env.server.url}/api/tracks/${first.id}/cover?v=${first.cover}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'image/jpeg');
  assert.match(res.headers.get('cache-control') || '', /immutable/);
  const again = await fetch(`${env.server.url}/api/tracks/${first.id}/cover`, { headers: { 'If-None-Match': res.headers.get('etag') || '' } });
  assert.equal(again.status, 304);

  for (const viewport of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    const context = await env.browser.newContext({ viewport });
    try {
      const { page, problems } = await openPage(context, env.server.url);
      // Every row's thumbnail is a decoded picture.
      await waitUntil(page, (n) => {
        const imgs = [...document.querySelectorAll('#tracklist .thumb img')];
        return imgs.length === n && imgs.every((i) => /** @type {HTMLImageElement} */ (i).complete && i.naturalWidth > 0);
      }, tracks.length, { timeout: 15000 });

      await page.evaluate((id) => { window.ztream.autoAdvance = false; return window.ztream.play(id); }, first.id);
      await waitUntil(page, () => window.ztream.stats().currentTime > 1, undefined, { timeout: 30000 });
      const now = await page.evaluate(() => {
        const img = /** @type {HTMLImageElement|null} */ (document.querySelector('#cover img'));
        const md = navigator.mediaSession.metadata;
        return {
          cover: img ? { w: img.naturalWidth, src: img.src } : null,
          title: md && md.title, artist: md && md.artist, album: md && md.album,
          artwork: md ? [...md.artwork].map((a) => a.src) : [],
          state: navigator.mediaSession.playbackState,
        };
      });
      assert.ok(now.cover && now.cover.w > 0, `now-playing cover ${JSON.stringify(now.cover)}`);
      assert.equal(now.title, first.title);
      assert.equal(now.artist, first.artist);
      assert.equal(now.album, first.album);
      assert.equal(now.artwork.length, 1);
      assert.ok(now.artwork[0].includes(`/api/tracks/${first.id}/cover`), now.artwork[0]);
      assert.equal(now.state, 'playing');
      await page.screenshot({ path: artifactPath(`library-${viewport.width}.png`) });

      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  }
});

test('a file dropped into the music folder shows up in the open page', { timeout: 90000 }, async () => {
  const music = mkdtempSync(join(tmpdir(), 'ztream-e2e-music-'));
  const demo = join(WEB_DIR, '..', 'demo', 'tracks');
  copyFileSync(join(demo, '01-handshake-at-dawn.mp3'), join(music, '01.mp3'));
  const server = await startServer(['--music', music]);
  const context = await env.browser.newContext();
  try {
    const { page, problems } = await openPage(context, server.url);
    const rows = () => page.evaluate(() => [...document.querySelectorAll('#tracklist .track b')].map((b) => b.firstChild?.textContent));
    assert.deepEqual(await rows(), ['Handshake at Dawn']);
    const t0 = Date.now();
    copyFileSync(join(demo, '03-chunk-runner.mp3'), join(music, 'new.mp3'));
    await waitUntil(page, () => document.querySelectorAll('#tracklist .track').length === 2, undefined, { timeout: 20000 });
    console.log(`music folder: a dropped file was listed in the open page ${Date.now() - t0} ms later`);
    assert.deepEqual((await rows()).sort(), ['Chunk Runner', 'Handshake at Dawn']);
    rmSync(join(music, '01.mp3'));
    await waitUntil(page, () => document.querySelectorAll('#tracklist .track').length === 1, undefined, { timeout: 20000 });
    assert.deepEqual(await rows(), ['Chunk Runner']);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
    await server.stop();
    rmSync(music, { recursive: true, force: true });
  }
});

test('albums, artists and deep links', { timeout: 90000 }, async () => {
  const tracks = await (await fetch(`${env.server.url}/api/tracks`)).json();
  const byNumber = [...tracks].sort((a, b) => a.track_no - b.track_no).map((t) => t.title);
  assert.deepEqual(byNumber, ['Handshake at Dawn', 'Lanterns on the Mesh', 'Chunk Runner'], 'the demo album numbers its tracks');
  for (const viewport of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    const context = await env.browser.newContext({ viewport });
    try {
      const { page, problems } = await openPage(context, env.server.url);
      const rowTitles = () => page.evaluate(() => [...document.querySelectorAll('#tracklist .track b')].map((b) => b.firstChild?.textContent));
      await page.click('#nav-albums');
      await waitUntil(page, () => document.querySelectorAll('#grid a').length === 1, undefined, { timeout: 5000 });
      assert.equal(await page.textContent('#grid a b'), 'Ztream Demo');
      await waitUntil(page, () => {
        const img = /** @type {HTMLImageElement|null} */ (document.querySelector('#grid a img'));
        return !!img && img.complete && img.naturalWidth > 0;
      }, undefined, { timeout: 10000 });
      await page.screenshot({ path: artifactPath(`albums-${viewport.width}.png`) });
      await page.click('#grid a');
      await waitUntil(page, () => !document.getElementById('group-head').hidden, undefined, { timeout: 5000 });
      assert.deepEqual(await rowTitles(), byNumber, 'the album view lists disc/track order');
      assert.match(await page.textContent('#group-sub'), /Ztream Demo Band · 2026 · 3 tracks/);
      await page.screenshot({ path: artifactPath(`album-${viewport.width}.png`) });
      // The album's URL survives a reload.
      const url = page.url();
      assert.match(url, /#\/album\/Ztream%20Demo%20Band\/Ztream%20Demo$/);
      await page.reload();
      await page.waitForFunction(() => window.ztream && window.ztream.ready, undefined, { timeout: 30000 }).catch(() => {});
      await waitUntil(page, () => document.querySelectorAll('#tracklist .track').length === 3, undefined, { timeout: 15000 });
      assert.deepEqual(await rowTitles(), byNumber);
      // "Play" plays the album in order: next goes to its second track.
      await page.click('#group-play');
      await waitUntil(page, (id) => window.ztream.stats().track === id, tracks.find((t) => t.track_no === 1).id, { timeout: 15000 });
      await page.click('#btn-next');
      await waitUntil(page, (id) => window.ztream.stats().track === id, tracks.find((t) => t.track_no === 2).id, { timeout: 15000 });
      // The artists view.
      await page.click('#nav-artists');
      await waitUntil(page, () => document.querySelectorAll('#grid a').length === 1, undefined, { timeout: 5000 });
      assert.match(await page.textContent('#grid a'), /Ztream Demo Band.*1 album · 3 tracks/);
      // ?t=<track> opens on that track's row.
      const third = tracks.find((t) => t.track_no === 3);
      await page.goto(`${env.server.url}/?t=${third.id}`);
      await waitUntil(page, (id) => document.activeElement?.getAttribute('data-track-id') === id, third.id, { timeout: 15000 });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  }
});

test('the queue: play a list, add, reorder, next, shuffle and repeat, and it survives a reload', { timeout: 90000 }, async () => {
  const tracks = await (await fetch(`${env.server.url}/api/tracks`)).json();
  const [a, b, c] = [...tracks].sort((x, y) => x.track_no - y.track_no).map((t) => t.id);
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const { page, problems } = await openPage(context, env.server.url);
    const queue = () => page.evaluate(() => window.ztream.stats().queue);
    await page.evaluate((ids) => window.ztream.playQueue(ids), [c, a]);
    await waitUntil(page, (id) => window.ztream.stats().track === id, c, { timeout: 15000 });
    assert.deepEqual(await queue(), { ids: [c, a], index: 0, shuffle: false, repeat: 'all' });
    // + on a row adds it at the end; Up next lists a then b; ↑ on b puts it first.
    await page.click(`[data-enqueue="${b}"]`);
    assert.deepEqual((await queue()).ids, [c, a, b]);
    assert.equal(await page.locator('#queue li').count(), 2);
    await page.click('#queue li:nth-child(2) button[data-op="up"]');
    assert.deepEqual((await queue()).ids, [c, b, a]);
    await page.screenshot({ path: artifactPath('queue-1280.png') });
    await page.click('#btn-next');
    await waitUntil(page, (id) => window.ztream.stats().track === id, b, { timeout: 15000 });
    await page.click('#queue li:first-child button[data-op="remove"]');
    assert.deepEqual((await queue()).ids, [c, b]);
    await page.click('#btn-repeat'); // all → one
    await page.click('#btn-shuffle');
    const q = await queue();
    assert.equal(q.repeat, 'one');
    assert.equal(q.shuffle, true);
    assert.equal(q.ids[q.index], b, 'shuffling keeps the track playing');
    assert.equal(await page.getAttribute('#btn-shuffle', 'aria-pressed'), 'true');
    await page.reload();
    await waitUntil(page, () => window.ztream && window.ztream.ready, undefined, { timeout: 30000 });
    const after = await queue();
    assert.deepEqual({ ...after, ids: [...after.ids].sort() }, { ...q, ids: [...q.ids].sort() });
    assert.equal(after.ids[after.index], b, 'the queue survives a reload');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
