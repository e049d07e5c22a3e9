// Origin mode in Chromium: `ztream serve --origin URL` in front of a
// loopback HTTP origin of this test (a node server with Range and ETag
// support) whose M3U8 playlist names a FLAC (made by ffmpeg from a tone)
// and two demo MP3s. The page lists them from their tags, plays the FLAC
// (fetched and transcoded on this first play), and when a file is gone from
// the origin the page says why instead of doing nothing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_DIR, startServer, launchBrowser, openPage, waitUntil } from './harness.mjs';

let dir;
let origin;
let originURL;
let server;
let browser;
/** Whole-file GETs by path. */
const fetches = new Map();

/**
 * A static file server for dir: ETag from size and mtime, single Range
 * requests answered 206, counts of whole-file GETs.
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 */
function serveFile(req, res) {
  const name = decodeURIComponent(new URL(req.url || '/', 'http://x').pathname).slice(1);
  let st;
  try {
    if (name.includes('/') || name.startsWith('.')) throw new Error('outside');
    st = statSync(join(dir, name));
  } catch {
    res.writeHead(404).end('not found');
    return;
  }
  const data = readFileSync(join(dir, name));
  const type = name.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : name.endsWith('.flac') ? 'audio/flac' : 'audio/mpeg';
  const headers = { 'Content-Type': type, ETag: `"${st.size}-${Math.floor(st.mtimeMs)}"`, 'Accept-Ranges': 'bytes' };
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range || '');
  if (m) {
    const from = Number(m[1]);
    const to = Math.min(m[2] ? Number(m[2]) : data.length - 1, data.length - 1);
    res.writeHead(206, { ...headers, 'Content-Range': `bytes ${from}-${to}/${data.length}`, 'Content-Length': to - from + 1 });
    res.end(data.subarray(from, to + 1));
    return;
  }
  if (name !== 'list.m3u8') fetches.set(name, (fetches.get(name) || 0) + 1);
  res.writeHead(200, { ...headers, 'Content-Length': data.length });
  res.end(data);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ztream-e2e-origin-'));
  execFileSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=330:sample_rate=44100:duration=20',
    '-ac', '2', '-metadata', 'title=Origin Tone', '-metadata', 'artist=Origin Test', '-metadata', 'album=Far Away', '-c:a', 'flac', join(dir, 'tone.flac')]);
  copyFileSync(join(REPO_DIR, 'demo', 'tracks', '01-handshake-at-dawn.mp3'), join(dir, 'dawn.mp3'));
  copyFileSync(join(REPO_DIR, 'demo', 'tracks', '02-lanterns-on-the-mesh.mp3'), join(dir, 'lanterns.mp3'));
  writeFileSync(join(dir, 'list.m3u8'), '#EXTM3U\ntone.flac\ndawn.mp3\nlanterns.mp3\n');
  origin = createServer(serveFile);
  await new Promise((r) => origin.listen(0, '127.0.0.1', r));
  originURL = `http://127.0.0.1:${/** @type {any} */ (origin.address()).port}`;
  server = await startServer(['--origin', `${originURL}/list.m3u8`]);
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  if (origin) await new Promise((r) => origin.close(r));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('Chromium plays a FLAC from an HTTP origin and says why a gone file cannot play', { timeout: 120000 }, async (t) => {
  /** @type {any[]} */
  let tracks = [];
  for (const deadline = Date.now() + 30000; tracks.length < 3 && Date.now() < deadline;) {
    tracks = await (await fetch(`${server.url}/api/tracks`)).json();
    if (tracks.length < 3) await new Promise((r) => setTimeout(r, 100));
  }
  const tone = tracks.find((x) => x.title === 'Origin Tone');
  assert.ok(tone && tracks.length === 3, `the three tracks catalogued: ${JSON.stringify(tracks)}`);
  assert.equal(tone.duration_ms, 20000, 'the FLAC\'s duration comes from its STREAMINFO before any play');
  assert.deepEqual([...fetches], [], 'cataloguing fetched no whole file (Range requests only)');
  // An MP3 leaves the origin after it was catalogued (before the page
  // opens: the page fetches the tracks after the one playing ahead).
  unlinkSync(join(dir, 'lanterns.mp3'));
  const { page, problems } = await openPage(await browser.newContext(), server.url);
  await waitUntil(page, () => document.body.innerText.includes('Origin Tone') && document.body.innerText.includes('Lanterns on the Mesh'),
    undefined, { timeout: 30000, what: 'the origin tracks listed' });

  const t0 = Date.now();
  await page.evaluate((id) => window.ztream.play(id), tone.id);
  await waitUntil(page, () => {
    const s = window.ztream.stats();
    return s.playing && s.currentTime > 1;
  }, undefined, { timeout: 30000, what: 'the FLAC plays' });
  t.diagnostic(`the FLAC played 1 s after ${Date.now() - t0} ms (fetch and transcode included)`);
  const s = await page.evaluate(() => window.ztream.stats());
  assert.equal(s.track, tone.id);
  assert.equal(s.failure, null);
  assert.equal(fetches.get('tone.flac'), 1, 'the origin saw one fetch of the FLAC');

  // The gone MP3: a click says why it cannot play.
  await page.locator('#tracklist').getByText('Lanterns on the Mesh').click();
  const notice = await waitUntil(page, () => {
    const n = document.getElementById('notice');
    return n && !n.hidden && n.textContent;
  }, undefined, { timeout: 15000, what: 'a notice' }).catch(async (err) => {
    const st = await page.evaluate(() => ({ stats: window.ztream.stats(), log: window.ztream.log.slice(-10) }));
    throw new Error(`${err.message}: origin fetches ${JSON.stringify([...fetches])}, page ${JSON.stringify(st)}`);
  });
  assert.match(notice, /Could not play “Lanterns on the Mesh”: origin: lanterns\.mp3: not at the origin \(404/);
  assert.ok(!notice.includes('127.0.0.1'), `the notice does not tell where the origin is: ${notice}`);
  assert.deepEqual(problems.filter((p) => !/404/.test(p)), []);
});
