import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net, defaultWsURL, MAX_BAD_PEERS, MAX_PENDING_LOOKUPS, resultPairs, viaRelay } from '../../js/net.js';
import { encodeChunk, encodeBitfield, decodeBitfield } from '../../js/wire.js';
import { ChunkChannel } from '../../js/channel.js';
import { ChunkStore } from '../../js/chunkstore.js';
import { SessionStats } from '../../js/stats.js';
import { makeManifest, dcPair, FakeWS, FakePC, installFakes, tick, until } from './helpers.mjs';
import { leecherLink, remoteServe, seqs } from './swarmhelpers.mjs';

const T1 = '11111111111111111111111111111111';
const T2 = '22222222222222222222222222222222';

function setup({ uploadCap = 1, cached = [], uploadIdleMs } = {}) {
  installFakes();
  const store = new ChunkStore();
  const stats = new SessionStats();
  const net = new Net({ url: 'ws://x/ws', store, stats, uploadCap, cached: () => cached, statsIntervalMs: 10, uploadIdleMs });
  return { store, stats, net };
}

/** Connects net to a fake hub and sends welcome; returns the fake WebSocket. */
async function welcomed(net, uploadCap = 1) {
  net.connect();
  await until(() => FakeWS.instances.length > 0 && FakeWS.instances.at(-1).sent.length > 0);
  const ws = FakeWS.instances.at(-1);
  ws.receive({ type: 'welcome', peer_id: 'p-1', upload_cap: uploadCap });
  return ws;
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

test('can_upload: yes when at least one chunk is held (partial too) and an upload slot is free', async (t) => {
  const { store, net } = setup({ uploadCap: 1 });
  t.after(() => net.stop());
  const ws = await welcomed(net);
  store.setTotal(T1, 1);
  store.put(T1, 0, new Uint8Array(3), 'http');
  store.setTotal(T2, 10);
  store.put(T2, 4, new Uint8Array(3), 'http'); // one chunk of ten
  ws.receive({ type: 'can_upload', track: T1, lookup_id: 'l-1' });
  ws.receive({ type: 'can_upload', track: T2, lookup_id: 'l-2' });
  ws.receive({ type: 'can_upload', track: 'f'.repeat(32), lookup_id: 'l-3' });
  ws.receive({ type: 'paired', pair_id: 'x-1', peer: 'p-2', track: T1, role: 'seeder' }); // the hub counts this upload: our one slot
  ws.receive({ type: 'can_upload', track: T1, lookup_id: 'l-4' });
  await tick();
  assert.deepEqual(ws.sent.filter((m) => m.type === 'upload_reply'), [
    { type: 'upload_reply', lookup_id: 'l-1', ok: true },
    { type: 'upload_reply', lookup_id: 'l-2', ok: true },
    { type: 'upload_reply', lookup_id: 'l-3', ok: false },
    { type: 'upload_reply', lookup_id: 'l-4', ok: false },
  ]);
});

test('have is answered ok for a complete track, with the bitfield of a partial one, nothing without a chunk or a slot', async (t) => {
  const { store, net } = setup({ uploadCap: 1 });
  t.after(() => net.stop());
  const ws = await welcomed(net);
  store.setTotal(T1, 2);
  store.put(T1, 0, new Uint8Array(3), 'hub');
  store.put(T1, 1, new Uint8Array(3), 'hub');
  store.setTotal(T2, 11);
  for (const seq of [0, 1, 2, 9]) store.put(T2, seq, new Uint8Array(3), 'hub');
  assert.deepEqual(net.haveReply(T1, 'p-2'), { ok: true });
  const partial = net.haveReply(T2, 'p-2');
  assert.deepEqual(partial, { ok: false, chunks: 11, have: encodeBitfield([true, true, true, false, false, false, false, false, false, true, false]) });
  assert.equal(partial.have, '4EA=');
  assert.deepEqual(decodeBitfield(partial.have, 11), [true, true, true, false, false, false, false, false, false, true, false]);
  assert.deepEqual(net.haveReply('f'.repeat(32), 'p-2'), { ok: false }, 'nothing held');
  // Over a link: the remote asks have.
  const asker = await new Promise((resolve) => {
    ws.receive({ type: 'paired', pair_id: 'x-1', peer: 'p-2', track: T2, role: 'seeder' });
    const [mine, theirs] = dcPair();
    mine.label = 'chunks';
    FakePC.instances.at(-1).dispatchEvent(Object.assign(new Event('datachannel'), { channel: mine }));
    resolve(new ChunkChannel(theirs, { name: 'asker' }));
  });
  const replies = [];
  asker.addEventListener('have_reply', (e) => replies.push(e.detail));
  asker.sendText('have', { track: T2 });
  await until(() => replies.length === 1);
  assert.deepEqual(replies[0], { type: 'have_reply', track: T2, ok: false, chunks: 11, have: '4EA=' });
  // The slot is p-2's (the hub paired it): another remote gets nothing while it holds it.
  assert.deepEqual(net.haveReply(T2, 'p-3'), { ok: false }, 'no slot for p-3');
  assert.ok(net.haveReply(T2, 'p-2').have, 'p-2 keeps its slot');
});

test('a partial holder serves the chunks it holds and skips the others; the leecher is told holding updates', async (t) => {
  const { manifest, data } = makeManifest({ n: 12 });
  const { store, net } = setup({ uploadCap: 2 });
  t.after(() => net.stop());
  const ws = await welcomed(net, 2);
  store.setTotal(manifest.id, 12);
  for (const seq of [0, 1, 5]) store.put(manifest.id, seq, data[seq], 'hub');
  ws.receive({ type: 'paired', pair_id: 'x-1', peer: 'p-2', track: manifest.id, role: 'seeder' });
  const [mine, theirs] = dcPair();
  mine.label = 'chunks';
  FakePC.instances.at(-1).dispatchEvent(Object.assign(new Event('datachannel'), { channel: mine }));
  const leecher = new ChunkChannel(theirs, { name: 'leecher' });
  const holdings = [];
  leecher.addEventListener('holding', (e) => holdings.push(e.detail));
  const got = [];
  await leecher.request(manifest.id, 0, 12, (seq) => got.push(seq));
  assert.deepEqual(got, [0, 1, 5]);
  net.holding(manifest.id, [true, true, true]);
  await tick(10);
  assert.equal(holdings.length, 0, 'it did not ask have: no holding on its channel');
  assert.deepEqual(ws.sent.filter((m) => m.type === 'holding').at(-1), { type: 'holding', track: manifest.id, chunks: 3, have: '4A==' }, 'the hub gets every holding');
  leecher.sendText('have', { track: manifest.id });
  await tick(10);
  store.put(manifest.id, 6, data[6], 'hub');
  const present = Array.from({ length: 12 }, (_, i) => store.has(manifest.id, i));
  net.holding(manifest.id, present);
  await until(() => holdings.length === 1);
  assert.deepEqual(holdings[0], { type: 'holding', track: manifest.id, chunks: 12, have: encodeBitfield(present) });
  net.withdraw(manifest.id, 12);
  assert.deepEqual(ws.sent.at(-1), { type: 'holding', track: manifest.id, chunks: 12, have: 'AAA=' }, 'a withdrawn download: no bit set');
});

test('lookup: one pending per track, want/from/partial sent; several peers in lookup_result give several links', async (t) => {
  const { net } = setup({ uploadCap: 4 });
  t.after(() => net.stop());
  assert.deepEqual(await net.lookup(T1), { reason: 'offline', links: [] }, 'no lookup before welcome');
  const ws = await welcomed(net, 4);
  const p = net.lookup(T1, { want: 3, from: 12 });
  assert.deepEqual(await net.lookup(T1), { reason: 'duplicate_lookup', links: [] }, 'one pending per track');
  assert.deepEqual(ws.sent.filter((m) => m.type === 'lookup'), [{ type: 'lookup', track: T1, want: 3, from: 12, partial: true }]);
  ws.receive({ type: 'paired', pair_id: 'x-a', peer: 'p-a', track: T1, role: 'leecher' });
  ws.receive({ type: 'paired', pair_id: 'x-b', peer: 'p-b', track: T1, role: 'leecher' });
  ws.receive({ type: 'lookup_result', track: T1, peer_id: 'p-a', pair_id: 'x-a',
    peers: [{ peer_id: 'p-a', pair_id: 'x-a' }, { peer_id: 'p-b', pair_id: 'x-b' }] });
  const r = await p;
  assert.equal(r.reason, '');
  assert.deepEqual(r.links.map((l) => [l.peer, l.pairId]), [['p-a', 'x-a'], ['p-b', 'x-b']]);
  // Older hubs name one pair only.
  assert.deepEqual(resultPairs({ type: 'lookup_result', track: T1, peer_id: 'p-a', pair_id: 'x-a' }), ['x-a']);
  assert.deepEqual(resultPairs({ type: 'lookup_result', track: T1, peer_id: '', reason: 'busy' }), []);
});

test('lookup: no_candidates and busy settle it with their reason; a lookup refused or lost settles too', async (t) => {
  const { net } = setup({ uploadCap: 4 });
  t.after(() => net.stop());
  const ws = await welcomed(net, 4);
  const cold = net.lookup(T1);
  const busy = net.lookup(T2);
  ws.receive({ type: 'lookup_result', track: T2, peer_id: '', reason: 'busy' });
  ws.receive({ type: 'lookup_result', track: T1, peer_id: '', reason: 'no_candidates' });
  assert.deepEqual(await cold, { reason: 'no_candidates', links: [] });
  assert.deepEqual(await busy, { reason: 'busy', links: [] });
  // The hub refuses one: the error names its track.
  const tracks = ['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(32));
  const ps = tracks.map((tr) => net.lookup(tr));
  assert.deepEqual(await ps[MAX_PENDING_LOOKUPS], { reason: 'too_many_lookups', links: [] }, 'at most 4 pending');
  ws.receive({ type: 'error', code: 'unknown_track', message: `lookup of ${tracks[2]}: unknown track`, ref: 'lookup' });
  assert.deepEqual(await ps[2], { reason: 'unknown_track', links: [] });
  // A result for nobody: its pairs are ended at once.
  ws.receive({ type: 'paired', pair_id: 'x-z', peer: 'p-z', track: T1, role: 'leecher' });
  ws.receive({ type: 'lookup_result', track: T1, peer_id: 'p-z', pair_id: 'x-z', peers: [{ peer_id: 'p-z', pair_id: 'x-z' }] });
  assert.ok(!net.links.has('x-z'));
  assert.ok(ws.sent.some((m) => m.type === 'unpair' && m.pair_id === 'x-z'));
  // The connection drops: what is pending settles.
  ws.close(1006);
  assert.deepEqual(await ps[0], { reason: 'shutdown', links: [] });
});

test('rate_limited pauses lookups and stats, then they resume', async (t) => {
  const { stats, net } = setup();
  t.after(() => net.stop());
  const ws = await welcomed(net);
  const p = net.lookup(T1);
  assert.equal(ws.sent.filter((m) => m.type === 'lookup').length, 1);
  ws.receive({ type: 'error', code: 'rate_limited', message: 'more than 50 messages/s', ref: '' });
  assert.deepEqual(await p, { reason: 'rate_limited', links: [] }, 'a possibly dropped lookup is no longer awaited');
  stats.received('hub', 10);
  await tick(40);
  assert.equal(ws.sent.filter((m) => m.type === 'stats').length, 0, 'no stats while rate limited');
  assert.deepEqual(await net.lookup(T1), { reason: 'rate_limited', links: [] }, 'no lookup while rate limited');
  assert.equal(ws.sent.filter((m) => m.type === 'lookup').length, 1);
  net.quietUntil = Date.now(); // the pause is over
  await until(() => ws.sent.some((m) => m.type === 'stats'));
  const st = ws.sent.filter((m) => m.type === 'stats');
  assert.equal(st.length, 1, 'the accumulated deltas are sent afterwards');
  assert.equal(st[0].hub_bytes, 10);
  net.lookup(T1);
  assert.equal(ws.sent.filter((m) => m.type === 'lookup').length, 2, 'lookups resume');
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

test('a seeder sends upload_done once a range reaching the end of the track was served, freeing its slot', async (t) => {
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
  ws.receive({ type: 'can_upload', track: manifest.id, lookup_id: 'l-2' });
  await tick();
  assert.deepEqual(ws.sent.filter((m) => m.type === 'upload_reply').map((m) => m.ok), [false, true],
    'the slot is busy during the upload, free after it');
  await leecher.request(manifest.id, 0, 2, () => {}); // a seek after the end is still served (it takes a slot again)
  await tick();
  assert.deepEqual(ws.sent.filter((m) => m.type === 'upload_done'), [{ type: 'upload_done', pair_id: 'x-9' }], 'exactly once');
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

test('the upload cap holds on every link: a remote without a slot is refused (not_found) when none is free', async (t) => {
  const { manifest, data } = makeManifest({ n: 6 });
  const { store, net } = setup({ uploadCap: 1 });
  t.after(() => net.stop());
  const ws = await welcomed(net);
  await seederPair(net, ws, store, manifest, data); // p-2 holds the one slot
  // We leech from p-3 on another link; p-3 requests from us on it too.
  const far = {};
  await leecherLink(net, ws, { peer: 'p-3', pairId: 'x-3', track: T1, far: (dc) => { far.ch = new ChunkChannel(dc, { name: 'p-3' }); } });
  await assert.rejects(far.ch.request(manifest.id, 0, 2, () => {}), (err) => err.code === 'not_found' && /upload cap/.test(err.message));
});

test('a remote breaking the protocol while serving us is abandoned (bad_message); one that only leeches from us is not', async (t) => {
  const { manifest, data } = makeManifest({ n: 6 });
  const { store, stats, net } = setup();
  t.after(() => net.stop());
  const ws = await welcomed(net);
  const link = await leecherLink(net, ws, { peer: 'p-big', pairId: 'x-1', track: manifest.id, far: (dc) => {
    dc.addEventListener('message', (e) => {
      const m = JSON.parse(e.data);
      if (m.type !== 'request') return;
      const big = new Uint8Array(70000); // a chunk message over the 64 KiB payload limit
      big.set(encodeChunk(manifest.id, m.from, data[m.from]).subarray(0, 21));
      dc.send(big);
    });
  } });
  const got = [];
  await assert.rejects(link.channel.request(manifest.id, 0, 6, (seq) => got.push(seq)), /closed/);
  assert.deepEqual(got, []);
  assert.deepEqual(ws.sent.filter((m) => m.type === 'report'), [{ type: 'report', peer: 'p-big', track: manifest.id, reason: 'bad_message' }]);
  assert.ok(!net.links.has('x-1'));
  assert.equal(net.badPeers.get('p-big'), 'bad_message');
  assert.equal(stats.reportsSent, 1);
  assert.equal(stats.peersAbandoned, 1);

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

  // A known bad peer paired with us again as seeder: ended at once, unused, not reported again.
  const pcs = FakePC.instances.length;
  ws.receive({ type: 'paired', pair_id: 'x-3', peer: 'p-big', track: T1, role: 'leecher' });
  await tick();
  assert.ok(!net.links.has('x-3'));
  assert.equal(FakePC.instances.length, pcs, 'no PeerConnection for it');
  assert.deepEqual(ws.sent.filter((m) => m.type === 'unpair' && m.pair_id === 'x-3'), [{ type: 'unpair', pair_id: 'x-3' }]);
  assert.equal(stats.reportsSent, 1);
  assert.equal(stats.peersAbandoned, 2);
  // As seeder, a known bad peer is still served (the hub decides who leeches).
  ws.receive({ type: 'paired', pair_id: 'x-4', peer: 'p-big', track: T1, role: 'seeder' });
  assert.ok(net.links.has('x-4'));
});

test('links are kept across tracks; idle ones beyond max_peer_conns are closed (least recently used first), else a new pair is refused', async (t) => {
  const { net } = setup({ uploadCap: 1 });
  net.maxPeerConns = 2;
  t.after(() => net.stop());
  const ws = await welcomed(net);
  for (let i = 0; i < 4; i++) {
    await leecherLink(net, ws, { peer: `p-${i}`, pairId: `x-${i}`, track: T1, serve: remoteServe({ id: T1, chunks: [] }, [], seqs(0, 0)) });
    net.links.get(`x-${i}`).lastUsed = i;
  }
  assert.equal(net.links.size, 3, 'max_peer_conns + upload cap');
  assert.ok(!net.links.has('x-0'), 'the least recently used went');
  assert.ok(ws.sent.some((m) => m.type === 'unpair' && m.pair_id === 'x-0'));
  assert.equal(net.openLinks().length, 3);
  // None idle (each remote holds an upload slot): a new pair is refused.
  for (const l of net.links.values()) net.acquireSlot(l.peer, '', true);
  ws.receive({ type: 'paired', pair_id: 'x-9', peer: 'p-9', track: T1, role: 'leecher' });
  assert.ok(!net.links.has('x-9'));
  assert.ok(ws.sent.some((m) => m.type === 'unpair' && m.pair_id === 'x-9'));
  assert.equal(net.links.size, 3);
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

test('viaRelay reads the selected candidate pair of getStats: relay on either side, or not', async () => {
  /** @param {string} local @param {string} remote @param {boolean} [viaTransport] */
  const pc = (local, remote, viaTransport = true) => ({
    getStats: async () => new Map(Object.entries({
      t: viaTransport ? { id: 't', type: 'transport', selectedCandidatePairId: 'cp' } : { id: 't', type: 'transport' },
      cp: { id: 'cp', type: 'candidate-pair', localCandidateId: 'l', remoteCandidateId: 'r', nominated: true, state: 'succeeded' },
      l: { id: 'l', type: 'local-candidate', candidateType: local },
      r: { id: 'r', type: 'remote-candidate', candidateType: remote },
    })),
  });
  const any = /** @type {any} */ (null);
  assert.equal(await viaRelay(any || pc('host', 'srflx')), false);
  assert.equal(await viaRelay(any || pc('relay', 'host')), true);
  assert.equal(await viaRelay(any || pc('host', 'relay')), true);
  assert.equal(await viaRelay(any || pc('relay', 'host', false)), true, 'Firefox: no selectedCandidatePairId, the nominated succeeded pair');
});
