// WebKitGTK (MiniBrowser 2.50 through WebKitWebDriver under xvfb: the engine
// closest to Safari that runs here) plays the served client:
//   1. a click on a track plays it through WebKit's Media Source over HTTP
//      (WebKitGTK has no RTCPeerConnection): the page says so in its notice
//      line, the position advances at the speed of the wall clock without a
//      stall or a media error, and a track played to its end moves on to the
//      next one. WebKitGTK drops MP3 appended at a negative timestampOffset
//      (the gapless trim of the start) and buffers nothing; the client sees
//      that and appends from offset 0 instead.
//   2. ?mse=managed plays through WebKit's ManagedMediaSource (the only Media
//      Source of Safari on iOS), with its streaming hints honoured.
//   3. ?player=stream plays the track's whole file from GET
//      /api/tracks/{id}/stream in a plain <audio src> (the last resort of a
//      browser whose Media Source cannot take our chunks), counted by the hub
//      as server bytes.
// Screenshots at desktop and phone sizes go to web/test/artifacts/.
// `make deps` installs webkit2gtk-driver, xvfb and GStreamer's good and libav
// plugins; without them the tests are skipped locally but FAIL in CI.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { startServer, hubMetric, artifactPath } from './harness.mjs';
import { startWebKit, webkitMissing } from './webkit.mjs';

const inCI = ['true', '1'].includes((process.env.CI || '').toLowerCase());
const missing = webkitMissing();
const skip = missing.length > 0 && !inCI && `${missing.join(', ')} not installed: run make deps`;

let server;
let webkit;
/** The server's library (the demo tracks). @type {{id: string, title: string}[]} */
let tracks;

before(async () => {
  if (skip) return;
  server = await startServer();
  webkit = await startWebKit();
  tracks = await (await fetch(`${server.url}/api/tracks`)).json();
});

after(async () => {
  if (webkit) await webkit.stop();
  if (server) await server.stop();
});

/**
 * Polls fn in the page until it returns a truthy value; returns it.
 * @param {import('./webkit.mjs').WebDriverSession} s
 * @param {Function} fn
 * @param {string} what
 * @param {number} [timeout]
 * @param {unknown[]} [args] passed to fn
 */
async function waitIn(s, fn, what, timeout = 20000, args = []) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await s.exec(fn, ...args);
      if (last) return last;
    } catch (err) {
      last = err.message; // the page is loading
    }
    if (Date.now() > deadline) {
      let state = '';
      try {
        state = JSON.stringify(await s.exec(pageState));
      } catch (err) {
        state = err.message;
      }
      throw new Error(`${what}: not within ${timeout} ms (last: ${JSON.stringify(last)}); page: ${state}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The page's state the tests look at. */
function pageState() {
  const a = /** @type {HTMLAudioElement} */ (document.getElementById('audio'));
  const z = /** @type {any} */ (window).ztream;
  return {
    ...z.stats(),
    error: a.error ? `${a.error.code} ${a.error.message}` : null,
    buffered: Array.from({ length: a.buffered.length }, (_, i) => [a.buffered.start(i), a.buffered.end(i)]),
    notice: /** @type {HTMLElement} */ (document.getElementById('notice')).textContent,
    log: z.log.slice(-20),
  };
}

/**
 * Clicks track id's row, as a listener does; resolves once the position passed sec.
 * @param {import('./webkit.mjs').WebDriverSession} s
 * @param {string} id
 * @param {number} sec
 */
async function clickToPlay(s, id, sec) {
  await s.click(`button.track[data-track-id="${id}"]`);
  await waitIn(s, (past) => /** @type {any} */ (window).ztream.stats().currentTime > past, `the position to pass ${sec} s`, 20000, [sec]);
}

/**
 * Opens the client at path in a new MiniBrowser window; waits until it is ready.
 * @param {string} path
 */
async function openClient(path) {
  const s = await webkit.session();
  await s.setWindowRect({ width: 1280, height: 800 });
  await s.goto(server.url + path);
  await waitIn(s, () => !!(/** @type {any} */ (window).ztream && /** @type {any} */ (window).ztream.ready), 'the page to be ready');
  return s;
}

test('WebKitGTK plays a track through its Media Source over HTTP, and moves on after its end', { skip, timeout: 120000 }, async (t) => {
  const s = await openClient('/');
  try {
    const [first, second] = tracks;
    const t0 = Date.now();
    await clickToPlay(s, first.id, 1);
    const startedAt = Date.now();
    const at1 = (await s.exec(pageState)).currentTime;
    await waitIn(s, () => /** @type {any} */ (window).ztream.stats().currentTime > 5, 'the position to pass 5 s');
    const st = await s.exec(pageState);
    t.diagnostic(`WebKitGTK: position past 1 s ${startedAt - t0} ms after the click, startup ${st.startup_ms} ms, mode ${st.mode}; log: ${st.log.join(' | ')}`);
    assert.equal(st.mode, 'mpeg', 'raw MP3 appends to the Media Source');
    assert.equal(st.transport, 'http');
    assert.equal(st.error, null);
    assert.equal(st.stalls, 0);
    assert.equal(st.failure, null);
    assert.ok(st.http_bytes > 0, 'chunks came over HTTP');
    assert.ok(st.startup_ms !== null && st.startup_ms > 0, 'the start latency is counted');
    assert.match(st.notice, /no WebRTC/, 'the page says why everything comes from the server');
    // Real time: the position advanced about as much as the wall clock.
    const media = st.currentTime - at1;
    const wall = (Date.now() - startedAt) / 1000;
    assert.ok(media > 0.6 * wall && media < 1.4 * wall + 0.5, `media advanced ${media.toFixed(2)} s in ${wall.toFixed(2)} s`);

    writeFileSync(artifactPath('webkit-desktop.png'), await s.screenshot());
    await s.setWindowRect({ width: 390, height: 844 });
    writeFileSync(artifactPath('webkit-phone.png'), await s.screenshot());
    await s.setWindowRect({ width: 1280, height: 800 });

    // Played to its end, the track moves on to the next one.
    await s.exec(() => /** @type {any} */ (window).ztream.seek(/** @type {any} */ (window).ztream.stats().duration - 2));
    await waitIn(s, (id) => {
      const z = /** @type {any} */ (window).ztream.stats();
      return z.track === id && z.currentTime > 0.5;
    }, 'the track to end and the next one to play', 30000, [second.id]);
    const after = await s.exec(pageState);
    assert.equal(after.track, second.id, 'the next track of the list plays');
    assert.equal(after.stalls, 0);
  } finally {
    await s.close();
  }
});

test('?mse=managed: WebKitGTK plays through ManagedMediaSource, the Media Source of Safari on iOS', { skip, timeout: 90000 }, async (t) => {
  const s = await openClient('/?mse=managed');
  try {
    await clickToPlay(s, tracks[2].id, 3);
    const st = await s.exec(pageState);
    t.diagnostic(`ManagedMediaSource: startup ${st.startup_ms} ms, ${st.streaming_hints} streaming hints; log: ${st.log.join(' | ')}`);
    assert.equal(st.managed, true, 'the track plays through a ManagedMediaSource');
    assert.equal(st.mode, 'mpeg');
    assert.equal(st.error, null);
    assert.equal(st.stalls, 0);
    assert.equal(st.failure, null);
  } finally {
    await s.close();
  }
});

test('?player=stream: WebKitGTK plays the whole file from /api/tracks/{id}/stream in a plain <audio src>', { skip, timeout: 90000 }, async (t) => {
  const before = await hubMetric(server.url, 'ztream_delivered_bytes_total', { source: 'server' });
  const s = await openClient('/?player=stream');
  try {
    await clickToPlay(s, tracks[1].id, 3);
    const st = await s.exec(pageState);
    t.diagnostic(`stream mode: startup ${st.startup_ms} ms; log: ${st.log.join(' | ')}`);
    assert.equal(st.mode, 'stream');
    assert.equal(st.track, tracks[1].id);
    assert.equal(st.error, null);
    assert.equal(st.failure, null);
    assert.equal(st.http_bytes, 0, 'no chunk was fetched');
    const after = await hubMetric(server.url, 'ztream_delivered_bytes_total', { source: 'server' });
    assert.ok(after - before > 50000, `the hub counted ${after - before} server bytes for the stream`);
  } finally {
    await s.close();
  }
});
