// WebKitGTK for the e2e tests: Debian's WebKitWebDriver (package
// webkit2gtk-driver) under xvfb-run, driving MiniBrowser (libwebkit2gtk-4.1-0),
// the engine closest to Safari that runs here. A W3C WebDriver client of the
// few commands the tests use, over fetch (no npm package: the protocol is
// plain HTTP+JSON, https://www.w3.org/TR/webdriver2/).

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freePort } from './harness.mjs';

export const WEBKIT_DRIVER = process.env.WEBKIT_DRIVER_PATH || '/usr/bin/WebKitWebDriver';
export const MINIBROWSER = process.env.MINIBROWSER_PATH || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
export const XVFB_RUN = process.env.XVFB_RUN_PATH || '/usr/bin/xvfb-run';

/** What is missing to run WebKitGTK here (empty: nothing). */
export function webkitMissing() {
  return [WEBKIT_DRIVER, MINIBROWSER, XVFB_RUN].filter((p) => !existsSync(p));
}

/** A W3C WebDriver session. */
export class WebDriverSession {
  /**
   * @param {string} base the driver's URL
   * @param {string} id the session id
   */
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  /**
   * Sends one command; returns its value, throws its error.
   * @param {string} method
   * @param {string} path below /session/{id}
   * @param {object} [body]
   */
  async cmd(method, path, body) {
    return command(this.base, method, `/session/${this.id}${path}`, body);
  }

  /** @param {string} url */
  goto(url) {
    return this.cmd('POST', '/url', { url });
  }

  /**
   * Runs fn (a function, sent as its source) in the page with args; returns its result.
   * @param {Function} fn
   * @param {...unknown} args
   */
  exec(fn, ...args) {
    return this.cmd('POST', '/execute/sync', { script: `return (${fn.toString()}).apply(null, arguments)`, args });
  }

  /**
   * Clicks the first element matching css, as a user does (a trusted gesture: the page may start audio).
   * @param {string} css
   */
  async click(css) {
    const el = await this.cmd('POST', '/element', { using: 'css selector', value: css });
    await this.cmd('POST', `/element/${Object.values(el)[0]}/click`, {});
  }

  /** @param {{width: number, height: number}} rect */
  setWindowRect(rect) {
    return this.cmd('POST', '/window/rect', rect);
  }

  /** The viewport as PNG bytes. */
  async screenshot() {
    return Buffer.from(await this.cmd('GET', '/screenshot'), 'base64');
  }

  close() {
    return this.cmd('DELETE', '');
  }
}

/**
 * @param {string} base
 * @param {string} method
 * @param {string} path
 * @param {object} [body]
 */
async function command(base, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(60000),
  });
  const j = await res.json();
  if (j.value && j.value.error) throw new Error(`WebDriver ${method} ${path}: ${j.value.error}: ${j.value.message}`);
  return j.value;
}

/**
 * Starts WebKitWebDriver on a free loopback port under its own X server
 * (xvfb-run -a). stop() ends the driver, its browsers and the X server.
 */
export async function startWebKit() {
  const port = await freePort();
  const proc = spawn(XVFB_RUN, ['-a', WEBKIT_DRIVER, `--port=${port}`, '--host=local'],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const keep = (b) => {
    output = (output + b.toString()).slice(-10000);
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      const st = await command(base, 'GET', '/status');
      if (st && st.ready) break;
    } catch { /* not listening yet */ }
    if (proc.exitCode !== null || Date.now() > deadline) {
      try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ }
      throw new Error(`WebKitWebDriver did not start within 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    /** Opens MiniBrowser in automation mode. */
    async session() {
      const v = await command(base, 'POST', '/session', {
        capabilities: { alwaysMatch: { 'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] } } },
      });
      return new WebDriverSession(base, v.sessionId);
    },
    get output() {
      return output;
    },
    async stop() {
      try { process.kill(-proc.pid, 'SIGTERM'); } catch { /* gone */ }
      const t = setTimeout(() => {
        try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ }
      }, 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
