import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkChannel, TokenBucket, MAX_INTEREST, INBOUND_RATE } from '../../js/channel.js';
import { encodeChunk, HEADER_SIZE, MAX_PAYLOAD } from '../../js/wire.js';
import { makeManifest, dcPair, tick, until } from './helpers.mjs';

function seeder(manifest, data, extra = {}) {
  let uploaded = 0;
  return {
    serve: {
      canServe: (t) => t === manifest.id,
      chunkCount: () => manifest.chunks.length,
      getChunk: (t, seq) => data[seq],
      uploaded: (n) => { uploaded += n; },
      ...extra,
    },
    uploaded: () => uploaded,
  };
}

test('a range is served in order, then done; uploads are counted', async () => {
  const { manifest, data } = makeManifest({ n: 8 });
  const [da, db] = dcPair();
  const s = seeder(manifest, data);
  const leecher = new ChunkChannel(da, { name: 'L' });
  new ChunkChannel(db, { name: 'S', serve: s.serve, window: 20000 });
  const got = [];
  await leecher.request(manifest.id, 2, 7, (seq, bytes) => got.push([seq, bytes.length]));
  assert.deepEqual(got.map((g) => g[0]), [2, 3, 4, 5, 6]);
  assert.deepEqual(got.map((g) => g[1]), data.slice(2, 7).map((d) => d.length));
  assert.equal(s.uploaded(), data.slice(2, 7).reduce((n, d) => n + d.length, 0));
  assert.equal(leecher.inFlight, 0);
});

test('the sender keeps bufferedAmount within its window', async () => {
  const { manifest, data } = makeManifest({ n: 12 });
  const [da, db] = dcPair();
  let max = 0;
  const origSend = db.send.bind(db);
  db.send = (d) => {
    if (typeof d !== 'string') max = Math.max(max, db.bufferedAmount); // chunks wait for the window; small text does not
    origSend(d);
  };
  const s = seeder(manifest, data);
  new ChunkChannel(db, { name: 'S', serve: s.serve, window: 20000 });
  const leecher = new ChunkChannel(da, { name: 'L' });
  let n = 0;
  await leecher.request(manifest.id, 0, 12, () => n++);
  assert.equal(n, 12);
  assert.ok(max <= 20000, `bufferedAmount reached ${max} before a send`);
});

test('errors: unknown track, bad range, no serving side', async () => {
  const { manifest, data } = makeManifest({ n: 4 });
  const [da, db] = dcPair();
  new ChunkChannel(db, { name: 'S', serve: seeder(manifest, data).serve });
  const leecher = new ChunkChannel(da, { name: 'L' });
  await assert.rejects(leecher.request('f'.repeat(32), 0, 1, () => {}), /not_found/);
  await assert.rejects(leecher.request(manifest.id, 2, 9, () => {}), /invalid_range/);
  await assert.rejects(leecher.request(manifest.id, 3, 3, () => {}), /invalid_range/);
  const [dc, dd] = dcPair();
  new ChunkChannel(dd, { name: 'hub-like requester only' });
  const l2 = new ChunkChannel(dc, { name: 'L2' });
  await assert.rejects(l2.request(manifest.id, 0, 1, () => {}), /not_found/);
});

test('a new request for the same track replaces the old one; close rejects what is pending', async () => {
  const { manifest, data } = makeManifest({ n: 30 });
  const [da, db] = dcPair();
  // A slow sender: each chunk is read after a delay.
  const s = seeder(manifest, data, { getChunk: (t, seq) => new Promise((r) => setTimeout(() => r(data[seq]), 2)) });
  new ChunkChannel(db, { name: 'S', serve: s.serve });
  const leecher = new ChunkChannel(da, { name: 'L' });
  const first = leecher.request(manifest.id, 0, 30, () => {});
  await new Promise((r) => setTimeout(r, 5));
  const got = [];
  const second = leecher.request(manifest.id, 20, 22, (seq) => got.push(seq));
  await assert.rejects(first, /replaced/);
  await second;
  assert.deepEqual(got, [20, 21]);
  const third = leecher.request(manifest.id, 0, 30, () => {});
  da.close();
  await assert.rejects(third, /closed/);
  assert.ok(!leecher.open);
});

test('abort sends cancel; the sender stops', async () => {
  const { manifest, data } = makeManifest({ n: 30 });
  const [da, db] = dcPair();
  const s = seeder(manifest, data, { getChunk: (t, seq) => new Promise((r) => setTimeout(() => r(data[seq]), 2)) });
  new ChunkChannel(db, { name: 'S', serve: s.serve });
  const leecher = new ChunkChannel(da, { name: 'L' });
  const ctrl = new AbortController();
  const p = leecher.request(manifest.id, 0, 30, () => {}, ctrl.signal);
  await new Promise((r) => setTimeout(r, 10));
  ctrl.abort();
  await assert.rejects(p, /aborted/);
  assert.ok(da.sent.some((m) => typeof m === 'string' && JSON.parse(m).type === 'cancel'));
  const sentBefore = db.sent.length;
  await new Promise((r) => setTimeout(r, 30));
  assert.ok(db.sent.length - sentBefore <= 1, 'at most the chunk in progress after cancel');
  assert.ok(db.sent.length < 31);
});

test('chunks for other tracks or outside the range are ignored; have is answered', async () => {
  const { manifest, data } = makeManifest({ n: 4 });
  const [da, db] = dcPair();
  const s = seeder(manifest, data);
  new ChunkChannel(db, { name: 'S', serve: s.serve });
  const leecher = new ChunkChannel(da, { name: 'L' });
  const replies = [];
  leecher.addEventListener('have_reply', (e) => replies.push(e.detail));
  leecher.sendText('have', { track: manifest.id });
  leecher.sendText('have', { track: 'a'.repeat(32) });
  const got = [];
  const p = leecher.request(manifest.id, 1, 2, (seq) => got.push(seq));
  leecher.onMessage(encodeChunk('a'.repeat(32), 1, data[1]).buffer);
  leecher.onMessage(encodeChunk(manifest.id, 3, data[3]).buffer);
  await p;
  assert.deepEqual(got, [1]);
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(replies, [{ type: 'have_reply', track: manifest.id, ok: true }, { type: 'have_reply', track: 'a'.repeat(32), ok: false }]);
});

test('first_copy requests carry the field; busyWith tells a track with a range in flight', async () => {
  const { manifest, data } = makeManifest({ n: 4 });
  const [da, db] = dcPair();
  new ChunkChannel(db, { name: 'S', serve: seeder(manifest, data).serve });
  const ch = new ChunkChannel(da, { name: 'L' });
  assert.ok(!ch.busyWith(manifest.id));
  const p = ch.request(manifest.id, 0, 4, () => {}, undefined, { firstCopy: true });
  assert.ok(ch.busyWith(manifest.id));
  assert.ok(!ch.busyWith('b'.repeat(32)));
  await p;
  assert.ok(!ch.busyWith(manifest.id));
  await ch.request(manifest.id, 1, 2, () => {});
  const reqs = da.sent.filter((m) => typeof m === 'string').map((m) => JSON.parse(m)).filter((m) => m.type === 'request');
  assert.deepEqual(reqs.map((m) => m.first_copy), [true, undefined], 'first_copy only when asked');
});

test('a partial holder sends the chunks it holds in the range, skipping the others, then done', async () => {
  const { manifest, data } = makeManifest({ n: 10 });
  const held = new Set([1, 2, 5, 8]);
  const [da, db] = dcPair();
  const finished = [];
  new ChunkChannel(db, { name: 'S', serve: seeder(manifest, data, {
    getChunk: (t, seq) => (held.has(seq) ? data[seq] : undefined),
    finished: (t, from, to) => finished.push([from, to]),
  }).serve });
  const leecher = new ChunkChannel(da, { name: 'L' });
  const got = [];
  await leecher.request(manifest.id, 0, 10, (seq) => got.push(seq));
  assert.deepEqual(got, [1, 2, 5, 8]);
  assert.deepEqual(finished, [[0, 10]], 'told that the range went out whole');
});

test('a sender refuses a request when admit says no (upload cap): not_found', async () => {
  const { manifest, data } = makeManifest({ n: 4 });
  const [da, db] = dcPair();
  new ChunkChannel(db, { name: 'S', serve: seeder(manifest, data, { admit: () => false }).serve });
  const leecher = new ChunkChannel(da, { name: 'L' });
  await assert.rejects(leecher.request(manifest.id, 0, 2, () => {}), (err) => err.code === 'not_found' && /upload cap/.test(err.message));
});

test('have is answered by the haveReply hook; the asker then gets holding updates (at most MAX_INTEREST tracks)', async () => {
  const { manifest, data } = makeManifest({ n: 9 });
  const [da, db] = dcPair();
  const sender = new ChunkChannel(db, { name: 'S', serve: seeder(manifest, data, {
    haveReply: (t) => (t === manifest.id ? { ok: false, chunks: 9, have: '4AA=' } : { ok: false }),
  }).serve });
  const asker = new ChunkChannel(da, { name: 'L' });
  const replies = [];
  const holdings = [];
  const asked = [];
  asker.addEventListener('have_reply', (e) => replies.push(e.detail));
  asker.addEventListener('holding', (e) => holdings.push(e.detail));
  sender.addEventListener('have', (e) => asked.push(e.detail.track));
  assert.ok(!sender.pushHolding(manifest.id, { chunks: 9, have: '4AA=' }), 'nobody asked yet: not sent');
  asker.sendText('have', { track: manifest.id });
  await until(() => replies.length === 1);
  assert.deepEqual(replies, [{ type: 'have_reply', track: manifest.id, ok: false, chunks: 9, have: '4AA=' }]);
  assert.deepEqual(asked, [manifest.id], 'the sender is told who asked');
  assert.ok(sender.pushHolding(manifest.id, { chunks: 9, have: '8AA=' }));
  await until(() => holdings.length === 1);
  assert.deepEqual(holdings, [{ type: 'holding', track: manifest.id, chunks: 9, have: '8AA=' }]);
  for (let i = 0; i < MAX_INTEREST + 5; i++) asker.sendText('have', { track: i.toString(16).padStart(32, '0') });
  await until(() => replies.length === MAX_INTEREST + 6);
  assert.equal(sender.interest.size, MAX_INTEREST, 'interest is bounded');
});

test('have and holding are rate limited per channel: extra ones are dropped', async () => {
  const [da, db] = dcPair();
  const sender = new ChunkChannel(db, { name: 'S', serve: { canServe: () => false, chunkCount: () => 0, getChunk: () => undefined, uploaded: () => {} } });
  const asker = new ChunkChannel(da, { name: 'L' });
  let replies = 0;
  let holdings = 0;
  asker.addEventListener('have_reply', () => replies++);
  sender.addEventListener('holding', () => holdings++);
  const t = 'c'.repeat(32);
  for (let i = 0; i < INBOUND_RATE + 20; i++) asker.sendText(i % 2 ? 'have' : 'holding', { track: t, chunks: 1, have: 'gA==' });
  await until(() => replies + holdings >= INBOUND_RATE);
  await tick(20);
  assert.equal(replies + holdings, INBOUND_RATE, `${replies} replies + ${holdings} holdings accepted`);
  assert.equal(sender.droppedInbound, 20);
});

test('requests count in the inbound rate too: an extra one gets error rate_limited', async () => {
  const { manifest, data } = makeManifest({ n: 2 });
  const [da, db] = dcPair();
  const sender = new ChunkChannel(db, { name: 'S', serve: seeder(manifest, data).serve });
  sender.inbound.tokens = 1; // one message left in the bucket
  sender.inbound.rate = 0;
  const leecher = new ChunkChannel(da, { name: 'L' });
  const ok = leecher.request(manifest.id, 0, 1, () => {});
  const refused = leecher.request('d'.repeat(32), 0, 1, () => {});
  await ok;
  await assert.rejects(refused, (err) => err.code === 'rate_limited');
  assert.equal(sender.droppedInbound, 1);
});

test('TokenBucket: burst, then rate tokens per second', () => {
  let now = 0;
  const b = new TokenBucket(50, 50, () => now);
  let n = 0;
  while (b.take()) n++;
  assert.equal(n, 50);
  now += 100; // 5 tokens
  n = 0;
  while (b.take()) n++;
  assert.equal(n, 5);
  now += 10_000;
  n = 0;
  while (b.take()) n++;
  assert.equal(n, 50, 'never more than the burst');
});

test('messages breaking the protocol are dropped and dispatched as bad_message; unknown kinds are not', async () => {
  const { manifest, data } = makeManifest({ n: 4 });
  const [da] = dcPair();
  const ch = new ChunkChannel(da, { name: 'L' });
  const bad = [];
  ch.addEventListener('bad_message', (e) => bad.push(e.detail.message));
  const got = [];
  ch.request(manifest.id, 0, 4, (seq) => got.push(seq)).catch(() => {});
  // Fine: a valid chunk, an unknown binary kind (reserved, dropped), an unknown text type.
  ch.onMessage(encodeChunk(manifest.id, 0, data[0]).buffer);
  ch.onMessage(Uint8Array.of(0x02, 1, 2, 3).buffer);
  ch.onMessage(JSON.stringify({ type: 'some_future_type' }));
  assert.deepEqual(bad, []);
  // Broken: a chunk message over the 64 KiB payload limit, a truncated one, unparsable and oversize text.
  const big = new Uint8Array(HEADER_SIZE + MAX_PAYLOAD + 1024);
  big.set(encodeChunk(manifest.id, 1, data[1]).subarray(0, HEADER_SIZE));
  ch.onMessage(big.buffer);
  ch.onMessage(encodeChunk(manifest.id, 1, data[1]).slice(0, HEADER_SIZE).buffer);
  ch.onMessage('{"type":');
  ch.onMessage(JSON.stringify({ type: 'done', id: 1, pad: 'x'.repeat(5000) }));
  assert.equal(bad.length, 4, bad.join('; '));
  assert.equal(ch.badMessages, 4);
  assert.deepEqual(got, [0], 'nothing of the broken messages was delivered');
  assert.ok(/malformed chunk message \(66581 bytes\)/.test(bad[0]), bad[0]);
  ch.close();
});
