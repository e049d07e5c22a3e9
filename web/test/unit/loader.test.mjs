import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Loader, httpSource, ABANDONED } from '../../js/loader.js';
import { ChunkStore } from '../../js/chunkstore.js';
import { SessionStats } from '../../js/stats.js';
import { chunkStartSec } from '../../js/timeline.js';
import { makeManifest } from './helpers.mjs';

/** A fake source serving data, recording requested ranges; corrupt(seq) flips a byte. */
function fakeSource(name, data, { maxRun = 4, slots = 1, corrupt = () => false, fail = () => false, statsName = name } = {}) {
  const src = {
    name, statsName, maxRun, requests: [], active: 0,
    available: () => true,
    slots: () => slots - src.active,
    async request(track, from, to, onChunk) {
      src.requests.push([from, to]);
      src.active++;
      try {
        await new Promise((r) => setTimeout(r, 1));
        if (fail(from)) throw new Error('boom');
        for (let s = from; s < to; s++) {
          const b = data[s].slice();
          if (corrupt(s)) b[10] ^= 0xff;
          await onChunk(s, b);
        }
      } finally {
        src.active--;
      }
    },
  };
  return src;
}

function waitFor(cond, ms = 3000) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (cond()) resolve();
      else if (Date.now() - t0 > ms) reject(new Error('timeout'));
      else setTimeout(tick, 2);
    };
    tick();
  });
}

test('Loader downloads every chunk, playhead first, counting bytes by source', async (t) => {
  const { manifest, data } = makeManifest({ n: 12 });
  const store = new ChunkStore();
  const stats = new SessionStats();
  const src = fakeSource('hub', data, { maxRun: 4 });
  const pos = chunkStartSec(manifest, 6) + 0.1;
  const l = new Loader({ manifest, store, stats, sources: [src], position: () => pos });
  t.after(() => l.stop());
  l.kick();
  await waitFor(() => l.complete);
  assert.deepEqual(src.requests[0], [6, 10], 'first range starts at the playhead');
  assert.deepEqual(src.requests.slice(1), [[10, 12], [0, 4], [4, 6]]);
  assert.equal(stats.bytes.hub, manifest.size);
  assert.equal(stats.badChunks, 0);
  for (let s = 0; s < 12; s++) assert.deepEqual(store.get(manifest.id, s), data[s]);
  l.stop();
});

test('Loader rejects chunks failing SHA-256 and fetches them again elsewhere', async (t) => {
  const { manifest, data } = makeManifest({ n: 6 });
  const store = new ChunkStore();
  const stats = new SessionStats();
  const evil = fakeSource('peer', data, { maxRun: 6, corrupt: (s) => s % 2 === 0 });
  const good = fakeSource('hub', data, { maxRun: 6 });
  const logs = [];
  const l = new Loader({ manifest, store, stats, sources: [evil, good], position: () => 0, log: (m) => logs.push(m) });
  t.after(() => l.stop());
  l.kick();
  await waitFor(() => l.complete);
  assert.deepEqual(evil.requests, [[0, 6]], 'a source that sent bad chunks is backed off');
  assert.deepEqual(good.requests, [[0, 1], [2, 3], [4, 5]]);
  assert.equal(stats.badChunks, 3);
  assert.equal(stats.bytes.peer, data[1].length + data[3].length + data[5].length);
  assert.equal(stats.bytes.hub, data[0].length + data[2].length + data[4].length);
  assert.ok(logs.some((m) => /rejected chunk 0: sha256/.test(m)));
  for (let s = 0; s < 6; s++) assert.equal(store.source(manifest.id, s), s % 2 === 0 ? 'hub' : 'peer');
  l.stop();
});

test('Loader backs off a failing source and uses the next one', async (t) => {
  const { manifest, data } = makeManifest({ n: 4 });
  const store = new ChunkStore();
  const stats = new SessionStats();
  const bad = fakeSource('hub', data, { fail: () => true });
  const http = fakeSource('http', data, { maxRun: 1, slots: 2 });
  const l = new Loader({ manifest, store, stats, sources: [bad, http], position: () => 0, log: () => {} });
  t.after(() => l.stop());
  l.kick();
  await waitFor(() => l.complete);
  assert.equal(bad.requests.length, 1, 'not retried during the backoff');
  assert.equal(stats.bytes.http, manifest.size);
  l.stop();
});

test('Loader.limitSec restricts a prefetch to the start of the track', async (t) => {
  const { manifest, data } = makeManifest({ n: 20 });
  const store = new ChunkStore();
  const src = fakeSource('http', data, { maxRun: 1, slots: 3 });
  const l = new Loader({ manifest, store, stats: new SessionStats(), sources: [src], position: () => 0 });
  l.limitSec = 3;
  t.after(() => l.stop());
  l.kick();
  await waitFor(() => store.held(manifest.id).size === 4 && src.active === 0);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual([...store.held(manifest.id).keys()].sort((a, b) => a - b), [0, 1, 2, 3]);
  l.stop();
});

test('httpSource fetches one chunk per request, up to parallel at once', async () => {
  const calls = [];
  const api = { chunk: async (track, seq) => { calls.push(seq); return Uint8Array.of(seq); } };
  const src = httpSource(api, { parallel: 2 });
  assert.equal(src.maxRun, 1);
  assert.equal(src.slots(), 2);
  const got = [];
  const p = src.request('t', 3, 5, (seq, b) => got.push([seq, b[0]]));
  assert.equal(src.slots(), 1);
  await p;
  assert.deepEqual(got, [[3, 3], [4, 4]]);
  assert.equal(src.slots(), 2);
});

test('under the emergency buffer a rescuing source refetches chunks a slow source holds', async (t) => {
  const { manifest, data } = makeManifest({ n: 10 });
  const store = new ChunkStore();
  const stats = new SessionStats();
  let release;
  const stuck = new Promise((r) => { release = r; });
  const slowPeer = {
    name: 'peer', statsName: 'peer', maxRun: 10, requests: [], active: 0,
    available: () => true,
    slots: () => 1 - slowPeer.active,
    async request(track, from, to, onChunk) {
      slowPeer.requests.push([from, to]);
      slowPeer.active++;
      await stuck;
      for (let s = from; s < to; s++) await onChunk(s, data[s]);
      slowPeer.active--;
    },
  };
  const hub = fakeSource('hub', data, { maxRun: 8 });
  hub.rescues = true;
  let ahead = 10;
  const l = new Loader({ manifest, store, stats, sources: [slowPeer, hub], position: () => 0, bufferedAhead: () => ahead });
  t.after(() => { l.stop(); release(); });
  l.kick();
  assert.deepEqual(slowPeer.requests, [[0, 10]]);
  assert.deepEqual(hub.requests, [], 'no rescue while the buffer is healthy');
  ahead = 1;
  l.kick();
  await waitFor(() => store.has(manifest.id, 0) && hub.active === 0);
  assert.deepEqual(hub.requests, [[0, 4]], 'the urgent chunks (within 3 s) from the hub');
  assert.equal(l.rescues, 4);
  release();
  await waitFor(() => l.complete);
  assert.equal(stats.bytes.hub, data.slice(0, 4).reduce((n, d) => n + d.length, 0), 'duplicates are not counted');
  assert.equal(stats.bytes.peer, data.slice(4).reduce((n, d) => n + d.length, 0));
});

test('onChunk resolves to why a chunk failed verification; a source that isolates faults is not backed off', async (t) => {
  const { manifest, data } = makeManifest({ n: 8 });
  const store = new ChunkStore();
  const stats = new SessionStats();
  const verdicts = [];
  let calls = 0;
  // A multi-link source: its first range comes from a bad link, which it drops (ABANDONED); the next ones are fine.
  const peers = {
    name: 'peer', statsName: 'peer', maxRun: 4, isolatesFaults: true, requests: [], active: 0,
    available: () => true,
    slots: () => 1 - peers.active,
    async request(track, from, to, onChunk) {
      peers.requests.push([from, to]);
      peers.active++;
      try {
        await new Promise((r) => setTimeout(r, 1));
        if (calls++ === 0) {
          const b = data[from].slice();
          b[10] ^= 0xff;
          verdicts.push(await onChunk(from, b));
          throw Object.assign(new Error('bad link dropped'), { code: ABANDONED });
        }
        for (let s = from; s < to; s++) verdicts.push(await onChunk(s, data[s]));
      } finally {
        peers.active--;
      }
    },
  };
  const l = new Loader({ manifest, store, stats, sources: [peers], position: () => 0, log: () => {} });
  t.after(() => l.stop());
  l.kick();
  await waitFor(() => l.complete);
  assert.match(verdicts[0], /chunk 0: sha256/);
  assert.ok(verdicts.slice(1).every((v) => v === null), 'good chunks resolve to null');
  assert.equal(stats.badChunks, 1);
  assert.equal(l.backoff.get('peer'), undefined, 'neither the bad chunk nor the abandoned range backed the source off');
  assert.deepEqual(peers.requests.slice(0, 2), [[0, 4], [0, 4]], 'the range is asked again at once');
  assert.equal(stats.bytes.peer, manifest.size);
});

test('without isolatesFaults, an ABANDONED range still backs the source off', async (t) => {
  const { manifest, data } = makeManifest({ n: 4 });
  const store = new ChunkStore();
  const stats = new SessionStats();
  const flaky = fakeSource('peer', data, { fail: () => true });
  flaky.request = async (track, from) => {
    flaky.requests.push([from]);
    throw Object.assign(new Error('dropped'), { code: ABANDONED });
  };
  const http = fakeSource('http', data, { maxRun: 1, slots: 2 });
  const l = new Loader({ manifest, store, stats, sources: [flaky, http], position: () => 0, log: () => {} });
  t.after(() => l.stop());
  l.kick();
  await waitFor(() => l.complete);
  assert.equal(flaky.requests.length, 1);
  assert.ok(l.backoff.get('peer').failures >= 1);
});
