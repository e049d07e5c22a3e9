import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net, defaultWsURL } from '../../js/net.js';
import { ChunkStore } from '../../js/chunkstore.js';
import { SessionStats } from '../../js/stats.js';

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

function setup({ uploadCap = 1, cached = [] } = {}) {
  globalThis.WebSocket = FakeWS;
  FakeWS.instances = [];
  const store = new ChunkStore();
  const stats = new SessionStats();
  const net = new Net({ url: 'ws://x/ws', store, stats, uploadCap, cached: () => cached, statsIntervalMs: 10 });
  return { store, stats, net };
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
