// Firefox has no 'audio/mpeg' Media Source: the client wraps chunks into fMP4
// (js/fmp4.js). These tests run Debian's firefox-esr (driven over WebDriver
// BiDi by puppeteer-core, no downloaded browser) against the real server:
//   1. the real client modules append the init segment and fragments of real
//      chunks, and Firefox's buffered ranges show exact chunk times and the
//      gapless trim;
//   2. the served client plays a track: play() resolves on 'playing' and the
//      playback position advances past 5 s at the speed of the wall clock,
//      with no media error, no stall and no page error.
// firefox.mjs launches it (with a PulseAudio null sink to play into) and
// says what is missing: the tests skip without it locally but FAIL in CI.
// Waiting is done with plain page.evaluate polls (harness waitUntil):
// puppeteer's waitForFunction compiles its poller in the page, which the
// client's CSP (script-src 'self') forbids in Firefox.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitUntil } from './harness.mjs';
import { firefoxMissing, inCI, launchFirefox, openFirefoxPage, why } from './firefox.mjs';

const { browser: missing, audio: missingAudio } = firefoxMissing();
const skipBuffer = missing.length > 0 && !inCI && why(missing);
const skipPlay = [...missing, ...missingAudio].length > 0 && !inCI && why([...missing, ...missingAudio]);

let server;
let firefox;

before(async () => {
  if (missing.length > 0) return;
  server = await startServer();
  firefox = await launchFirefox({ audio: missingAudio.length === 0 });
});

after(async () => {
  if (firefox) await firefox.close();
  if (server) await server.stop();
});

/** Opens url in a new Firefox page; page errors and console errors go to the returned list. */
const open = (url) => openFirefoxPage(firefox.browser, url);

test('fMP4-wrapped MP3 chunks buffer at exact, gapless times in Firefox', { skip: skipBuffer, timeout: 90000 }, async (t) => {
  assert.deepEqual(missing, [], `${why(missing)} (required in CI)`);
  const { page, problems } = await open(`${server.url}/?transport=http`);
  try {
    assert.equal(await page.evaluate(() => window.ztream.stats().mode), 'mp4', 'Firefox takes the fMP4 path');
    const tracks = await (await fetch(`${server.url}/api/tracks`)).json();
    const m = await (await fetch(`${server.url}/api/tracks/${tracks[0].id}`)).json();
    const result = await page.evaluate(async (m) => {
      const { initSegment, fragment, MP4_MIME } = await import('/js/fmp4.js');
      const ms = new MediaSource();
      const audio = document.createElement('audio');
      audio.src = URL.createObjectURL(ms);
      await new Promise((r) => ms.addEventListener('sourceopen', r, { once: true }));
      const sb = ms.addSourceBuffer(MP4_MIME);
      const append = (bytes) => new Promise((resolve, reject) => {
        sb.addEventListener('updateend', resolve, { once: true });
        sb.addEventListener('error', () => reject(new Error('append error')), { once: true });
        sb.appendBuffer(bytes);
      });
      sb.timestampOffset = -m.encoder_delay / m.sample_rate;
      sb.appendWindowStart = 0;
      sb.appendWindowEnd = m.total_samples / m.sample_rate;
      await append(initSegment({ sampleRate: m.sample_rate, channels: m.channels, bitrate: m.bitrate }));
      const last = m.chunks.length - 1;
      for (const seq of [0, 1, 2, 10, last - 1, last]) {
        const bytes = new Uint8Array(await (await fetch(`/api/tracks/${m.id}/chunks/${seq}`)).arrayBuffer());
        await append(fragment({ seq, bytes, framesPerChunk: m.frames_per_chunk, samplesPerFrame: m.samples_per_frame }));
      }
      const b = sb.buffered;
      return { ranges: Array.from({ length: b.length }, (_, i) => [b.start(i), b.end(i)]), error: audio.error && audio.error.message };
    }, m);
    t.diagnostic(`Firefox buffered ${JSON.stringify(result.ranges)}`);
    const d = (m.frames_per_chunk * m.samples_per_frame) / m.sample_rate;
    const delay = m.encoder_delay / m.sample_rate;
    const end = m.total_samples / m.sample_rate;
    const last = m.chunks.length - 1;
    const want = [[0, 3 * d - delay], [10 * d - delay, 11 * d - delay], [(last - 1) * d - delay, end]];
    assert.equal(result.error, null);
    assert.equal(result.ranges.length, 3, `ranges ${JSON.stringify(result.ranges)}`);
    // Firefox may trim only whole frames at the append window: allow one frame.
    const frame = m.samples_per_frame / m.sample_rate;
    result.ranges.forEach(([s, e], i) => {
      assert.ok(Math.abs(s - want[i][0]) <= frame + 1e-3, `range ${i} starts at ${s}, want ${want[i][0]}`);
      assert.ok(Math.abs(e - want[i][1]) <= frame + 1e-3, `range ${i} ends at ${e}, want ${want[i][1]}`);
    });
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('the client plays a track in Firefox: the position passes 5 s in real time', { skip: skipPlay, timeout: 90000 }, async (t) => {
  assert.deepEqual([...missing, ...missingAudio], [], `${why([...missing, ...missingAudio])} (required in CI)`);
  const { page, problems } = await open(`${server.url}/?transport=http&debug=1`);
  const log = () => page.evaluate(() => window.ztream.log.join('\n'));
  try {
    assert.equal(await page.evaluate(() => window.ztream.stats().mode), 'mp4', 'Firefox takes the fMP4 path');
    const tracks = await (await fetch(`${server.url}/api/tracks`)).json();
    const track = tracks.find((x) => x.duration_ms >= 20000) || tracks[0];
    assert.ok(track.duration_ms > 8000, `track ${track.id} lasts ${track.duration_ms} ms`);

    // play() resolves once the audio element fires 'playing'.
    await page.evaluate((id) => {
      window.ztream.autoAdvance = false;
      return window.ztream.play(id);
    }, track.id);
    let s = await page.evaluate(() => window.ztream.stats());
    assert.equal(s.playing, true, 'playing after play()');
    assert.equal(s.track, track.id);
    assert.ok(s.startup_ms > 0 && s.startup_ms < 30000, `start latency ${s.startup_ms}`);

    // The playback position advances past 5 s, at the speed of the wall clock
    // (an audio sink that consumes samples without a clock would run ahead),
    // measured from 1 s on, once the audio output has started.
    const position = (after) => waitUntil(page, (p) => {
      const st = window.ztream.stats();
      return st.currentTime > p && st;
    }, after, { timeout: 20000, what: `currentTime > ${after}` });
    const p0 = (await position(1)).currentTime;
    const t0 = Date.now();
    s = await position(5);
    const wall = (Date.now() - t0) / 1000;
    const rate = (s.currentTime - p0) / wall;
    t.diagnostic(`played ${p0.toFixed(2)} → ${s.currentTime.toFixed(2)} s in ${wall.toFixed(2)} s of wall time (rate ${rate.toFixed(2)})`);
    assert.ok(rate > 0.6 && rate < 1.4, `position advanced at ${rate.toFixed(2)}× the wall clock; log:\n${await log()}`);

    const media = await page.evaluate(() => {
      const a = document.querySelector('audio');
      return { paused: a.paused, ended: a.ended, error: a.error && `${a.error.code} ${a.error.message}`, readyState: a.readyState };
    });
    assert.equal(media.error, null, 'no media error');
    assert.equal(media.paused, false);
    assert.ok(media.readyState >= 3, `readyState ${media.readyState}`);
    assert.equal(s.playing, true);
    assert.equal(s.stalls, 0, `no stall; log:\n${await log()}`);
    assert.ok(s.http_bytes > 0, 'chunks came over HTTP');
    assert.equal(s.bad_chunks, 0);
    // A media error the client recovered from (e.g. OnMediaSinkAudioError) is in its log.
    assert.doesNotMatch(await log(), /media error|SourceBuffer error|append of chunk/, 'no media error, even recovered');
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});
