import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net, defaultWsURL, HUB_UNAVAILABLE_MS, MAX_BAD_PEERS } from '../../js/net.js';
import { Loader, ABANDONED } from '../../js/loader.js';
import { encodeChunk } from '../../js/wire.js';
import { ChunkChannel } from '../../js/channel.js';
import { ChunkStore } from '../../js/chunkstore.js';
import { SessionStats } from '../../js/stats.js';
import { makeManifest, dcPair } from './helpers.mjs';

/** A fake WebSocket recording what the page sends. */
class FakeWS extends EventTarget {
  static OPEN = 1;
  static instances = [];
  constructor(url) {
    super();
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeWS.instances.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.dispatchEvent(new Event('open'));
    }, 0);
  }
  send(s) {
    this.sent.push(JSON.parse(s));
  }
  receive(m) {
    this.dispatchEvent(Object.assign(new Event('message'), { data: JSON.stringify(m) }));
  }
  close(code = 1006) {
    this.readyState = 3;
    this.dispatchEvent(Object.assign(new Event('close'), { code, reason: '' }));
  }
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
const T1 = '11111111111111111111111111111111';
const T2 = '22222222222222222222222222222222';

/** A fake RTCPeerConnection: records its instances; tests dispatch 'datachannel' on it. */
class FakePC extends EventTarget {
  static instances = [];
  constructor() {
    super();
    this.connectionState = 'new';
    this.remoteDescription = null;
    FakePC.instances.push(this);
  }
  /** When set, a leecher's channel is open and its far end is handed to onRemote(dc). */
  static onRemote = null;
  createDataChannel() {
    const [dc, far] = dcPair();
    if (FakePC.onRemote) {
      FakePC.onRemote(far);
      return dc;
    }
    dc.readyState = 'connecting'; // never connects here
    return dc;
  }
  async createOffer() {
    return { type: 'offer', sdp: 'v=0' };
  }
  async createAnswer() {
    return { type: 'answer', sdp: 'v=0' };
  }
  async setLocalDescription(d) {
    this.localDescription = d;
  }
  async setRemoteDescription(d) {
    this.remoteDescription = d;
  }
  async addIceCandidate() {}
  close() {
    this.connectionState = 'closed';
  }
}

function setup({ uploadCap = 1, cached = [], uploadIdleMs, rangeTimeoutMs } = {}) {
  globalThis.WebSocket = FakeWS;
  globalThis.RTCPeerConnection = FakePC;
  FakeWS.instances = [];
  FakePC.instances = [];
  FakePC.onRemote = null;
  const store = new ChunkStore();
  const stats = new SessionStats();
  const net = new Net({ url: 'ws://x/ws', store, stats, uploadCap, cached: () => cached, statsIntervalMs: 10, uploadIdleMs, rangeTimeoutMs });
  return { store, stats, net };
}

/** Connects net to a fake hub and sends welcome; returns the fake WebSocket. */
async function welcomed(net, uploadCap = 1) {
  net.connect();
  await tick();
  const ws = FakeWS.instances.at(-1);
  ws.receive({ type: 'welcome', peer_id: 'p-1', upload_cap: uploadCap });
  return ws;
}

/** Until cond() holds, at most ms. */
async function until(cond, ms = 2000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await tick(5);
  }
}

test('defaultWsURL follows the page scheme', () => {
  assert.equal(defaultWsURL({ protocol: 'http:', host: 'h:1' }), 'ws://h:1/ws');
  assert.equal(defaultWsURL({ protocol: 'https:', host: 'h' }), 'wss://h/ws');
});

test('hello announces cached and complete tracks; stats deltas are sent after welcome', async (t) => {
  const { store, stats, net } = setup({ cached: [T1, 'not-an-id'] });
  t.after(() => net.stop());
  store.setTotal(T2, 1);
  store.put(T2, 0, new Uint8Array(3), 'http');
  net.connect();
  await tick();
  const ws = FakeWS.instances[0];
  assert.deepEqual(ws.sent[0], { type: 'hello', version: 1, cached: [T1, T2], upload_cap: 1 });
  ws.receive({ type: 'welcome', peer_id: 'p-1', upload_cap: 1 });
  stats.received('http', 100);
  await tick(30);
  const st = ws.sent.filter((m) => m.type === 'stats');
  assert.equal(st.length, 1, 'one stats message for one change');
  assert.equal(st[0].hub_bytes, 100);
});

test('can_upload is answered yes only for complete tracks within the upload cap', async (t) => {
  const { store, net } = setup({ uploadCap: 1 });
  t.after(() => net.stop());
  net.connect();
  await tick();
  const ws = FakeWS.instances[0];
  ws.receive({ type: 'welcome', peer_id: 'p-1', upload_cap: 1 });
  store.setTotal(T1, 1);
  store.put(T1, 0, new Uint8Array(3), 'http');
  ws.receive({ type: 'can_upload', track: T1, lookup_id: 'l-1' });
  ws.receive({ type: 'can_upload', track: T2, lookup_id: 'l-2' });
  net.links.set('x-1', { role: 'seeder', track: T1, open: true, close() {} }); // one upload slot in use
  ws.receive({ type: 'can_upload', track: T1, lookup_id: 'l-3' });
  await tick();
  assert.deepEqual(ws.sent.filter((m) => m.type === 'upload_reply'), [
    { type: 'upload_reply', lookup_id: 'l-1', ok: true },
    { type: 'upload_reply', lookup_id: 'l-2', ok: false },
    { type: 'upload_reply', lookup_id: 'l-3', ok: false },
  ]);
  net.links.clear();
});

test('lookups: one pending per track, retried later, never for complete tracks', async (t) => {
  const { store, net } = setup();
  t.after(() => net.stop());
  net.connect();
  await tick();
  const ws = FakeWS.instances[0];
  net.want(T1);
  assert.equal(ws.sent.filter((m) => m.type === 'lookup').length, 0, 'no lookup before welcome');
  ws.receive({ type: 'welcome', peer_id: 'p-1', upload_cap: 4 });
  net.want(T1);
  net.want(T1);
  assert.deepEqual(ws.sent.filter((m) => m.type === 'lookup'), [{ type: 'lookup', track: T1 }]);
  assert.ok(net.peerPending(T1));
  ws.receive({ type: 'lookup_result', track: T1, peer_id: '', reason: 'no_candidates' });
  assert.ok(!net.peerPending(T1));
  net.want(T1);
  assert.equal(ws.sent.filter((m) => m.type === 'lookup').length, 1, 'not retried at once');
  store.setTotal(T2, 1);
  store.put(T2, 0, new Uint8Array(1), 'http');
  net.want(T2);
  assert.equal(ws.sent.filter((m) => m.type === 'lookup').length, 1, 'complete tracks are not looked up');
  assert.deepEqual(ws.sent.filter((m) => m.type === 'completed'), [{ type: 'completed', track: T2 }]);
});

test('a closed WebSocket reconnects with backoff', async (t) => {
  const { net } = setup();
  t.after(() => net.stop());
  const states = [];
  net.addEventListener('state', (e) => states.push(e.detail.state));
  net.connect();
  await tick();
  FakeWS.instances[0].close(1011);
  assert.equal(states.at(-1), 'reconnecting');
  await tick(900); // first delay: 0.5 s ± 25 %
  assert.equal(FakeWS.instances.length, 2);
  assert.equal(FakeWS.instances[1].sent[0].type, 'hello');
});

test('the hub ping is answered with pong', async (t) => {
  const { net } = setup();
  t.after(() => net.stop());
  const ws = await welcomed(net);
  ws.receive({ type: 'ping' });
  ws.receive({ type: 'ping' });
  await tick();
  assert.deepEqual(ws.sent.filter((m) => m.type === 'pong'), [{ type: 'pong' }, { type: 'pong' }]);
  ws.receive({ type: 'some_future_type' }); // unknown types are ignored, not answered
  await tick();
  assert.equal(ws.sent.at(-1).type, 'pong');
});

test('rate_limited pauses lookups and stats, then they resume', async (t) => {
  const { stats, net } = setup();
  t.after(() => net.stop());
  const ws = await welcomed(net);
  net.want(T1);
  assert.equal(ws.sent.filter((m) => m.type === 'lookup').length, 1);
  ws.receive({ type: 'error', code: 'rate_limited', message: 'more than 50 messages/s', ref: '' });
  assert.ok(!net.peerPending(T1), 'a possibly dropped lookup is no longer awaited');
  stats.received('hub', 10);
  await tick(40);
  assert.equal(ws.sent.filter((m) => m.type === 'stats').length, 0, 'no stats while rate limited');
  net.lookups.get(T1).last = 0; // the lookup retry delay has passed; the rate-limit pause has not
  net.want(T1);
  assert.equal(ws.sent.filter((m) => m.type === 'lookup').length, 1, 'no lookup while rate limited');
  net.quietUntil = Date.now(); // the pause is over
  await tick(40);
  const st = ws.sent.filter((m) => m.type === 'stats');
  assert.equal(st.length, 1, 'the accumulated deltas are sent afterwards');
  assert.equal(st[0].hub_bytes, 10);
  net.want(T1);
  assert.equal(ws.sent.filter((m) => m.type === 'lookup').length, 2, 'lookups resume');
});

test('a rate_limited signal closes the links still connecting', async (t) => {
  const { net } = setup();
  t.after(() => net.stop());
  const ws = await welcomed(net);
  ws.receive({ type: 'paired', pair_id: 'x-1', peer: 'p-2', track: T1, role: 'leecher' });
  await tick();
  assert.equal(net.links.size, 1);
  ws.receive({ type: 'error', code: 'rate_limited', message: 'pair "x-1" relayed 256 signals already', ref: 'signal' });
  await tick();
  assert.equal(net.links.size, 0, 'the connecting link is dropped');
  assert.deepEqual(ws.sent.filter((m) => m.type === 'unpair'), [{ type: 'unpair', pair_id: 'x-1' }]);
});

test('a hub answering unavailable is left alone for a while (the page falls back to HTTP)', async (t) => {
  const { manifest } = makeManifest({ n: 4 });
  const { net } = setup();
  t.after(() => net.stop());
  await welcomed(net);
  const [local, remote] = dcPair();
  net.hubChannel = new ChunkChannel(local, { name: 'hub' });
  // The hub side refuses every request as a hub with its store down does.
  remote.addEventListener('message', (e) => {
    const m = JSON.parse(e.data);
    if (m.type === 'request') remote.send(JSON.stringify({ type: 'error', id: m.id, code: 'unavailable', message: 'track store unavailable' }));
  });
  const hub = net.sources(manifest.id).find((s) => s.name === 'hub');
  assert.ok(hub.available() && net.hubUsable);
  await assert.rejects(hub.request(manifest.id, 0, 2, () => {}), (err) => err.code === 'unavailable');
  assert.ok(net.hubOpen, 'the channel stays open');
  assert.ok(!net.hubUsable && !hub.available(), 'the hub is not asked for chunks meanwhile');
  assert.ok(net.hubUnavailableUntil - Date.now() <= HUB_UNAVAILABLE_MS);
  net.hubUnavailableUntil = Date.now() - 1; // time passes
  assert.ok(hub.available() && net.hubUsable, 'then it is used again');
});

/** Makes net hold manifest's track completely and pairs it as seeder with a leecher; returns the leecher's channel. */
async function seederPair(net, ws, store, manifest, data, pairId = 'x-9') {
  store.setTotal(manifest.id, manifest.chunks.length);
  data.forEach((b, seq) => store.put(manifest.id, seq, b, 'hub'));
  ws.receive({ type: 'paired', pair_id: pairId, peer: 'p-2', track: manifest.id, role: 'seeder' });
  await tick();
  const [mine, theirs] = dcPair();
  mine.label = 'chunks';
  FakePC.instances.at(-1).dispatchEvent(Object.assign(new Event('datachannel'), { channel: mine }));
  await tick();
  return new ChunkChannel(theirs, { name: 'leecher' });
}

test('a seeder sends upload_done once the whole track went to the leecher, and frees its slot', async (t) => {
  const { manifest, data } = makeManifest({ n: 6 });
  const { store, stats, net } = setup({ uploadCap: 1 });
  t.after(() => net.stop());
  const ws = await welcomed(net);
  const leecher = await seederPair(net, ws, store, manifest, data);
  ws.receive({ type: 'can_upload', track: manifest.id, lookup_id: 'l-1' });
  const got = new Set();
  await leecher.request(manifest.id, 0, 3, (seq) => got.add(seq));
  await tick();
  assert.equal(ws.sent.filter((m) => m.type === 'upload_done').length, 0, 'not done after half the track');
  await leecher.request(manifest.id, 3, 6, (seq) => got.add(seq));
  await until(() => ws.sent.some((m) => m.type === 'upload_done'));
  assert.equal(got.size, 6);
  assert.equal(stats.uploaded, manifest.size);
  await leecher.request(manifest.id, 0, 2, () => {}); // a seek after the end is still served
  ws.receive({ type: 'can_upload', track: manifest.id, lookup_id: 'l-2' });
  await tick();
  assert.deepEqual(ws.sent.filter((m) => m.type === 'upload_done'), [{ type: 'upload_done', pair_id: 'x-9' }], 'exactly once');
  assert.deepEqual(ws.sent.filter((m) => m.type === 'upload_reply').map((m) => m.ok), [false, true],
    'the slot is busy during the upload, free after it');
});

test('a seeder whose leecher stops requesting sends upload_done after the idle time', async (t) => {
  const { manifest, data } = makeManifest({ n: 6 });
  const { store, net } = setup({ uploadIdleMs: 60 });
  t.after(() => net.stop());
  const ws = await welcomed(net);
  const leecher = await seederPair(net, ws, store, manifest, data);
  await leecher.request(manifest.id, 0, 2, () => {});
  await tick(20);
  assert.equal(ws.sent.filter((m) => m.type === 'upload_done').length, 0);
  await until(() => ws.sent.some((m) => m.type === 'upload_done'));
  assert.deepEqual(ws.sent.filter((m) => m.type === 'upload_done'), [{ type: 'upload_done', pair_id: 'x-9' }]);
});

/** Chunk serving hooks of a seeder holding manifest's track; mangle(seq, bytes) may alter what it sends. */
function serving(manifest, data, mangle = (seq, b) => b) {
  return {
    canServe: (t) => t === manifest.id,
    chunkCount: () => manifest.chunks.length,
    getChunk: (t, seq) => mangle(seq, data[seq].slice()),
    uploaded: () => {},
  };
}

/**
 * The hub pairs net as leecher with peer for track; the seeder end of the
 * (open) channel is given to far(dc), by default a ChunkChannel serving serve.
 * Resolves to the PeerLink.
 */
async function leecherLink(net, ws, { peer, pairId, track, serve, far }) {
  FakePC.onRemote = far || ((dc) => new ChunkChannel(dc, { name: `seeder ${peer}`, serve }));
  ws.receive({ type: 'paired', pair_id: pairId, peer, track, role: 'leecher' });
  FakePC.onRemote = null;
  await tick();
  const link = net.links.get(pairId);
  assert.ok(link && link.open, `link ${pairId} open`);
  return link;
}

test('a seeder sending chunks that fail SHA-256 is abandoned, reported once and remembered; the good peer goes on', async (t) => {
  const { manifest, data } = makeManifest({ n: 40 });
  const { store, stats, net } = setup();
  t.after(() => net.stop());
  const ws = await welcomed(net);
  await leecherLink(net, ws, { peer: 'p-bad', pairId: 'x-1', track: manifest.id,
    serve: serving(manifest, data, (seq, b) => { b[b.length >> 1] ^= 0xff; return b; }) });
  await leecherLink(net, ws, { peer: 'p-good', pairId: 'x-2', track: manifest.id, serve: serving(manifest, data) });
  const [local, remote] = dcPair();
  net.hubChannel = new ChunkChannel(local, { name: 'hub' });
  new ChunkChannel(remote, { name: 'hub side', serve: serving(manifest, data) });
  const logs = [];
  const loader = new Loader({ manifest, store, stats, sources: net.sources(manifest.id), position: () => 0, log: (m) => logs.push(m) });
  t.after(() => loader.stop());
  net.addEventListener('change', () => loader.kick());
  loader.kick();
  await until(() => loader.complete);

  const reports = ws.sent.filter((m) => m.type === 'report');
  assert.deepEqual(reports, [{ type: 'report', peer: 'p-bad', track: manifest.id, reason: 'hash_mismatch' }], 'one report for many bad chunks');
  const unpairBad = ws.sent.findIndex((m) => m.type === 'unpair' && m.pair_id === 'x-1');
  assert.ok(unpairBad > ws.sent.indexOf(reports[0]), 'reported, then the pair is ended (before any new lookup)');
  assert.ok(!net.links.has('x-1'));
  assert.deepEqual([...net.badPeers], [['p-bad', 'hash_mismatch']]);
  assert.ok(stats.badChunks >= 1);
  assert.equal(stats.reportsSent, 1);
  assert.equal(stats.peersAbandoned, 1);
  assert.equal(loader.backoff.get('peer'), undefined, 'the good peer is not backed off for the bad one');
  assert.ok(stats.bytes.peer > 0, 'the good peer served');
  assert.equal(stats.bytes.peer + stats.bytes.hub, manifest.size);
  for (let seq = 0; seq < data.length; seq++) assert.deepEqual(store.get(manifest.id, seq), data[seq]);

  // The hub pairs us with the bad seeder again (another track): ended at once, unused, not reported again.
  const pcs = FakePC.instances.length;
  ws.receive({ type: 'paired', pair_id: 'x-3', peer: 'p-bad', track: T1, role: 'leecher' });
  await tick();
  assert.ok(!net.links.has('x-3'));
  assert.equal(FakePC.instances.length, pcs, 'no PeerConnection for it');
  assert.deepEqual(ws.sent.filter((m) => m.type === 'unpair' && m.pair_id === 'x-3'), [{ type: 'unpair', pair_id: 'x-3' }]);
  assert.equal(ws.sent.filter((m) => m.type === 'report').length, 1);
  assert.equal(stats.peersAbandoned, 2);
  // As seeder, a known bad peer is still served (the hub decides who leeches).
  ws.receive({ type: 'paired', pair_id: 'x-4', peer: 'p-bad', track: T1, role: 'seeder' });
  assert.ok(net.links.has('x-4'));
});

test('a seeder sending a message that breaks the protocol is abandoned (bad_message); a leecher doing so is not', async (t) => {
  const { manifest, data } = makeManifest({ n: 6 });
  const { store, stats, net } = setup();
  t.after(() => net.stop());
  const ws = await welcomed(net);
  await leecherLink(net, ws, { peer: 'p-big', pairId: 'x-1', track: manifest.id, far: (dc) => {
    dc.addEventListener('message', (e) => {
      const m = JSON.parse(e.data);
      if (m.type !== 'request') return;
      const big = new Uint8Array(70000); // a chunk message over the 64 KiB payload limit
      big.set(encodeChunk(manifest.id, m.from, data[m.from]).subarray(0, 21));
      dc.send(big);
    });
  } });
  const [peer] = net.sources(manifest.id);
  const got = [];
  await assert.rejects(peer.request(manifest.id, 0, 6, (seq) => got.push(seq)), (err) => err.code === ABANDONED);
  assert.deepEqual(got, []);
  assert.deepEqual(ws.sent.filter((m) => m.type === 'report'), [{ type: 'report', peer: 'p-big', track: manifest.id, reason: 'bad_message' }]);
  assert.ok(!net.links.has('x-1'));
  assert.equal(net.badPeers.get('p-big'), 'bad_message');
  assert.equal(stats.reportsSent, 1);

  // The same garbage from a leecher we seed: the hub takes no report from a seeder, the link stays.
  store.setTotal(manifest.id, data.length);
  data.forEach((b, seq) => store.put(manifest.id, seq, b, 'hub'));
  ws.receive({ type: 'paired', pair_id: 'x-2', peer: 'p-l', track: manifest.id, role: 'seeder' });
  await tick();
  const [mine, theirs] = dcPair();
  mine.label = 'chunks';
  FakePC.instances.at(-1).dispatchEvent(Object.assign(new Event('datachannel'), { channel: mine }));
  theirs.send('{"type":');
  await tick(10);
  assert.ok(net.links.get('x-2').open);
  assert.equal(stats.reportsSent, 1);
});

test('a seeder that delivers nothing for rangeTimeoutMs is abandoned (timeout); a slow steady one is not', async (t) => {
  const { manifest, data } = makeManifest({ n: 10 });
  const { stats, net } = setup({ rangeTimeoutMs: 150 });
  t.after(() => net.stop());
  const ws = await welcomed(net);
  // Steady: one chunk every 20 ms, the range lasting longer than the timeout.
  await leecherLink(net, ws, { peer: 'p-slow', pairId: 'x-1', track: manifest.id,
    serve: serving(manifest, data), far: (dc) => new ChunkChannel(dc, { name: 'slow', serve: {
      ...serving(manifest, data), getChunk: (tr, seq) => new Promise((r) => setTimeout(() => r(data[seq]), 20)) } }) });
  const [peer] = net.sources(manifest.id);
  const t0 = Date.now();
  let n = 0;
  await peer.request(manifest.id, 0, 10, () => { n++; return null; });
  assert.equal(n, 10);
  assert.ok(Date.now() - t0 > 150, 'the range outlasted the timeout');
  assert.equal(ws.sent.filter((m) => m.type === 'report').length, 0);
  assert.ok(net.links.has('x-1'));

  // Silent: accepts the request, never answers.
  await leecherLink(net, ws, { peer: 'p-silent', pairId: 'x-2', track: T2, far: () => {} });
  net.addEventListener('change', () => net.want(T2)); // as the loader does: with no peer left, look one up
  const start = Date.now();
  await assert.rejects(peer.request(T2, 0, 4, () => null), (err) => err.code === ABANDONED && /timeout/.test(err.message));
  assert.ok(Date.now() - start >= 140, 'not before the timeout');
  assert.deepEqual(ws.sent.filter((m) => m.type === 'report'), [{ type: 'report', peer: 'p-silent', track: T2, reason: 'timeout' }]);
  const at = (type) => ws.sent.findIndex((m) => m.type === type && (m.track === T2 || m.pair_id === 'x-2'));
  assert.ok(at('lookup') > at('report') && at('unpair') > at('report'),
    'the hub gets the report before the unpair and the new lookup (which must not offer the same seeder)');
  assert.deepEqual(ws.sent.filter((m) => m.type === 'unpair').map((m) => m.pair_id), ['x-2']);
  assert.ok(net.links.has('x-1') && !net.links.has('x-2'));
  assert.equal(stats.peersAbandoned, 1);
});

test('bad peers are bounded (oldest forgotten) and each (peer, track) is reported once', async (t) => {
  const { stats, net } = setup();
  t.after(() => net.stop());
  const ws = await welcomed(net);
  for (let i = 0; i < MAX_BAD_PEERS + 6; i++) assert.ok(net.markBad(`p-${i}`, T1, 'timeout'));
  assert.equal(net.badPeers.size, MAX_BAD_PEERS);
  assert.ok(!net.badPeers.has('p-5') && net.badPeers.has('p-6'), 'the oldest are forgotten');
  assert.ok(!net.markBad('p-10', T1, 'hash_mismatch'), 'reported already for this track');
  assert.equal(net.badPeers.get('p-10'), 'hash_mismatch');
  assert.ok(net.markBad('p-10', T2, 'hash_mismatch'), 'another track is another report');
  assert.ok(!net.markBad('p-x', T1, 'because'), 'unknown reason');
  assert.ok(!net.markBad('', T1, 'timeout'));
  assert.ok(!net.markBad('hub', T1, 'timeout'));
  assert.ok(!net.markBad('p'.repeat(65), T1, 'timeout'));
  assert.ok(!net.markBad('p-y', 'not-a-track', 'timeout'));
  assert.equal(ws.sent.filter((m) => m.type === 'report').length, MAX_BAD_PEERS + 7);
  assert.equal(stats.reportsSent, MAX_BAD_PEERS + 7);
  assert.ok(net.reported.size <= 4 * MAX_BAD_PEERS);
  ws.receive({ type: 'error', code: 'not_paired', message: 'no recent pair', ref: 'report' }); // harmless
  await tick();
  assert.ok(!net.stopped && net.peerId === 'p-1');
});
