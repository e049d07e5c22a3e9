import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkStore } from '../../js/chunkstore.js';
import { SessionStats } from '../../js/stats.js';

test('ChunkStore: put/get/complete and events', () => {
  const s = new ChunkStore({ budget: 1000 });
  const events = [];
  s.addEventListener('chunk', (e) => events.push(['chunk', e.detail.seq, e.detail.source]));
  s.addEventListener('complete', (e) => events.push(['complete', e.detail.track]));
  s.setTotal('t1', 2);
  assert.ok(s.put('t1', 0, new Uint8Array(10), 'http'));
  assert.ok(!s.put('t1', 0, new Uint8Array(10), 'peer'), 'duplicate ignored');
  assert.equal(s.source('t1', 0), 'http');
  assert.ok(!s.isComplete('t1'));
  s.put('t1', 1, new Uint8Array(5), 'peer');
  assert.ok(s.isComplete('t1'));
  assert.deepEqual(s.completeTracks(), ['t1']);
  assert.deepEqual(events, [['chunk', 0, 'http'], ['chunk', 1, 'peer'], ['complete', 't1']]);
  assert.equal(s.get('t1', 1).length, 5);
  assert.equal(s.get('t1', 2), undefined);
  assert.equal(s.get('nope', 0), undefined);
});

test('ChunkStore evicts least recently used unpinned tracks over budget', () => {
  const s = new ChunkStore({ budget: 100 });
  s.put('a', 0, new Uint8Array(40), 'http');
  s.put('b', 0, new Uint8Array(40), 'http');
  s.pinned.add('a');
  s.put('c', 0, new Uint8Array(40), 'http');
  assert.ok(s.has('a', 0), 'pinned kept');
  assert.ok(!s.has('b', 0), 'LRU unpinned evicted');
  assert.ok(s.has('c', 0));
  s.put('c', 1, new Uint8Array(40), 'http');
  assert.ok(s.has('c', 1), 'the track being added is never its own victim');
});

test('SessionStats: totals, share and deltas', () => {
  const st = new SessionStats();
  let changes = 0;
  st.addEventListener('change', () => changes++);
  assert.equal(st.p2pShare, 0);
  st.received('http', 100);
  st.received('hub', 100);
  st.received('peer', 600);
  st.received('cache', 50);
  st.uploadedBytes(30);
  st.stall();
  st.startup(120);
  assert.equal(st.serverBytes, 200);
  assert.equal(st.p2pShare, 0.75);
  assert.throws(() => st.received('nowhere', 1));
  assert.deepEqual(st.drainDelta(), {
    hub_bytes: 200, peer_bytes: 600, relay_bytes: 0, cache_bytes: 50, uploaded_bytes: 30, bad_chunks: 0, stalls: 1, emergency_fetches: 0, startup_ms: [120],
  });
  st.received('peer', 10);
  st.relayed(10);
  assert.deepEqual(st.drainDelta(), { hub_bytes: 0, peer_bytes: 10, relay_bytes: 10, cache_bytes: 0, uploaded_bytes: 0, bad_chunks: 0, stalls: 0, emergency_fetches: 0 });
  assert.equal(changes, 8);
});
