// The loader: the event-driven part of the peer algorithm (docs/PROTOCOL.md
// §8) around swarm.js schedule(), against a real Net with a fake hub
// (WebSocket + DataChannel), fake remote peers and a fake HTTP endpoint.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Loader, TICK_MS } from '../../js/loader.js';
import { ChunkStore } from '../../js/chunkstore.js';
import { SessionStats } from '../../js/stats.js';
import { ChunkChannel } from '../../js/channel.js';
import { chunkStartSec } from '../../js/timeline.js';
import { decodeBitfield, encodeBitfield } from '../../js/wire.js';
import { makeManifest, dcPair, FakePC } from './helpers.mjs';
import { FAST, browserPeer, leecherLink, answerLookups, remoteServe, seqs, installFakes, tick, until } from './swarmhelpers.mjs';

/** A fake HTTP chunk endpoint serving data; corrupt(seq, attempt) flips a byte. */
function fakeAPI(data, { corrupt = () => false, fail = () => false } = {}) {
  const api = {
    calls: [],
    async chunk(track, seq) {
      const attempt = api.calls.filter((s) => s === seq).length;
      api.calls.push(seq);
      await tick(1);
      if (fail(seq)) throw new Error(`GET chunk ${seq}: 503`);
      const b = data[seq].slice();
      if (corrupt(seq, attempt)) b[10] ^= 0xff;
      return b;
    },
  };
  return api;
}

/** The chunks of m starting before t seconds of media (chunk 0 starts at 0: the schedule's timeline). */
const startingBefore = (m, ms) => m.chunks.filter((c) => c.start_ms < ms).map((c) => c.seq);

const sizeOf = (data, set) => [...set].reduce((n, s) => n + data[s].length, 0);

test('without P2P the hub (here HTTP) streams start_ms at start, then refills hub_ahead_ms under half of it', async (t) => {
  const { manifest, data } = makeManifest({ n: 40 });
  const store = new ChunkStore();
  const stats = new SessionStats();
  const api = fakeAPI(data);
  let pos = 0;
  const l = new Loader({ manifest, store, stats, api, config: FAST, position: () => pos, tickMs: 5 });
  t.after(() => l.stop());
  l.kick();
  const first = startingBefore(manifest, 10_000);
  await until(() => store.held(manifest.id).size === first.length);
  await tick(40);
  assert.deepEqual([...api.calls].sort((a, b) => a - b), first, 'StartMS (10 s) at start, nothing more');
  assert.equal(stats.bytes.http, sizeOf(data, new Set(first)));
  pos = 4; // 6 s buffered: more than half of HubAheadMS, nothing yet
  await tick(40);
  assert.equal(api.calls.length, first.length);
  pos = 6; // 4 s buffered: refill up to 10 s ahead of the playhead
  await until(() => store.held(manifest.id).size > first.length);
  await tick(40);
  const want = startingBefore(manifest, 6000 + manifest.encoder_delay / 44.1 + 10_000);
  assert.deepEqual([...store.held(manifest.id).keys()].sort((a, b) => a - b), want);
  assert.equal(stats.badChunks, 0);
  for (const s of want) assert.deepEqual(store.get(manifest.id, s), data[s]);
});

test('a chunk failing its SHA-256 is rejected, counted and fetched again', async (t) => {
  const { manifest, data } = makeManifest({ n: 8 });
  const store = new ChunkStore();
  const stats = new SessionStats();
  const logs = [];
  const api = fakeAPI(data, { corrupt: (seq, attempt) => seq === 2 && attempt === 0 });
  // The playhead moves at 50x once playback can start: the chunks of the start window still in
  // flight when chunk 2 is asked again are dropped with the range it replaces (one range per
  // source), and the refill brings them as the playhead nears them, as in a real player.
  let t0 = 0;
  const position = () => (t0 && store.has(manifest.id, 0) ? Math.min((performance.now() - t0) / 20, 8) : 0);
  const l = new Loader({ manifest, store, stats, api, config: FAST, position, tickMs: 5, log: (m) => logs.push(m) });
  t.after(() => l.stop());
  t0 = performance.now();
  l.kick();
  await until(() => l.complete);
  assert.equal(stats.badChunks, 1);
  assert.ok(logs.some((m) => /rejected chunk 2: sha256/.test(m)), logs.join('\n'));
  assert.equal(api.calls.filter((s) => s === 2).length, 2);
  assert.equal(stats.bytes.http, manifest.size, 'only verified chunks count');
  for (let s = 0; s < 8; s++) assert.deepEqual(store.get(manifest.id, s), data[s]);
});

test('a prefetch (limitSec) loads only the start of the track; lifting the limit loads the rest', async (t) => {
  const { manifest, data } = makeManifest({ n: 30 });
  const store = new ChunkStore();
  const api = fakeAPI(data);
  const l = new Loader({ manifest, store, stats: new SessionStats(), api, config: FAST, tickMs: 5 });
  t.after(() => l.stop());
  l.limitSec = 3;
  l.kick();
  const start = manifest.chunks.filter((c) => chunkStartSec(manifest, c.seq) < 3).map((c) => c.seq);
  await until(() => store.held(manifest.id).size === start.length);
  await tick(40);
  assert.deepEqual([...store.held(manifest.id).keys()].sort((a, b) => a - b), start);
  l.limitSec = Infinity;
  l.kick();
  await until(() => store.held(manifest.id).size > start.length);
});

test('P2P, cold track: chunk 0 from the hub at once (no_candidates), then the emergency zone, then first copies; a short first-copy range holds them and looks up', async (t) => {
  installFakes();
  const { manifest, data } = makeManifest({ n: 40 });
  const me = await browserPeer({ data });
  t.after(() => me.net.stop());
  const lookups = answerLookups(me.net, me.ws, () => ({ reason: 'no_candidates' }));
  const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, config: FAST, tickMs: 5 });
  t.after(() => l.stop());
  const t0 = performance.now();
  l.kick();
  await until(() => me.hub.requests.length > 0);
  assert.ok(performance.now() - t0 < FAST.start_wait_real_ms, 'a cold start does not wait for peers');
  await until(() => l.complete, 10000);
  const reqs = me.hub.requests.map((m) => ({ from: m.from, to: m.to, fc: !!m.first_copy }));
  assert.deepEqual(reqs[0], { from: 0, to: 1, fc: false }, 'the first chunk alone');
  assert.deepEqual(reqs[1], { from: 1, to: startingBefore(manifest, 3000).length, fc: false }, 'then the emergency zone (3 s)');
  assert.ok(reqs.slice(2).every((r) => r.fc), `then first copies only: ${JSON.stringify(reqs)}`);
  assert.ok(reqs.slice(2).every((r) => r.to - r.from <= 32), 'at most first_copy_chunks each');
  assert.equal(me.stats.bytes.hub, manifest.size, 'each chunk once');
  assert.equal(me.stats.bytes.http, 0);
  // Every first-copy range was cut by the hub's stripe limit (8) after its first chunk: no hold, the
  // next first-copy request followed at once (a hold needs the first chunk skipped: see below).
  const fcs = reqs.filter((r) => r.fc).length;
  assert.ok(fcs >= 3, `${fcs} first-copy requests`);
  assert.equal(l.firstCopyHold, 0, 'no first-copy hold for ranges cut by the stripe limit');
  assert.ok(lookups.length >= 1);
  assert.deepEqual(lookups[0], { type: 'lookup', track: manifest.id, want: 4, from: 0, partial: true });
  const sent = me.ws.sent;
  assert.ok(sent.some((m) => m.type === 'holding' && m.track === manifest.id), 'holding told to the hub');
  assert.deepEqual(sent.filter((m) => m.type === 'completed'), [{ type: 'completed', track: manifest.id }]);
});

test('P2P, a first-copy range whose first chunk the hub skipped (it went to another peer) sets the hold and looks up', async (t) => {
  installFakes();
  const { manifest, data } = makeManifest({ n: 40 });
  // Chunks 10..19 went to another peer of the swarm: the hub skips them in first copies.
  const given = new Set([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  const me = await browserPeer({ data, hubOpts: { given, delayMs: 2 } });
  t.after(() => me.net.stop());
  const lookups = answerLookups(me.net, me.ws, () => ({ reason: 'busy' }));
  const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, config: FAST, tickMs: 5 });
  t.after(() => l.stop());
  l.kick();
  await until(() => me.hub.requests.some((m) => m.first_copy && m.from === 10), 5000);
  const before = lookups.length;
  await until(() => l.firstCopyHold > 0, 5000);
  await until(() => lookups.length > before, 5000);
  // While the hold lasts, no new first-copy request.
  const n = me.hub.requests.length;
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(performance.now() >= l.firstCopyHold || me.hub.requests.slice(n).every((m) => !m.first_copy), 'no first copy during the hold');
});

test('P2P, start: while a have is unanswered, busy keeps the start waiting start_wait_real_ms; no_candidates (cold) does not', async () => {
  const { manifest, data } = makeManifest({ n: 80 });
  for (const reason of ['busy', 'no_candidates']) {
    installFakes();
    // A slow hub: the track must not be complete before the have is given up.
    const me = await browserPeer({ data, hubOpts: { delayMs: 40 } });
    const lookups = answerLookups(me.net, me.ws, () => ({ reason }), { delayMs: 100 });
    const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, config: { ...FAST, start_wait_real_ms: 300 }, tickMs: 5 });
    const t0 = performance.now();
    l.kick();
    await until(() => lookups.length === 1);
    // While the lookup is under way, a peer that starts the track too asks us have: we ask it back; it never answers.
    await leecherLink(me.net, me.ws, { peer: 'p-mute', pairId: 'x-0', track: '9'.repeat(32), far: (dc) => {
      setTimeout(() => dc.send(JSON.stringify({ type: 'have', track: manifest.id })), 5);
    } });
    await until(() => l.probing.size === 1);
    await until(() => me.hub.requests.length > 0);
    const waited = performance.now() - t0;
    if (reason === 'busy') {
      assert.ok(waited >= 295, `busy: the hub was asked for chunk 0 after ${waited.toFixed(0)} ms`);
      assert.ok(!l.cold);
    } else {
      assert.ok(waited < 250, `no_candidates: the hub was asked for chunk 0 after ${waited.toFixed(0)} ms`);
      assert.ok(l.cold);
    }
    assert.deepEqual([me.hub.requests[0].from, me.hub.requests[0].to], [0, 1], 'the first chunk');
    await until(() => lookups.length >= 2, 8000); // looked up again later, once the have is given up
    l.stop();
    me.net.stop();
  }
});

test('a link open before the track starts is asked have; a whole-track holder serves the start and the rest, the hub nothing', async (t) => {
  installFakes();
  const { manifest, data } = makeManifest({ n: 30 });
  const me = await browserPeer({ data });
  t.after(() => me.net.stop());
  const lookups = answerLookups(me.net, me.ws, () => ({ reason: 'busy' }));
  await leecherLink(me.net, me.ws, { peer: 'p-full', pairId: 'x-0', track: '9'.repeat(32), serve: remoteServe(manifest, data, seqs(0, 30)) });
  const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, config: FAST, tickMs: 5 });
  t.after(() => l.stop());
  l.kick();
  await until(() => l.complete, 10000);
  assert.equal(me.stats.bytes.peer, manifest.size);
  assert.equal(me.hub.requests.length, 0, 'nothing from the hub');
  assert.equal(l.startFromPeer, true);
  assert.equal(l.sourcesUsed, 1);
  assert.equal(lookups.length, 0, 'no lookup: a source that is not slow holds the whole track');
});

test('lookup_result with several peers: each link is asked have; partial holders serve what they hold, the hub first copies of the rest', async (t) => {
  installFakes();
  const { manifest, data } = makeManifest({ n: 40 });
  const me = await browserPeer({ data });
  t.after(() => me.net.stop());
  const asked = { 'p-a': [], 'p-b': [] };
  const seeder = (peer, held) => ({
    peer,
    far: (dc) => {
      dc.addEventListener('message', (e) => {
        if (typeof e.data === 'string' && JSON.parse(e.data).type === 'request') asked[peer].push(JSON.parse(e.data));
      });
      return new ChunkChannel(dc, { name: peer, serve: remoteServe(manifest, data, held) });
    },
  });
  const heldA = seqs(0, 20);
  const heldB = seqs(10, 30);
  let first = true;
  answerLookups(me.net, me.ws, () => {
    const seeders = first ? [seeder('p-a', heldA), seeder('p-b', heldB)] : [];
    first = false;
    return { seeders, reason: 'busy' };
  });
  const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, config: FAST, tickMs: 5 });
  t.after(() => l.stop());
  l.kick();
  await until(() => l.complete, 10000);
  assert.equal(l.sourcesUsed, 2, 'both peers delivered');
  assert.ok(me.net.links.size >= 2);
  for (const [peer, held] of [['p-a', heldA], ['p-b', heldB]]) {
    for (const r of asked[peer]) {
      for (let s = r.from; s < r.to; s++) assert.ok(held.has(s), `${peer} asked for chunk ${s} it does not hold`);
      assert.ok(r.to - r.from <= 8, 'peer_window');
    }
  }
  const fromHub = new Set(me.hub.sent);
  for (const s of fromHub) assert.ok(s >= 30 || s < 3, `chunk ${s} from the hub`);
  assert.equal(me.stats.bytes.peer + me.stats.bytes.hub, manifest.size, 'every chunk once');
  assert.ok(me.hub.requests.filter((m) => m.from >= 30).every((m) => m.first_copy), 'what no peer holds: first copies');
});

test('a peer whose range stalls is cancelled and left alone for source_timeout_ms; the hub and others take over', async (t) => {
  installFakes();
  const { manifest, data } = makeManifest({ n: 20 });
  const me = await browserPeer({ data });
  t.after(() => me.net.stop());
  answerLookups(me.net, me.ws, () => ({ reason: 'busy' }));
  const cancels = [];
  const serve = remoteServe(manifest, data, seqs(0, 20));
  const slow = { ...serve, getChunk: (t, seq) => (seq < 2 ? data[seq] : new Promise(() => {})) }; // stalls after 2 chunks
  await leecherLink(me.net, me.ws, { peer: 'p-slow', pairId: 'x-0', track: manifest.id, far: (dc) => {
    dc.addEventListener('message', (e) => {
      if (typeof e.data === 'string' && JSON.parse(e.data).type === 'cancel') cancels.push(JSON.parse(e.data));
    });
    return new ChunkChannel(dc, { name: 'slow', serve: slow });
  } });
  const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, config: FAST, tickMs: 5 });
  t.after(() => l.stop());
  l.kick();
  await until(() => cancels.length > 0, 8000);
  await until(() => me.store.held(manifest.id).size >= 10, 8000);
  assert.ok(me.store.has(manifest.id, 0) && me.store.has(manifest.id, 1));
  assert.equal(me.stats.reportsSent, 0, 'a slow peer that delivered is not reported');
  assert.ok(me.net.links.has('x-0'), 'nor unpaired');
  assert.ok(me.stats.bytes.hub > 0, 'the hub took over the stalled chunks');
});

/**
 * A browser peer (its hub answering each chunk after hubDelayMs) linked to
 * p-silent, a peer of a 40-chunk track that says it holds it and never sends
 * a chunk.
 * @param {import('node:test').TestContext} t
 * @param {number} hubDelayMs
 */
async function withSilentSeeder(t, hubDelayMs) {
  installFakes();
  const { manifest, data } = makeManifest({ n: 40 });
  const me = await browserPeer({ data, hubOpts: { delayMs: hubDelayMs } });
  t.after(() => me.net.stop());
  answerLookups(me.net, me.ws, () => ({ reason: 'busy' }));
  await leecherLink(me.net, me.ws, { peer: 'p-silent', pairId: 'x-0', track: manifest.id, far: (dc) => {
    dc.addEventListener('message', (e) => {
      const m = JSON.parse(e.data);
      if (m.type === 'have') dc.send(JSON.stringify({ type: 'have_reply', track: m.track, ok: true })); // then never sends a chunk
    });
  } });
  return { manifest, me };
}

test('a silent peer (nothing silence_real_ms after first asked) is abandoned and reported timeout; the hub serves the track', async (t) => {
  const { manifest, me } = await withSilentSeeder(t, 5);
  const logs = [];
  const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, config: FAST, tickMs: 5, log: (m) => logs.push(m) });
  t.after(() => l.stop());
  l.kick();
  await until(() => l.complete, 10000);
  assert.deepEqual(me.ws.sent.filter((m) => m.type === 'report'), [{ type: 'report', peer: 'p-silent', track: manifest.id, reason: 'timeout' }]);
  const at = (type) => me.ws.sent.findIndex((m) => m.type === type && (m.peer === 'p-silent' || m.pair_id === 'x-0'));
  assert.ok(at('report') >= 0 && at('unpair') > at('report'), 'reported, then unpaired');
  assert.ok(!me.net.links.has('x-0'));
  assert.equal(me.net.badPeers.get('p-silent'), 'timeout');
  assert.equal(me.stats.peersAbandoned, 1);
  assert.equal(me.stats.bytes.hub, manifest.size);
});

test('a silent peer is still judged at silence_real_ms when the hub completed the track before', async (t) => {
  const { manifest, me } = await withSilentSeeder(t, 0);
  // The silent range stalls at source_timeout_ms; the fast hub completes the track long before silence_real_ms.
  const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, config: { ...FAST, silence_real_ms: 800 }, tickMs: 5 });
  t.after(() => l.stop());
  l.kick();
  await until(() => l.complete, 5000);
  assert.equal(me.stats.reportsSent, 0, 'completed before the silence timeout');
  await until(() => me.stats.reportsSent > 0, 5000);
  assert.deepEqual(me.ws.sent.filter((m) => m.type === 'report'), [{ type: 'report', peer: 'p-silent', track: manifest.id, reason: 'timeout' }]);
  assert.equal(me.stats.peersAbandoned, 1);
  assert.equal(me.stats.bytes.hub, manifest.size);
});

test('a lying peer (range done without a chunk its bitfield claims) is abandoned and reported timeout', async (t) => {
  installFakes();
  const { manifest, data } = makeManifest({ n: 16 });
  const me = await browserPeer({ data });
  t.after(() => me.net.stop());
  answerLookups(me.net, me.ws, () => ({ reason: 'busy' }));
  const claims = seqs(0, 16);
  const sends = new Set([0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]); // not 3
  await leecherLink(me.net, me.ws, { peer: 'p-liar', pairId: 'x-0', track: manifest.id,
    serve: { ...remoteServe(manifest, data, claims), getChunk: (t, seq) => (sends.has(seq) ? data[seq] : undefined) } });
  const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, config: FAST, tickMs: 5 });
  t.after(() => l.stop());
  l.kick();
  await until(() => l.complete, 10000);
  assert.deepEqual(me.ws.sent.filter((m) => m.type === 'report'), [{ type: 'report', peer: 'p-liar', track: manifest.id, reason: 'timeout' }]);
  assert.ok(!me.net.links.has('x-0'));
  assert.ok(me.hub.sent.includes(3), 'the chunk it did not send came from the hub');
});

test('a peer sending chunks that fail SHA-256 is abandoned, reported hash_mismatch once and remembered; the good peer goes on', async (t) => {
  installFakes();
  const { manifest, data } = makeManifest({ n: 40 });
  const me = await browserPeer({ data });
  t.after(() => me.net.stop());
  answerLookups(me.net, me.ws, () => ({ reason: 'busy' }));
  const all = seqs(0, 40);
  await leecherLink(me.net, me.ws, { peer: 'p-bad', pairId: 'x-1', track: manifest.id,
    serve: remoteServe(manifest, data, all, { mangle: (seq, b) => { b[b.length >> 1] ^= 0xff; return b; } }) });
  await leecherLink(me.net, me.ws, { peer: 'p-good', pairId: 'x-2', track: manifest.id, serve: remoteServe(manifest, data, all) });
  const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, config: FAST, tickMs: 5, log: () => {} });
  t.after(() => l.stop());
  l.kick();
  await until(() => l.complete, 10000);
  const reports = me.ws.sent.filter((m) => m.type === 'report');
  assert.deepEqual(reports, [{ type: 'report', peer: 'p-bad', track: manifest.id, reason: 'hash_mismatch' }], 'one report for many bad chunks');
  assert.ok(me.ws.sent.findIndex((m) => m.type === 'unpair' && m.pair_id === 'x-1') > me.ws.sent.indexOf(reports[0]), 'reported, then unpaired');
  assert.deepEqual([...me.net.badPeers], [['p-bad', 'hash_mismatch']]);
  assert.ok(me.stats.badChunks >= 1);
  assert.equal(me.stats.peersAbandoned, 1);
  assert.ok(me.stats.bytes.peer > 0, 'the good peer served');
  assert.equal(me.stats.bytes.peer + me.stats.bytes.hub, manifest.size);
  for (let seq = 0; seq < data.length; seq++) assert.deepEqual(me.store.get(manifest.id, seq), data[seq]);
});

test('a have_reply or holding whose bitfield does not match the manifest is a bad message: reported, unpaired', async (t) => {
  const { manifest, data } = makeManifest({ n: 20 });
  for (const how of ['have_reply', 'holding']) {
    installFakes();
    const me = await browserPeer({ data });
    answerLookups(me.net, me.ws, () => ({ reason: 'busy' }));
    const serve = remoteServe(manifest, data, seqs(0, 5), how === 'have_reply' ? { haveReply: () => ({ ok: false, chunks: 21, have: 'AAAA' }) } : {});
    let far;
    await leecherLink(me.net, me.ws, { peer: 'p-odd', pairId: 'x-0', track: manifest.id, far: (dc) => { far = new ChunkChannel(dc, { name: 'odd', serve }); } });
    const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, config: FAST, tickMs: 5 });
    l.kick();
    if (how === 'holding') {
      await until(() => l.peers.length === 1);
      far.pushHolding(manifest.id, { chunks: 20, have: 'AAAAAA==' }); // 4 bytes for 20 chunks
    }
    await until(() => me.ws.sent.some((m) => m.type === 'report'));
    assert.deepEqual(me.ws.sent.filter((m) => m.type === 'report'), [{ type: 'report', peer: 'p-odd', track: manifest.id, reason: 'bad_message' }], how);
    await until(() => !me.net.links.has('x-0'));
    l.stop();
    me.net.stop();
  }
});

test('holding: told to the hub and to the links that asked have, at most every holding_interval_real_ms; withdrawn when the download stops unfinished', async (t) => {
  installFakes();
  const { manifest, data } = makeManifest({ n: 60 });
  const me = await browserPeer({ data, hubOpts: { delayMs: 2 } });
  t.after(() => me.net.stop());
  answerLookups(me.net, me.ws, () => ({ reason: 'no_candidates' }));
  const answer = me.ws.onSend;
  const sentAt = []; // when each holding went to the hub
  me.ws.onSend = (m) => {
    answer(m);
    if (m.type === 'holding') sentAt.push(performance.now());
  };
  // A peer linked to us follows the track (it asked have); another one did not ask.
  const got = { follower: [], other: [] };
  for (const who of ['follower', 'other']) {
    await leecherLink(me.net, me.ws, { peer: `p-${who}`, pairId: `x-${who}`, track: '9'.repeat(32), far: (dc) => {
      const ch = new ChunkChannel(dc, { name: who });
      ch.addEventListener('holding', (e) => got[who].push({ at: performance.now(), m: e.detail }));
      if (who === 'follower') ch.sendText('have', { track: manifest.id });
    } });
  }
  const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, config: { ...FAST, holding_interval_real_ms: 40 }, tickMs: 5 });
  l.kick();
  await until(() => me.store.held(manifest.id).size >= 30, 10000);
  l.stop();
  await tick(20);
  const hubHoldings = me.ws.sent.filter((m) => m.type === 'holding');
  assert.ok(hubHoldings.length >= 2, `${hubHoldings.length} holdings to the hub`);
  const last = hubHoldings.at(-1);
  assert.deepEqual(decodeBitfield(last.have, 60), new Array(60).fill(false), 'withdrawn: a holding with no bit set');
  const told = hubHoldings.slice(0, -1).map((m) => decodeBitfield(m.have, 60).filter(Boolean).length);
  assert.ok(told.every((n, i) => i === 0 || n >= told[i - 1]), `holdings only grow: ${told}`);
  for (let i = 1; i < sentAt.length - 1; i++) { // the last one is the withdrawal
    assert.ok(sentAt[i] - sentAt[i - 1] >= 40 - 1, `holdings ${(sentAt[i] - sentAt[i - 1]).toFixed(1)} ms apart`);
  }
  await until(() => got.follower.length === hubHoldings.length - 1); // each holding the hub got but the withdrawal
  assert.ok(got.follower.length >= 2, `the follower got ${got.follower.length} holdings`);
  assert.deepEqual(got.follower.at(-1).m, { type: 'holding', ...hubHoldings.at(-2) }, 'the same bitfield');
  assert.equal(got.other.length, 0, 'a link that did not ask gets none');
});

test('a link that opens during the playback is asked have (once); if it held nothing, its holding with chunks makes it a source', async (t) => {
  installFakes();
  const { manifest, data } = makeManifest({ n: 40 });
  const me = await browserPeer({ data });
  t.after(() => me.net.stop());
  answerLookups(me.net, me.ws, () => ({ reason: 'busy' }));
  const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, config: FAST, tickMs: 5 });
  t.after(() => l.stop());
  me.hub.paused = true; // the hub is slow: what the peer gets is worth taking
  l.kick();
  await tick(30);
  // Another peer starting the track pairs with us (its lookup): the link opens during our playback.
  const held = new Set();
  let far;
  const asked = [];
  me.ws.receive({ type: 'paired', pair_id: 'x-0', peer: 'p-late', track: manifest.id, role: 'seeder' });
  const [mine, theirs] = dcPair();
  mine.label = 'chunks';
  FakePC.instances.at(-1).dispatchEvent(Object.assign(new Event('datachannel'), { channel: mine }));
  far = new ChunkChannel(theirs, { name: 'late', serve: remoteServe(manifest, data, held) });
  far.addEventListener('have', (e) => asked.push(e.detail.track));
  await until(() => asked.length === 1);
  assert.equal(asked[0], manifest.id, 'the new link is asked have');
  await tick(40);
  assert.equal(l.peers.length, 0, 'it holds nothing yet: not a source');
  assert.equal(asked.length, 1, 'asked once in the playback');
  for (let s = 20; s < 40; s++) held.add(s); // it got chunks and tells us (we follow the track on the link)
  far.pushHolding(manifest.id, { chunks: 40, have: encodeBitfield(Array.from({ length: 40 }, (_, i) => held.has(i))) });
  await until(() => l.peers.length === 1);
  me.hub.paused = false;
  await until(() => l.complete, 10000);
  assert.ok(me.stats.bytes.peer > 0, 'it served');
  assert.equal(l.sourcesUsed, 1);
});

test('a hub answering unavailable is left alone for a while: the range goes over HTTP', async (t) => {
  installFakes();
  const { manifest, data } = makeManifest({ n: 6 });
  const me = await browserPeer({ data, hubOpts: { refuse: () => 'unavailable' } });
  t.after(() => me.net.stop());
  answerLookups(me.net, me.ws, () => ({ reason: 'no_candidates' }));
  const api = fakeAPI(data);
  const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, api, config: FAST, tickMs: 5, log: () => {} });
  t.after(() => l.stop());
  l.kick();
  await until(() => l.complete, 10000);
  assert.equal(me.hub.requests.length, 1, 'asked once');
  assert.ok(me.net.hubOpen && !me.net.hubUsable, 'the channel stays open, unused meanwhile');
  assert.equal(me.stats.bytes.http, manifest.size);
  assert.equal(me.stats.bytes.hub, 0);
});

test('P2P without a hub DataChannel: the hub ranges go over HTTP (first copies in full)', async (t) => {
  installFakes();
  const { manifest, data } = makeManifest({ n: 50 });
  const me = await browserPeer({ data, hub: false });
  t.after(() => me.net.stop());
  const lookups = answerLookups(me.net, me.ws, () => ({ reason: 'no_candidates' }));
  const api = fakeAPI(data);
  const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, api, config: FAST, tickMs: 5 });
  t.after(() => l.stop());
  l.kick();
  await until(() => l.complete, 10000);
  assert.equal(me.stats.bytes.http, manifest.size);
  assert.equal(new Set(api.calls).size, api.calls.length, 'each chunk fetched once');
  assert.ok(lookups.length >= 1 && lookups[0].partial === true);
});

test('stop cancels the ranges in flight; TICK_MS is short', async (t) => {
  installFakes();
  const { manifest, data } = makeManifest({ n: 40 });
  const me = await browserPeer({ data, hubOpts: { delayMs: 5 } });
  t.after(() => me.net.stop());
  answerLookups(me.net, me.ws, () => ({ reason: 'no_candidates' }));
  const l = new Loader({ manifest, store: me.store, stats: me.stats, net: me.net, config: FAST, tickMs: 5 });
  l.kick();
  await until(() => me.store.held(manifest.id).size >= 3);
  l.stop();
  const n = me.hub.sent.length;
  await tick(60);
  assert.ok(me.hub.sent.length <= n + 1, 'the hub stopped sending');
  assert.ok(TICK_MS <= 100);
});
