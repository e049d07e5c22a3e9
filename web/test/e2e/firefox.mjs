// Firefox for the e2e tests: Debian's firefox-esr driven over WebDriver BiDi
// by puppeteer-core (no downloaded browser). Firefox decodes MP3 with the
// system FFmpeg (libavcodec59 on bookworm) and fails playback
// (OnMediaSinkAudioError) where there is no audio output, so a browser that
// plays is pointed at a PulseAudio null sink of its own (harness
// startNullAudio). scripts/install-deps.sh (`make deps`) installs
// firefox-esr, libavcodec59 and pulseaudio; tests skip without them
// locally but FAIL in CI (CI=true).

import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { startNullAudio, waitReady, watchPage, PULSEAUDIO } from './harness.mjs';

export const FIREFOX = process.env.FIREFOX_PATH || '/usr/bin/firefox-esr';
/** In CI a missing requirement is a failure, not a skip. */
export const inCI = ['true', '1'].includes((process.env.CI || '').toLowerCase());

/** Whether the dynamic linker knows a libavcodec (the system FFmpeg Firefox decodes MP3 with). */
function haveLibavcodec() {
  for (const ldconfig of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    try {
      return /\blibavcodec\.so\.\d+/.test(execFileSync(ldconfig, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    } catch { /* try the next path */ }
  }
  return false;
}

/**
 * What is missing here: to run Firefox with MP3 (browser), and to play
 * audio in it (audio: the PulseAudio of the null sink).
 */
export function firefoxMissing() {
  const browser = [];
  if (!existsSync(FIREFOX)) browser.push(FIREFOX);
  if (!haveLibavcodec()) browser.push('libavcodec (Debian: libavcodec59)');
  return { browser, audio: existsSync(PULSEAUDIO) ? [] : [PULSEAUDIO] };
}

/** Why a test skips for the missing things m. @param {string[]} m */
export const why = (m) => `${m.join(', ')} not installed: run make deps`;

/**
 * Launches headless Firefox; with audio, playing into a PulseAudio null
 * sink started for it. close() ends both.
 * @param {{audio?: boolean}} [opts]
 */
export async function launchFirefox({ audio = true } = {}) {
  const { default: puppeteer } = await import('puppeteer-core');
  const env = { ...process.env };
  const sink = audio ? await startNullAudio() : null;
  if (sink) env.PULSE_SERVER = sink.server;
  try {
    const browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX,
      headless: true,
      env,
      extraPrefsFirefox: {
        // Audible autoplay without a user gesture, as --autoplay-policy=no-user-gesture-required does for Chromium.
        'media.autoplay.default': 0,
        'media.autoplay.blocking_policy': 0,
      },
    });
    return {
      browser,
      async close() {
        await browser.close();
        if (sink) await sink.stop();
      },
    };
  } catch (err) {
    if (sink) await sink.stop();
    throw err;
  }
}

/**
 * Opens url in a new Firefox page and waits for the client; page errors and
 * console errors go to the returned list.
 * @param {import('puppeteer-core').Browser} browser
 * @param {string} url
 */
export async function openFirefoxPage(browser, url) {
  const page = await browser.newPage();
  const problems = watchPage(page, 'firefox');
  await page.goto(url);
  await waitReady(page);
  return { page, problems };
}
