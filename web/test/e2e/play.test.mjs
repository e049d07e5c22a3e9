// Phase 1 end to end: the real server, the real page in Debian's Chromium,
// a demo track played over the network to its end. The page runs without
// P2P (?transport=http): as the peer algorithm says for that case
// (docs/PROTOCOL.md §8.3, rule 5), the hub — here its HTTP endpoint —
// streams 10 s ahead of the playhead, so seeks skip chunks that are never
// fetched, and every chunk fetched is fetched once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, artifactPath, useServerAndBrowser, waitUntil } from './harness.mjs';

const env = useServerAndBrowser();

test('a demo track plays, seeks and ends; every byte accounted, no stall', { timeout: 120000 }, async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const { page, problems } = await openPage(context, `${env.server.url}/?transport=http&debug=1`);
    const tracks = await (await fetch(`${env.server.url}/api/tracks`)).json();
    assert.ok(tracks.length > 0, 'demo tracks ingested');
    const rows = await page.locator('[data-track-id]').count();
    assert.equal(rows, tracks.length, 'one row per track');
    const shortest = tracks.reduce((a, b) => (a.duration_ms <= b.duration_ms ? a : b));
    const manifest = await (await fetch(`${env.server.url}/api/tracks/${shortest.id}`)).json();

    await page.evaluate(() => { window.ztream.autoAdvance = false; });
    await page.evaluate((id) => window.ztream.play(id), shortest.id);
    let s = await page.evaluate(() => window.ztream.stats());
    assert.equal(s.playing, true);
    assert.ok(s.startup_ms > 0 && s.startup_ms < 30000, `start latency ${s.startup_ms}`);

    // Let it play for a while: time must advance in real time.
    await waitUntil(page, () => window.ztream.stats().currentTime >= 3, undefined, { timeout: 15000 });
    s = await page.evaluate(() => window.ztream.stats());
    assert.ok(s.server_bytes > 0, 'bytes arrived');
    // Without P2P, about 10 s ahead of the playhead are fetched, not the whole track.
    const chunkSec = (manifest.frames_per_chunk * manifest.samples_per_frame) / manifest.sample_rate;
    const early = await page.locator('#chunkmap .c[data-source]').count();
    const ahead = Math.ceil((s.currentTime + 10) / chunkSec) + 2;
    assert.ok(early <= ahead, `${early} chunks held ${s.currentTime.toFixed(1)} s in: at most ${ahead} (10 s ahead)`);
    assert.ok(early < manifest.chunks.length);

    // Keyboard: space pauses, space resumes; ArrowRight seeks 10 s forward.
    await page.locator('body').focus();
    await page.keyboard.press('Space');
    await waitUntil(page, () => !window.ztream.stats().playing, undefined, { timeout: 5000 });
    await page.keyboard.press('Space');
    await waitUntil(page, () => window.ztream.stats().playing, undefined, { timeout: 5000 });
    // ArrowDown / ArrowUp change the volume by 0.1.
    const vol = () => page.evaluate(() => document.querySelector('audio').volume);
    const v0 = await vol();
    await page.keyboard.press('ArrowDown');
    assert.ok(Math.abs((await vol()) - (v0 - 0.1)) < 1e-9, 'ArrowDown lowers the volume');
    await page.keyboard.press('ArrowUp');
    assert.ok(Math.abs((await vol()) - v0) < 1e-9, 'ArrowUp raises it back');
    const beforeSeek = (await page.evaluate(() => window.ztream.stats())).currentTime;
    await page.keyboard.press('ArrowRight');
    await waitUntil(page, (t) => window.ztream.stats().currentTime >= t + 9, beforeSeek, { timeout: 5000 });

    // Seek 10 s before the end and play to the end.
    const duration = manifest.total_samples / manifest.sample_rate;
    await page.evaluate((t) => window.ztream.seek(t), duration - 10);
    await waitUntil(page, (d) => window.ztream.stats().currentTime >= d - 8, duration, { timeout: 10000 });
    await page.screenshot({ path: artifactPath('player.png') });
    await waitUntil(page, () => {
      const st = window.ztream.stats();
      return !st.playing && document.querySelector('audio').ended;
    }, undefined, { timeout: 30000 });

    s = await page.evaluate(() => window.ztream.stats());
    assert.ok(Math.abs(s.currentTime - duration) < 0.1, `ended at ${s.currentTime}, duration ${duration}`);
    assert.equal(s.stalls, 0, `no stall; log:\n${(await page.evaluate(() => window.ztream.log)).join('\n')}`);
    assert.equal(s.bad_chunks, 0);
    // The chunk map shows every chunk held with its source: all from the last seek on, each fetched once.
    const cells = await page.locator('#chunkmap .c').evaluateAll((els) => els.map((e) => e.dataset.source || null));
    assert.equal(cells.length, manifest.chunks.length);
    const lastSeek = Math.floor((duration - 10) / chunkSec);
    for (let seq = lastSeek; seq < cells.length; seq++) assert.equal(cells[seq], 'http', `chunk ${seq} from the last seek on`);
    const heldBytes = manifest.chunks.reduce((n, c) => n + (cells[c.seq] ? c.size : 0), 0);
    // Every byte accounted: each chunk held was fetched once; the only other bytes are the prefetch of
    // the next track's first 10 s (it starts 30 s before the end), at most 11 chunks of a 128 kbit/s track.
    const prefetch = s.server_bytes - heldBytes;
    const maxChunk = Math.max(...manifest.chunks.map((c) => c.size));
    assert.ok(prefetch >= 0 && prefetch <= 11 * maxChunk, `server bytes ${s.server_bytes}: ${heldBytes} for the chunks held + ${prefetch}`);
    assert.ok(cells.some((c) => c === null), 'the chunks skipped by the seeks were not fetched');
    await page.screenshot({ path: artifactPath('player-ended.png') });
    if (process.env.ZTREAM_E2E_VERBOSE) console.log((await page.evaluate(() => window.ztream.log)).join('\n'));
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('search filters the track list as you type', { timeout: 60000 }, async () => {
  const context = await env.browser.newContext({ viewport: { width: 420, height: 800 } });
  try {
    const { page, problems } = await openPage(context, `${env.server.url}/?transport=http`);
    const tracks = await (await fetch(`${env.server.url}/api/tracks`)).json();
    const target = tracks[tracks.length - 1];
    const word = target.title.split(/\s+/).sort((a, b) => b.length - a.length)[0];
    await page.locator('#search').fill(word.toUpperCase());
    const ids = await page.locator('[data-track-id]').evaluateAll((els) => els.map((e) => e.dataset.trackId));
    const expected = tracks.filter((t) => `${t.title} ${t.artist} ${t.album}`.toLowerCase().includes(word.toLowerCase())).map((t) => t.id);
    assert.deepEqual(ids, expected);
    assert.ok(ids.includes(target.id));
    await page.locator('#search').fill('no-such-track-zzz');
    assert.equal(await page.locator('[data-track-id]').count(), 0);
    assert.equal(await page.locator('#empty').isVisible(), true);
    // Every control is a button with an aria-label.
    const unlabeled = await page.locator('button:not([aria-label])').count();
    assert.equal(unlabeled, 0);
    await page.screenshot({ path: artifactPath('mobile-search.png') });
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
