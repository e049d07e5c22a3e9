// E2E harness: builds `ztream`, starts `ztream serve` on a free loopback port
// with a temporary --data dir, and launches Debian's Chromium through
// playwright-core (never a downloaded browser); starts a PulseAudio null sink
// for Firefox (startNullAudio). Tests wait with waitUntil (plain
// page.evaluate polls), never page.waitForFunction, which the client's CSP
// can block.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

export const WEB_DIR = fileURLToPath(new URL('../../', import.meta.url));
export const REPO_DIR = dirname(WEB_DIR.replace(/\/$/, ''));
export const ARTIFACTS = process.env.ZTREAM_E2E_ARTIFACTS || join(WEB_DIR, 'test', 'artifacts');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const PULSEAUDIO = process.env.PULSEAUDIO_PATH || '/usr/bin/pulseaudio';

/** Builds the Go reference peer helper (web/test/gopeer) once per process (or uses $ZTREAM_GOPEER_BIN). */
let builtPeer = null;
export function buildGoPeer() {
  if (process.env.ZTREAM_GOPEER_BIN) return process.env.ZTREAM_GOPEER_BIN;
  if (builtPeer) return builtPeer;
  const out = join(mkdtempSync(join(tmpdir(), 'ztream-e2e-gopeer-')), 'gopeer');
  execFileSync('go', ['build', '-o', out, './web/test/gopeer'], { cwd: REPO_DIR, stdio: 'inherit' });
  builtPeer = out;
  return out;
}

/**
 * Starts a Go reference peer (web/test/gopeer) that plays track on hubURL,
 * then seeds it for hold. `played` resolves with its report when the
 * playback ends, `final` when it leaves; stop() ends it (SIGTERM) and
 * resolves with the final report.
 * @param {string} hubURL
 * @param {string} track
 * fault makes it a misbehaving seeder (gopeer --fault: bad_bytes, wrong_seq, oversize, silent).
 * @param {{hold?: string, speed?: number, fault?: string}} [opts]
 */
export function startGoPeer(hubURL, track, { hold = '120s', speed = 8, fault = 'none' } = {}) {
  const bin = buildGoPeer();
  const proc = spawn(bin, ['--hub', hubURL, '--play', track, '--hold', hold, '--speed', String(speed), '--fault', fault, '--json'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (b) => {
    stderr = (stderr + b.toString()).slice(-20000);
  });
  const waiters = { played: [], final: [] };
  const reports = {};
  let buf = '';
  proc.stdout.on('data', (b) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let r;
      try {
        r = JSON.parse(line);
      } catch {
        continue;
      }
      reports[r.event] = r;
      for (const w of waiters[r.event] || []) w.resolve(r);
    }
  });
  let exited = false;
  const exit = new Promise((resolve) => proc.on('exit', (code) => {
    exited = true;
    for (const ev of ['played', 'final']) {
      if (!reports[ev]) for (const w of waiters[ev]) w.reject(new Error(`gopeer exited (${code}) before its ${ev} report:\n${stderr}`));
    }
    resolve(code);
  }));
  const wait = (ev, ms) => new Promise((resolve, reject) => {
    if (reports[ev]) return resolve(reports[ev]);
    if (exited) return reject(new Error(`gopeer exited before its ${ev} report:\n${stderr}`));
    const t = setTimeout(() => reject(new Error(`no ${ev} report from gopeer in ${ms} ms:\n${stderr}`)), ms);
    const settle = (f) => (v) => {
      clearTimeout(t);
      f(v);
    };
    waiters[ev].push({ resolve: settle(resolve), reject: settle(reject) });
  });
  return {
    played: (ms = 120000) => wait('played', ms),
    final: (ms = 150000) => wait('final', ms),
    stderr: () => stderr,
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
        await exit;
        clearTimeout(t);
      }
      return reports.final || null;
    },
  };
}

/** Builds the binary once per process (or uses $ZTREAM_BIN). */
let built = null;
export function buildBinary() {
  if (process.env.ZTREAM_BIN) return process.env.ZTREAM_BIN;
  if (built) return built;
  const out = join(mkdtempSync(join(tmpdir(), 'ztream-e2e-bin-')), 'ztream');
  execFileSync('go', ['build', '-o', out, './cmd/ztream'], { cwd: REPO_DIR, stdio: 'inherit' });
  built = out;
  return out;
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `ztream serve`; resolves once /healthz answers. Call stop() when
 * done (stop({keepData: true}) keeps the data dir, to restart on it).
 * @param {string[]} [extraArgs]
 * @param {{port?: number, data?: string}} [opts] reuse a port and data dir (restart)
 */
export async function startServer(extraArgs = [], opts = {}) {
  const bin = buildBinary();
  const data = opts.data || mkdtempSync(join(tmpdir(), 'ztream-e2e-data-'));
  const port = opts.port || await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = spawn(bin, ['serve', '--addr', `127.0.0.1:${port}`, '--data', data, '--udp-port', '0', '--ice-loopback', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  const keep = (b) => {
    logs = (logs + b.toString()).slice(-20000);
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  let exited = false;
  proc.on('exit', () => {
    exited = true;
  });
  const deadline = Date.now() + 60000;
  for (;;) {
    if (exited) throw new Error(`ztream serve exited early:\n${logs}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`ztream serve did not come up in 60 s:\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    data,
    logs: () => logs,
    /** Ends the hub with SIGKILL (a crash: no goodbye to anyone) and waits for it; keeps its data dir until stop(). */
    async kill() {
      if (exited) return;
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await gone;
    },
    async stop({ keepData = false } = {}) {
      if (!exited) {
        proc.kill('SIGTERM');
        await new Promise((r) => {
          const t = setTimeout(() => {
            proc.kill('SIGKILL');
            r();
          }, 10000);
          proc.once('exit', () => {
            clearTimeout(t);
            r();
          });
        });
      }
      if (!keepData) rmSync(data, { recursive: true, force: true });
    },
  };
}

/**
 * Starts a PulseAudio daemon of its own (temporary runtime dir, no config
 * read, no D-Bus) whose only sink is a null sink: it consumes audio in real
 * time and outputs nothing. Firefox fails playback with OnMediaSinkAudioError
 * on a machine without audio output; launched with PULSE_SERVER=server it
 * plays into this sink instead. Resolves once the socket is up; stop() ends
 * the daemon and removes its dir.
 * @returns {Promise<{server: string, logs: () => string, stop: () => Promise<void>}>}
 */
export async function startNullAudio() {
  const dir = mkdtempSync(join(tmpdir(), 'ztream-e2e-pulse-'));
  const socket = join(dir, 'native');
  const env = { ...process.env, HOME: dir, XDG_RUNTIME_DIR: dir, XDG_CONFIG_HOME: dir, XDG_STATE_HOME: dir, XDG_CACHE_HOME: dir };
  delete env.DBUS_SESSION_BUS_ADDRESS;
  delete env.PULSE_SERVER;
  // The sink is loaded before the socket: once the socket exists, the sink does.
  const proc = spawn(PULSEAUDIO, [
    '-n', '--daemonize=no', '--use-pid-file=no', '--exit-idle-time=-1', '--disable-shm=yes',
    '--realtime=no', '--high-priority=no', '--log-target=stderr',
    '-L', 'module-null-sink sink_name=ztream_null',
    '-L', `module-native-protocol-unix socket=${socket} auth-anonymous=1`,
  ], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let logs = '';
  proc.stderr.on('data', (b) => {
    logs = (logs + b.toString()).slice(-20000);
  });
  let exited = false;
  const exit = new Promise((resolve) => proc.on('exit', () => {
    exited = true;
    resolve();
  }));
  proc.on('error', (err) => {
    logs += `\n${err.message}`;
  });
  const deadline = Date.now() + 15000;
  while (!existsSync(socket)) {
    if (exited || Date.now() > deadline) {
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`${PULSEAUDIO} did not start a null sink${exited ? ' (it exited)' : ' in 15 s'}:\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    server: `unix:${socket}`,
    logs: () => logs,
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exit;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Launches headless Chromium with the flags the project's tests use. */
export function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--autoplay-policy=no-user-gesture-required',
      ...extraArgs,
    ],
  });
}

/**
 * Waits until fn(arg), run in the page, returns a truthy value, and resolves
 * with that value; rejects after timeout ms with the last value or error.
 * It polls with plain page.evaluate(fn, arg) calls (playwright or puppeteer
 * page), never page.waitForFunction: that one has the page compile its
 * poller with Function() or eval, which the client's Content-Security-Policy
 * (script-src 'self') forbids — firefox-esr enforces it on puppeteer's poller
 * — so tests must not depend on a browser's eval policy. Errors thrown by fn
 * (e.g. during a navigation) are retried until the deadline. Bounded: every
 * evaluate call is cut at the deadline too.
 * @template A, R
 * @param {{evaluate: (fn: (arg: A) => R, arg: A) => Promise<R>}} page
 * @param {(arg: A) => R} fn serialized into the page: no closure over test variables
 * @param {A} [arg]
 * @param {{timeout?: number, interval?: number, what?: string}} [opts] what names the condition in the error
 * @returns {Promise<R>}
 */
export async function waitUntil(page, fn, arg, { timeout = 10000, interval = 100, what = fn.toString() } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastError = null;
  for (;;) {
    const left = deadline - Date.now();
    let timer;
    const evaluation = page.evaluate(fn, arg);
    evaluation.catch(() => {}); // still pending when the deadline cut it
    try {
      last = await Promise.race([
        evaluation,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('page.evaluate did not return before the deadline')), Math.max(left, 1));
        }),
      ]);
      lastError = null;
      if (last) return last;
    } catch (err) {
      lastError = err;
    } finally {
      clearTimeout(timer);
    }
    if (Date.now() + interval > deadline) {
      const got = lastError ? `error: ${lastError.message}` : `last value: ${JSON.stringify(last)}`;
      throw new Error(`waitUntil: not true within ${timeout} ms (${got}): ${what}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Waits until the page's window.ztream.ready (the client is wired and connected, or fell back to HTTP). */
export function waitReady(page, { timeout = 20000 } = {}) {
  return waitUntil(page, () => !!window.ztream && window.ztream.ready === true, undefined, { timeout, what: 'window.ztream.ready' });
}

/**
 * Collects page's errors and console errors into the returned list (and
 * prints its console with ZTREAM_E2E_VERBOSE, each line after label).
 * Works with playwright and puppeteer pages.
 * @param {{on: Function}} page
 * @param {string} label
 * @returns {string[]}
 */
export function watchPage(page, label = 'page') {
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console.error: ${m.text()}`);
    if (process.env.ZTREAM_E2E_VERBOSE) console.log(`[${label}] ${m.type()}: ${m.text()}`);
  });
  return problems;
}

/** Opens a page, collecting console errors and page errors into the returned list. */
export async function openPage(context, url) {
  const page = await context.newPage();
  const problems = watchPage(page);
  await page.goto(url);
  await waitReady(page);
  return { page, problems };
}

export function artifactPath(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

const NATS_SERVER = process.env.NATS_SERVER_PATH || 'nats-server';

/**
 * Starts Debian's nats-server with JetStream on a free loopback port.
 * @returns {Promise<{url: string, stop: () => Promise<void>}>}
 */
export async function startNats() {
  try {
    execFileSync(NATS_SERVER, ['--version']);
  } catch (e) {
    throw new Error(`nats-server not found (Debian package nats-server; make deps installs it): ${e.message}`);
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ztream-e2e-nats-'));
  const proc = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  const keep = (b) => { logs = (logs + b.toString()).slice(-10000); };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const deadline = Date.now() + 10000;
  while (!/Server is ready/.test(logs)) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`nats-server did not start:\n${logs}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The hub's /healthz "hub" object (cluster state). */
export async function hubHealth(url) {
  return (await (await fetch(`${url}/healthz`)).json()).hub;
}

/**
 * Starts a TCP (layer 4) load balancer on a free loopback port in front of
 * the given hub ports: each new connection goes to the next port in turn,
 * skipping a port that refuses it, like HAProxy in `mode tcp` with
 * `balance roundrobin` and `redispatch`. No stickiness: an HTTP request and
 * the page's WebSocket can land on different hubs.
 * @param {number[]} ports
 * @returns {Promise<{url: string, port: number, picks: Map<number, number>, close: () => Promise<void>}>}
 */
export async function startBalancer(ports) {
  const sockets = new Set();
  const picks = new Map(ports.map((p) => [p, 0]));
  let next = 0;
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.pause();
    const attempt = (tries) => {
      if (tries >= ports.length) {
        client.destroy();
        return;
      }
      const port = ports[next++ % ports.length];
      const upstream = connect({ host: '127.0.0.1', port });
      let connected = false;
      upstream.once('error', () => {
        if (!connected) attempt(tries + 1); // refused: the next hub
      });
      upstream.once('connect', () => {
        connected = true;
        picks.set(port, picks.get(port) + 1);
        sockets.add(upstream);
        upstream.on('close', () => { sockets.delete(upstream); client.destroy(); });
        upstream.on('error', () => client.destroy());
        client.on('close', () => upstream.destroy());
        client.on('error', () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    attempt(0);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    picks,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Chromium flags that make two peers on one machine reachable: host candidates instead of mDNS names. */
export const HOST_CANDIDATES = ['--disable-features=WebRtcHideLocalIpsWithMdns'];

/**
 * Registers node:test before/after hooks that start `ztream serve` (with
 * serverArgs) and Chromium (with browserArgs) for the tests of one file,
 * and stop them, and every Go peer started with env.startGoPeer, at the
 * end. Returns the env; its server and browser are set once `before` ran.
 * @param {{serverArgs?: string[], browserArgs?: string[], goPeers?: boolean}} [opts]
 *   goPeers: build the Go reference peer helper before the tests
 */
export function useServerAndBrowser({ serverArgs = [], browserArgs = [], goPeers = false } = {}) {
  const env = {
    server: null,
    browser: null,
    goPeers: [],
    /** Starts a Go peer against the server (see startGoPeer); it is stopped after the tests. */
    startGoPeer(track, opts) {
      const g = startGoPeer(env.server.url, track, opts);
      env.goPeers.push(g);
      return g;
    },
  };
  before(async () => {
    if (goPeers) buildGoPeer();
    env.server = await startServer(serverArgs);
    env.browser = await launchBrowser(browserArgs);
  });
  after(async () => {
    for (const g of env.goPeers) await g.stop();
    if (env.browser) await env.browser.close();
    if (env.server) await env.server.stop();
  });
  return env;
}

/** The page's window.ztream.stats(). */
export function pageStats(page) {
  return page.evaluate(() => window.ztream.stats());
}

/**
 * The value of the Prometheus sample name{labels} of the hub at serverURL (0 when absent).
 * @param {string} serverURL
 * @param {string} name
 * @param {Record<string, string>} labels
 */
export async function hubMetric(serverURL, name, labels) {
  const text = await (await fetch(`${serverURL}/metrics`)).text();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? ([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] || '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return 0;
}

/** The manifests of the first n tracks of the server's library (at least n must exist). */
export async function firstManifests(serverURL, n) {
  const list = await (await fetch(`${serverURL}/api/tracks`)).json();
  if (list.length < n) throw new Error(`the library has ${list.length} tracks, want ${n}`);
  return Promise.all(list.slice(0, n).map(async (t) => (await fetch(`${serverURL}/api/tracks/${t.id}`)).json()));
}
