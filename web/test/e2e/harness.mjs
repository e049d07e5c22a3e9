// E2E harness: builds `ztream`, starts `ztream serve` on a free loopback port
// with a temporary --data dir, and launches Debian's Chromium through
// playwright-core (never a downloaded browser).

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const WEB_DIR = fileURLToPath(new URL('../../', import.meta.url));
export const REPO_DIR = dirname(WEB_DIR.replace(/\/$/, ''));
export const ARTIFACTS = process.env.ZTREAM_E2E_ARTIFACTS || join(WEB_DIR, 'test', 'artifacts');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

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

function freePort() {
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

/** Opens a page, collecting console errors and page errors into the returned list. */
export async function openPage(context, url) {
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console.error: ${m.text()}`);
    if (process.env.ZTREAM_E2E_VERBOSE) console.log(`[page] ${m.type()}: ${m.text()}`);
  });
  await page.goto(url);
  await page.waitForFunction(() => window.ztream && window.ztream.ready === true, null, { timeout: 20000 });
  return { page, problems };
}

export function artifactPath(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}
