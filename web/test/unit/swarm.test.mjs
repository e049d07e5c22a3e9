import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { schedule, withDefaults, SCHED_DEFAULTS, chunkStarts, chunkAtMs, firstMissing, ALGORITHM_DEFAULTS, withAlgorithmDefaults, LookupBackoff, LinkClosedError, failedLink } from '../../js/swarm.js';
import { CatalogAPI } from '../../js/api.js';

// The shared scenario vectors of the peer algorithm; peer/vectors_test.go runs the same file.
const vectors = JSON.parse(readFileSync(new URL('../../../testdata/peer-algorithm/schedule.json', import.meta.url), 'utf8'));

/** [from, to) ranges → n flags. */
const flags = (ranges, n) => {
  const f = new Array(n).fill(false);
  for (const [from, to] of ranges ?? []) for (let c = from; c < to && c < n; c++) f[c] = true;
  return f;
};

/** A vector's source state (missing fields: Go's zero values). */
const state = (s = {}) => ({
  active: !!s.active,
  from: s.from ?? 0,
  to: s.to ?? 0,
  next: s.next ?? 0,
  stalled: !!s.stalled,
  firstCopy: !!s.first_copy,
});

/** A want range: [from, to] or none ([] or missing). */
const range = (r) => (Array.isArray(r) && r.length === 2 ? { from: r[0], to: r[1] } : null);

const toInput = (vc) => {
  const chunkMs = vc.chunk_ms ?? new Array(vc.chunks ?? 0).fill(1000);
  const n = chunkMs.length;
  return {
    chunkMs,
    present: flags(vc.present, n),
    playheadMs: vc.playhead_ms ?? 0,
    hub: state(vc.hub),
    peers: (vc.peers ?? []).map((p) => ({ state: state(p.state), has: p.has == null ? null : flags(p.has, n) })),
    p2p: !!vc.p2p,
    waiting: !!vc.waiting,
    firstCopyHold: !!vc.first_copy_hold,
    startLate: !!vc.start_late,
  };
};

test('the vector file has at least 20 cases', () => {
  assert.ok(vectors.cases.length >= 20, `only ${vectors.cases.length} cases`);
});

for (const vc of vectors.cases) {
  test(`vector: ${vc.name}`, () => {
    const input = toInput(vc);
    const want = {
      hub: range(vc.want.hub),
      hubFirstCopy: !!vc.want.hub_first_copy,
      peers: input.peers.map((_, i) => range(vc.want.peers?.[i])),
    };
    assert.deepEqual(schedule(vc.config ?? {}, input), want);
  });
}

test('withDefaults fills missing and non-positive values only', () => {
  assert.deepEqual(withDefaults(), { ...SCHED_DEFAULTS });
  assert.deepEqual(withDefaults({ peer_window: 0, emergency_ms: -1, start_ms: 5000 }), { ...SCHED_DEFAULTS, start_ms: 5000 });
  assert.ok(Object.isFrozen(SCHED_DEFAULTS));
  assert.equal(SCHED_DEFAULTS.first_copy_chunks, 32);
});

test('chunkAtMs: the first chunk whose end is past pos; 0 before, n at or after the end', () => {
  const starts = chunkStarts([1000, 500, 2000]);
  assert.deepEqual(starts, [0, 1000, 1500, 3500]);
  assert.equal(chunkAtMs(starts, -5), 0);
  assert.equal(chunkAtMs(starts, 0), 0);
  assert.equal(chunkAtMs(starts, 999), 0);
  assert.equal(chunkAtMs(starts, 1000), 1, 'a chunk boundary belongs to the next chunk');
  assert.equal(chunkAtMs(starts, 1499), 1);
  assert.equal(chunkAtMs(starts, 3499), 2);
  assert.equal(chunkAtMs(starts, 3500), 3);
  assert.equal(chunkAtMs(chunkStarts([]), 0), 0);
});

test('firstMissing: the first chunk ≥ from not present, or the length', () => {
  const present = [true, true, false, true];
  assert.equal(firstMissing(present, 0), 2);
  assert.equal(firstMissing(present, -3), 2);
  assert.equal(firstMissing(present, 3), 4);
  assert.equal(firstMissing([], 0), 0);
});

test('no P2P: nothing from the hub when the next missing chunk is already covered by a peer', () => {
  // Rule 5 would ask for an empty range: no request (Go's empty Range).
  const d = schedule(
    {},
    {
      chunkMs: new Array(20).fill(1000),
      present: flags([[0, 3]], 20),
      playheadMs: 0,
      hub: state(),
      peers: [{ state: state({ active: true, from: 3, to: 6, next: 3 }), has: null }],
      p2p: false,
      waiting: false,
      firstCopyHold: false,
    },
  );
  assert.deepEqual(d, { hub: null, hubFirstCopy: false, peers: [null] });
});

// The algorithm's constants: peer.DefaultAlgorithm(), which the hub serves at GET /api/config.
const algorithmJSON = JSON.parse(readFileSync(new URL('../../../testdata/peer-algorithm/algorithm.json', import.meta.url), 'utf8'));

test('the built-in algorithm defaults equal testdata/peer-algorithm/algorithm.json (peer.DefaultAlgorithm)', () => {
  assert.deepEqual(JSON.parse(JSON.stringify(ALGORITHM_DEFAULTS)), algorithmJSON);
  assert.deepEqual({ ...SCHED_DEFAULTS }, algorithmJSON.sched);
  assert.deepEqual(withAlgorithmDefaults(), algorithmJSON, 'nothing served: the defaults');
  assert.ok(Object.isFrozen(ALGORITHM_DEFAULTS));
});

test('withAlgorithmDefaults keeps served positive numbers, fills the rest, caps max_sources at 8', () => {
  const a = withAlgorithmDefaults({ max_sources: 12, start_wait_real_ms: 400, silence_real_ms: -1, lookup_retry_ms: 'x', sched: { peer_window: 4 }, extra: 1 });
  assert.equal(a.max_sources, 8);
  assert.equal(a.start_wait_real_ms, 400);
  assert.equal(a.silence_real_ms, algorithmJSON.silence_real_ms);
  assert.equal(a.lookup_retry_ms, algorithmJSON.lookup_retry_ms);
  assert.deepEqual(a.sched, { ...algorithmJSON.sched, peer_window: 4 });
  assert.ok(!('extra' in a));
  assert.deepEqual(withAlgorithmDefaults(null), algorithmJSON);
  assert.deepEqual(withAlgorithmDefaults({ sched: 3 }), algorithmJSON);
});

test('CatalogAPI.config: GET /api/config, or the built-in defaults when it fails', async (t) => {
  const orig = globalThis.fetch;
  t.after(() => { globalThis.fetch = orig; });
  const urls = [];
  globalThis.fetch = async (url) => {
    urls.push(url);
    return new Response(JSON.stringify({ ...algorithmJSON, max_sources: 2, sched: { ...algorithmJSON.sched, emergency_ms: 4000 } }), { status: 200 });
  };
  const served = await new CatalogAPI('/api').config();
  assert.deepEqual(urls, ['/api/config']);
  assert.equal(served.max_sources, 2);
  assert.equal(served.sched.emergency_ms, 4000);
  globalThis.fetch = async () => new Response('{"error":"no peer configuration on this server"}', { status: 404 });
  const logs = [];
  assert.deepEqual(await new CatalogAPI('/api').config({ log: (m) => logs.push(m) }), algorithmJSON);
  assert.match(logs[0], /built-in defaults.*404/);
  globalThis.fetch = async () => { throw new TypeError('network down'); };
  assert.deepEqual(await new CatalogAPI('/api').config(), algorithmJSON);
});

const backoffVectors = JSON.parse(readFileSync(new URL('../../../testdata/peer-algorithm/lookup-backoff.json', import.meta.url), 'utf8'));

test('lookup backoff vectors use the default constants', () => {
  assert.equal(backoffVectors.lookup_retry_ms, ALGORITHM_DEFAULTS.lookup_retry_ms);
  assert.equal(backoffVectors.lookup_backoff_max_ms, ALGORITHM_DEFAULTS.lookup_backoff_max_ms);
  assert.ok(backoffVectors.cases.length > 0);
});

for (const c of backoffVectors.cases) {
  test(`lookup backoff vector: ${c.name}`, () => {
    const b = new LookupBackoff();
    c.steps.forEach((st, i) => {
      if (st.event === 'holds') {
        assert.equal(b.holds(st.at_ms), st.holds, `step ${i}: holds at ${st.at_ms} ms`);
        return;
      }
      if (st.event === 'failed') b.failed(st.at_ms, backoffVectors);
      else if (st.event === 'opened') b.opened();
      else assert.fail(`step ${i}: unknown event ${st.event}`);
      assert.equal(b.until, st.until_ms, `step ${i} (${st.event} at ${st.at_ms} ms): held until`);
    });
  });
}

test('failedLink: the connect timeout, ICE/DTLS failing and the other side count in the lookup backoff; the page\'s own closes do not', () => {
  for (const why of ['timeout', 'failed', 'remote']) assert.equal(failedLink(new LinkClosedError('x', why)), true, why);
  for (const why of ['refused', 'trimmed', 'abandoned']) assert.equal(failedLink(new LinkClosedError('x', why)), false, why);
  assert.equal(failedLink(new Error('link closed')), false);
  assert.equal(failedLink(undefined), false);
});
