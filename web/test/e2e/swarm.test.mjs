// The peer algorithm (docs/PROTOCOL.md §8) in real browsers: peers that
// start the same cold track together share it — the hub sends each chunk
// about once (first copies, §8.4) and the peers take the rest from each
// other over direct DataChannels — and browsers and Go reference peers
// (web/test/gopeer) run the same algorithm, so chunks flow both ways
// between them.
//
// The library holds two short tracks (45 s) cut from the bundled demo
// tracks (whole MPEG frames; the demo tracks have no bit reservoir, so any
// run of frames decodes), so that a whole track is shared within the test
// and the server's bytes can be compared with the track's size honestly.
//
// A: three Chromium pages start track 1 within a second; the hub must send
//    at most 1.5 copies of it (its own counter, delivered_bytes{server}),
//    and every page must play past 10 s with no stall.
// B: a Chromium page starts track 2, a Go peer starts it too half a second
//    later: each must get chunks from the other.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  REPO_DIR, buildBinary, buildGoPeer, startServer, launchBrowser, startGoPeer, openPage, pageStats, waitUntil,
  artifactPath, HOST_CANDIDATES, hubMetric,
} from './harness.mjs';

/** Seconds of audio of each short track. */
const SHORT_SEC = 45;
/** The most copies of a track the hub may send to three peers starting it together. */
const MAX_SERVER_COPIES = 1.5;

/**
 * The whole MPEG-1 Layer III frames of an MP3 file after its ID3v2 tag and
 * its LAME/Xing info frame.
 * @param {Buffer} file
 */
function mp3Frames(file) {
  let off = 0;
  if (file.subarray(0, 3).toString('latin1') === 'ID3') {
    off = 10 + ((file[6] << 21) | (file[7] << 14) | (file[8] << 7) | file[9]);
  }
  const bitrates = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
  const rates = [44100, 48000, 32000];
  const frames = [];
  while (off + 4 <= file.length && file[off] === 0xff && (file[off + 1] & 0xfe) === 0xfa) { // MPEG-1 Layer III
    const len = Math.floor((144 * bitrates[file[off + 2] >> 4] * 1000) / rates[(file[off + 2] >> 2) & 3]) + ((file[off + 2] >> 1) & 1);
    if (len <= 4) break;
    frames.push(file.subarray(off, off + len));
    off += len;
  }
  const first = frames[0] || Buffer.alloc(0);
  if (first.includes(Buffer.from('Info')) || first.includes(Buffer.from('Xing'))) frames.shift();
  return frames;
}

/**
 * Writes SHORT_SEC seconds of the demo track file, from frame skip on, into dir/name.mp3.
 * @param {string} dir
 * @param {string} demo file name in demo/tracks
 * @param {string} name
 * @param {number} skip
 */
function cutDemo(dir, demo, name, skip) {
  const frames = mp3Frames(readFileSync(join(REPO_DIR, 'demo', 'tracks', demo)));
  const n = Math.round((SHORT_SEC * 44100) / 1152);
  if (frames.length < skip + n) throw new Error(`${demo}: ${frames.length} frames, want ${skip + n}`);
  const out = join(dir, `${name}.mp3`);
  writeFileSync(out, Buffer.concat(frames.slice(skip, skip + n)));
  return out;
}

let server = null;
let browser = null;
let workDir = null;
/** @type {ReturnType<typeof startGoPeer>[]} */
const goPeers = [];

before(async () => {
  buildGoPeer();
  workDir = mkdtempSync(join(tmpdir(), 'ztream-e2e-swarm-'));
  const data = join(workDir, 'data');
  const files = [cutDemo(workDir, '02-lanterns-on-the-mesh.mp3', 'swarm-a', 400), cutDemo(workDir, '03-chunk-runner.mp3', 'swarm-b', 900)];
  execFileSync(buildBinary(), ['ingest', '--data', data, ...files], { stdio: ['ignore', 'ignore', 'inherit'] });
  server = await startServer(['--no-demo', '--max-peers-per-ip', '-1'], { data });
  browser = await launchBrowser(HOST_CANDIDATES);
});

after(async () => {
  for (const g of goPeers) await g.stop();
  if (browser) await browser.close();
  if (server) await server.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** The manifests of the library (the two short tracks), by title. */
async function manifests() {
  const list = await (await fetch(`${server.url}/api/tracks`)).json();
  const out = {};
  for (const t of list) out[t.title] = await (await fetch(`${server.url}/api/tracks/${t.id}`)).json();
  assert.ok(out['swarm-a'] && out['swarm-b'], `library: ${list.map((t) => t.title)}`);
  return out;
}

/** The hub's Prometheus sample name{labels} (0 when absent). */
const metric = (name, labels) => hubMetric(server.url, name, labels);

/** Bytes of audio the hub sent (DataChannel and HTTP), by its own count. */
const serverBytes = () => metric('ztream_delivered_bytes_total', { source: 'server' });

/** A page's stats without the bulky fields. */
const brief = (s) => ({
  server: s.server_bytes, p2p: s.p2p_bytes, uploaded: s.uploaded_bytes, sources: s.sources, start_from_peer: s.start_from_peer,
  startup_ms: s.startup_ms && Math.round(s.startup_ms), stalls: s.stalls, bad: s.bad_chunks, emergency: s.emergency_fetches, t: s.currentTime.toFixed(1),
});

test('A: three pages start a cold track together: the hub sends at most 1.5 copies, the peers share the rest, nobody stalls', { timeout: 150000 }, async () => {
  const { 'swarm-a': m } = await manifests();
  const contexts = await Promise.all([0, 1, 2].map(() => browser.newContext({ viewport: { width: 1280, height: 800 } })));
  try {
    const pages = [];
    for (const ctx of contexts) pages.push(await openPage(ctx, `${server.url}/?cache=0`));
    for (const p of pages) assert.equal((await pageStats(p.page)).transport, 'hub');
    const before = await serverBytes();
    // Together: 0, 0.4 and 0.8 s apart.
    await Promise.all(pages.map(({ page }, i) => new Promise((r) => setTimeout(r, 400 * i)).then(() => page.evaluate((id) => {
      window.ztream.autoAdvance = false;
      return window.ztream.play(id);
    }, m.id))));
    for (const { page } of pages) {
      await waitUntil(page, (id) => window.ztream.stats().complete.includes(id), m.id, { timeout: 60000, what: 'the whole track held' });
    }
    for (const { page } of pages) await waitUntil(page, () => window.ztream.stats().currentTime > 10, undefined, { timeout: 30000, what: 'played past 10 s' });
    const sent = (await serverBytes()) - before;
    const stats = [];
    for (const { page } of pages) stats.push(await pageStats(page));
    const copies = sent / m.size;
    const pageServer = stats.reduce((n, s) => n + s.server_bytes, 0);
    console.log(`swarm A: ${m.chunks.length} chunks, ${m.size} bytes; the hub sent ${sent} bytes = ${copies.toFixed(2)} copies ` +
      `(the pages count ${(pageServer / m.size).toFixed(2)}); pages: ${stats.map((s) => JSON.stringify(brief(s))).join(' ')}`);
    if (copies > MAX_SERVER_COPIES || stats.some((s) => s.stalls > 0)) {
      for (const { page } of pages) console.log((await page.evaluate(() => window.ztream.log.join('\n'))));
    }
    assert.ok(copies <= MAX_SERVER_COPIES, `the hub sent ${copies.toFixed(2)} copies of the track to three peers`);
    // The hub counts what it sent; a page drops chunks still in flight when it replaced or cancelled a
    // range, and a chunk the hub rescued that a slow peer delivered first: up to ~3 chunks of 46.
    assert.ok(Math.abs(pageServer - sent) <= m.size * 0.07, `the pages count ${pageServer} server bytes, the hub ${sent}`);
    stats.forEach((s, i) => {
      assert.equal(s.stalls, 0, `page ${i} stalled`);
      assert.equal(s.bad_chunks, 0);
      assert.ok(s.playing, `page ${i} plays`);
      assert.equal(s.server_bytes + s.p2p_bytes, m.size, `page ${i}: every chunk once`);
    });
    const p2p = stats.reduce((n, s) => n + s.p2p_bytes, 0);
    const uploaded = stats.reduce((n, s) => n + s.uploaded_bytes, 0);
    assert.ok(p2p >= m.size * (3 - MAX_SERVER_COPIES), `the peers got ${p2p} bytes from each other`);
    assert.ok(uploaded >= p2p, `they uploaded ${uploaded} ≥ ${p2p}`);
    assert.ok(stats.filter((s) => s.sources >= 1).length >= 2, 'at least two pages took chunks from peers');
    await pages[2].page.screenshot({ path: artifactPath('swarm.png') });
    for (const { problems } of pages) assert.deepEqual(problems, []);
  } finally {
    for (const ctx of contexts) await ctx.close();
  }
});

test('B: a browser and a Go peer swarm both ways: the browser takes a track from the Go peer, the Go peer another from the browser', { timeout: 200000 }, async () => {
  const { 'swarm-a': x, 'swarm-b': y } = await manifests();
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const { page, problems } = await openPage(ctx, `${server.url}/?cache=0`);
    assert.equal((await pageStats(page)).transport, 'hub');
    // Go → browser: the Go peer plays x first (cold: from the hub), then the browser plays it.
    const g1 = startGoPeer(server.url, x.id, { hold: '120s', speed: 8 });
    goPeers.push(g1);
    const first = await g1.played(90000);
    assert.ok(first.complete, 'the Go peer played x');
    await page.evaluate((id) => {
      window.ztream.autoAdvance = false;
      return window.ztream.play(id);
    }, x.id);
    await waitUntil(page, (id) => window.ztream.stats().complete.includes(id), x.id, { timeout: 90000, what: 'x held by the browser' });
    const cells = await page.locator('#chunkmap .c[data-source]').evaluateAll((els) => els.map((e) => e.dataset.source));
    const fromPeer = cells.filter((c) => c === 'peer').length;
    const s1 = await pageStats(page);
    console.log(`swarm B (Go → browser): ${fromPeer} of ${cells.length} chunks of x from the Go peer; browser ${JSON.stringify(brief(s1))}`);
    assert.ok(fromPeer > 0 && cells.every((c) => c === 'peer' || c === 'hub'), `chunk sources of x: ${cells.join(' ')}`);
    assert.ok(s1.sources >= 1, 'the browser counts the Go peer as a source');
    assert.equal(s1.bad_chunks, 0);
    assert.equal(s1.stalls, 0);
    // browser → Go: the browser plays y first (cold: from the hub), then a second Go peer plays it.
    await page.evaluate((id) => window.ztream.play(id), y.id);
    await waitUntil(page, (id) => window.ztream.stats().complete.includes(id), y.id, { timeout: 90000, what: 'y held by the browser' });
    const upBefore = (await pageStats(page)).uploaded_bytes;
    const g2 = startGoPeer(server.url, y.id, { hold: '60s', speed: 2 });
    goPeers.push(g2);
    const played = await g2.played(90000);
    const s2 = await pageStats(page);
    console.log(`swarm B (browser → Go): Go peer ${JSON.stringify(played)}; the browser uploaded ${s2.uploaded_bytes - upBefore} bytes`);
    assert.ok(played.complete, 'the Go peer played y');
    assert.equal(played.hash_failures, 0, 'every chunk from the browser verified');
    assert.equal(played.stalls, 0, 'the Go peer did not stall');
    assert.ok(played.p2p_bytes > 0, `the Go peer got ${played.p2p_bytes} bytes of y from the browser`);
    assert.ok(played.sources >= 1, 'the Go peer counts the browser as a source');
    assert.ok(s2.uploaded_bytes > upBefore, 'the browser uploaded y');
    assert.equal(played.server_bytes + played.p2p_bytes, y.size, 'the Go peer got every chunk once');
    await page.screenshot({ path: artifactPath('swarm-mixed.png') });
    assert.deepEqual(problems, []);
  } finally {
    await ctx.close();
  }
});
