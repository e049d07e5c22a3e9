import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net, defaultWsURL, HUB_UNAVAILABLE_MS } from '../../js/net.js';
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
  createDataChannel() {
    const [dc] = dcPair();
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

function setup({ uploadCap = 1, cached = [], uploadIdleMs } = {}) {
  globalThis.WebSocket = FakeWS;
  globalThis.RTCPeerConnection = FakePC;
  FakeWS.instances = [];
  FakePC.instances = [];
  const store = new ChunkStore();
  const stats = new SessionStats();
  const net = new Net({ url: 'ws://x/ws', store, stats, uploadCap, cached: () => cached, statsIntervalMs: 10, uploadIdleMs });
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
