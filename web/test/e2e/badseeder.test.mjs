// Bad seeders: a Go reference peer that plays a track (so the hub offers it
// as a seeder) but serves it wrongly on purpose (gopeer --fault). A browser
// leeching that track must detect it, close the link to it, report it to the
// hub (`report`) and still get the whole track, verified, from the hub with
// no stall. A: corrupt chunks (bad_bytes → hash_mismatch). B: a seeder that
// accepts requests and never answers (silent → timeout).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, useServerAndBrowser, pageStats, firstManifests, HOST_CANDIDATES, waitUntil, hubMetric } from './harness.mjs';

// Host candidates instead of mDNS names, so that peers on this machine can reach the browser.
const env = useServerAndBrowser({ serverArgs: ['--max-peers-per-ip', '-1'], browserArgs: HOST_CANDIDATES, goPeers: true });

/** The value of the hub's Prometheus sample name{labels} (0 when absent). */
const metric = (name, labels) => hubMetric(env.server.url, name, labels);

/** Waits (bounded) until the hub counted an accepted report for reason. */
async function acceptedReports(reason, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    const n = await metric('ztream_peer_reports_total', { reason, outcome: 'accepted' });
    if (n >= 1 || Date.now() > end) return n;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Starts a Go peer with fault that plays m (becoming its seeder), then has a
 * fresh browser context (no persistent cache) play m; returns what both saw.
 */
async function leechFromBadSeeder(m, fault) {
  const g = env.startGoPeer(m.id, { hold: '80s', fault });
  const played = await g.played(60000);
  assert.ok(played.complete, `the Go peer played the whole track: ${JSON.stringify(played)}`);
  assert.equal(played.hash_failures, 0, 'it got the track right (it only serves it wrongly)');

  const ctx = await env.browser.newContext();
  try {
    const b = await openPage(ctx, `${env.server.url}/?cache=0`);
    assert.equal((await pageStats(b.page)).transport, 'hub');
    await b.page.evaluate((id) => { window.ztream.autoAdvance = false; return window.ztream.play(id); }, m.id);
    await waitUntil(b.page, (id) => window.ztream.stats().complete.includes(id), m.id, { timeout: 45000 });
    await waitUntil(b.page, () => window.ztream.stats().currentTime > 1, undefined, { timeout: 15000 });
    // The hub may complete the track before the seeder's fault shows (a
    // silent seeder is abandoned only at the source timeout): give the page
    // that time, bounded; the assertions below say what it did.
    await waitUntil(b.page, () => window.ztream.stats().peers_abandoned >= 1, undefined, { timeout: 10000 }).catch(() => {});
    const sb = await pageStats(b.page);
    const log = await b.page.evaluate(() => window.ztream.log.slice());
    if (process.env.ZTREAM_E2E_VERBOSE) console.log(log.join('\n'));
    console.log(`badseeder ${fault}: browser ${JSON.stringify({ ...sb, cache: undefined, complete: undefined })}`);
    return { g, played, sb, log, problems: b.problems };
  } finally {
    await ctx.close();
  }
}

test('A: a seeder serving corrupt chunks is abandoned and reported (hash_mismatch); the track completes from the hub', { timeout: 90000 }, async () => {
  const [m] = await firstManifests(env.server.url, 2);
  const { g, played, sb, log, problems } = await leechFromBadSeeder(m, 'bad_bytes');
  assert.ok(sb.bad_chunks > 0, 'the browser got (and rejected) corrupt chunks from the Go peer');
  assert.ok(sb.reports_sent >= 1, `reports sent: ${sb.reports_sent}`);
  assert.ok(sb.bad_peers.includes(played.peer_id), `the Go peer ${played.peer_id} is remembered as bad: ${sb.bad_peers}`);
  assert.equal(sb.peers_abandoned, 1, 'reported before any new lookup, the seeder was not offered again');
  assert.ok(log.some((l) => l.includes(`peer ${played.peer_id}: abandoned (hash_mismatch`)), 'its link was closed for hash_mismatch');
  assert.equal(sb.p2p_bytes, 0, 'no byte of the corrupt seeder was kept');
  assert.equal(sb.server_bytes + sb.p2p_bytes, m.size, 'every verified chunk once: the whole track');
  assert.equal(sb.stalls, 0);
  assert.deepEqual(problems, []);
  const accepted = await acceptedReports('hash_mismatch');
  assert.ok(accepted >= 1, `ztream_peer_reports_total{reason="hash_mismatch",outcome="accepted"} = ${accepted}`);
  const final = await g.stop();
  assert.ok(final && final.faults_sent > 0, `the Go peer served chunks wrongly: ${JSON.stringify(final)}`);
});

test('B: a seeder that never answers is abandoned and reported (timeout); the track completes from the hub', { timeout: 90000 }, async () => {
  const [, m] = await firstManifests(env.server.url, 2);
  const { g, played, sb, log, problems } = await leechFromBadSeeder(m, 'silent');
  assert.ok(sb.reports_sent >= 1, `reports sent: ${sb.reports_sent}`);
  assert.ok(sb.bad_peers.includes(played.peer_id), `the Go peer ${played.peer_id} is remembered as bad: ${sb.bad_peers}`);
  assert.ok(log.some((l) => l.includes(`peer ${played.peer_id}: abandoned (timeout`)), 'its link was closed for timeout');
  assert.equal(sb.peers_abandoned, 1, 'reported before any new lookup, the seeder was not offered again');
  assert.equal(sb.bad_chunks, 0);
  assert.equal(sb.p2p_bytes, 0);
  assert.equal(sb.server_bytes, m.size);
  assert.equal(sb.stalls, 0);
  assert.deepEqual(problems, []);
  const accepted = await acceptedReports('timeout');
  assert.ok(accepted >= 1, `ztream_peer_reports_total{reason="timeout",outcome="accepted"} = ${accepted}`);
  const final = await g.stop();
  assert.ok(final && final.faults_sent > 0, `the Go peer ignored requests: ${JSON.stringify(final)}`);
});
