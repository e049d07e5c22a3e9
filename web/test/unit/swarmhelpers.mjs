// Helpers of the swarm unit tests (loader.test.mjs, net.test.mjs): a fake
// hub serving chunks (with first-copy striping), fake remote peers, and a
// browser peer (Net + ChunkStore + SessionStats) welcomed by a fake hub
// WebSocket, with its hub DataChannel.

import { Net } from '../../js/net.js';
import { ChunkChannel } from '../../js/channel.js';
import { ChunkStore } from '../../js/chunkstore.js';
import { SessionStats } from '../../js/stats.js';
import { encodeChunk, encodeBitfield } from '../../js/wire.js';
import { dcPair, installFakes, FakeWS, FakePC, tick, until } from './helpers.mjs';

/** A fast algorithm for tests (real-time windows shrunk; the media windows are the defaults). */
export const FAST = Object.freeze({
  start_wait_real_ms: 150,
  source_timeout_ms: 120,
  silence_real_ms: 200,
  lookup_retry_ms: 60,
  first_copy_retry_ms: 80,
  holding_interval_real_ms: 30,
});

/**
 * Serves chunk requests arriving on dc (the hub's end of a hub DataChannel)
 * as the hub does: in order, then done; a new request for a track replaces
 * its range; cancel stops it. A first_copy request gets only the first run
 * of chunks not in given (shared by the hubs of one test: "sent to another
 * peer"), at most stripe. refuse(m) may return an error code to answer with.
 * @param {*} dc
 * @param {{data: Uint8Array[], stripe?: number, given?: Set<number>, delayMs?: number, refuse?: (m: any) => string|null}} opts
 */
export function fakeHub(dc, { data, stripe = 8, given = new Set(), delayMs = 0, refuse = null }) {
  const hub = { requests: [], sent: [], given, paused: false };
  const active = new Map();
  dc.addEventListener('message', async (e) => {
    if (typeof e.data !== 'string') return;
    const m = JSON.parse(e.data);
    if (m.type === 'cancel') {
      for (const [t, id] of active) if (id === m.id) active.delete(t);
      return;
    }
    if (m.type !== 'request') return;
    hub.requests.push(m);
    const code = refuse ? refuse(m) : null;
    if (code) {
      dc.send(JSON.stringify({ type: 'error', id: m.id, code, message: code }));
      return;
    }
    active.set(m.track, m.id);
    let seqs = [];
    for (let s = m.from; s < m.to; s++) seqs.push(s);
    if (m.first_copy) {
      const first = seqs.findIndex((s) => !given.has(s));
      const run = [];
      for (let i = first; first >= 0 && i < seqs.length && !given.has(seqs[i]) && run.length < stripe; i++) run.push(seqs[i]);
      seqs = run;
    }
    for (const seq of seqs) {
      if (delayMs) await tick(delayMs);
      while (hub.paused) await tick(2);
      if (active.get(m.track) !== m.id || dc.readyState !== 'open') return;
      given.add(seq);
      hub.sent.push(seq);
      dc.send(encodeChunk(m.track, seq, data[seq]));
    }
    if (active.get(m.track) === m.id) {
      active.delete(m.track);
      dc.send(JSON.stringify({ type: 'done', id: m.id }));
    }
  });
  return hub;
}

/**
 * Serving hooks of a remote peer holding the chunks in held (a Set, mutable)
 * of manifest's track; mangle(seq, bytes) may alter what it sends; answers
 * have ok when it holds everything, else with its bitfield (or nothing).
 */
export function remoteServe(manifest, data, held, { mangle = (seq, b) => b, haveReply } = {}) {
  const n = manifest.chunks.length;
  return {
    canServe: (t) => t === manifest.id && held.size > 0,
    chunkCount: () => n,
    getChunk: (t, seq) => (held.has(seq) ? mangle(seq, data[seq].slice()) : undefined),
    uploaded: () => {},
    haveReply: haveReply || ((t) => {
      if (t !== manifest.id || held.size === 0) return { ok: false };
      if (held.size === n) return { ok: true };
      return { ok: false, chunks: n, have: encodeBitfield(Array.from({ length: n }, (_, i) => held.has(i))) };
    }),
  };
}

/** All chunk numbers of [from, to). */
export const seqs = (from, to) => new Set(Array.from({ length: to - from }, (_, i) => from + i));

/**
 * A browser peer: Net welcomed by a fake hub WebSocket (peer id id), with
 * a hub DataChannel served by fakeHub (hubOpts) unless hub is false.
 * installFakes() must have run (once per test).
 */
export async function browserPeer({ id = 'p-1', uploadCap = 4, uploadIdleMs, hub = true, hubOpts = {}, data } = {}) {
  const store = new ChunkStore();
  const stats = new SessionStats();
  const net = new Net({ url: 'ws://x/ws', store, stats, uploadCap, statsIntervalMs: 60000, uploadIdleMs });
  net.connect();
  await until(() => FakeWS.instances.length > 0 && FakeWS.instances.at(-1).readyState === 1 && FakeWS.instances.at(-1).sent.length > 0);
  const ws = FakeWS.instances.at(-1);
  ws.receive({ type: 'welcome', peer_id: id, upload_cap: uploadCap });
  let hubSide = null;
  if (hub) {
    const [local, remote] = dcPair();
    net.hubChannel = new ChunkChannel(local, { name: 'hub' });
    hubSide = fakeHub(remote, { data, ...hubOpts });
  }
  return { net, ws, store, stats, hub: hubSide };
}

/**
 * The hub pairs net as leecher with peer (pair pairId, for track); the
 * seeder's end of the (open) channel is given to far(dc), by default a
 * ChunkChannel serving serve. Resolves to the PeerLink.
 */
export async function leecherLink(net, ws, { peer, pairId, track, serve, far }) {
  FakePC.onRemote = far || ((dc) => new ChunkChannel(dc, { name: `seeder ${peer}`, serve }));
  ws.receive({ type: 'paired', pair_id: pairId, peer, track, role: 'leecher' });
  FakePC.onRemote = null;
  await until(() => net.links.get(pairId) && net.links.get(pairId).open);
  return net.links.get(pairId);
}

/**
 * Answers the lookups net sends on ws with answer(lookup) → {seeders: [{peer, serve|far}], reason}:
 * paired messages (leecher links to fake seeders), then lookup_result. Returns the lookups seen.
 */
export function answerLookups(net, ws, answer, { delayMs = 1 } = {}) {
  const seen = [];
  let pair = 0;
  ws.onSend = (m) => {
    if (m.type !== 'lookup') return;
    seen.push(m);
    setTimeout(() => {
      const { seeders = [], reason = 'no_candidates' } = answer(m) || {};
      const peers = [];
      for (const s of seeders) {
        const pairId = `x-${++pair}-${s.peer}`;
        FakePC.onRemote = s.far || ((dc) => new ChunkChannel(dc, { name: `seeder ${s.peer}`, serve: s.serve }));
        ws.receive({ type: 'paired', pair_id: pairId, peer: s.peer, track: m.track, role: 'leecher' });
        FakePC.onRemote = null;
        peers.push({ peer_id: s.peer, pair_id: pairId });
      }
      ws.receive(peers.length > 0
        ? { type: 'lookup_result', track: m.track, peer_id: peers[0].peer_id, pair_id: peers[0].pair_id, peers }
        : { type: 'lookup_result', track: m.track, peer_id: '', reason });
    }, delayMs);
  };
  return seen;
}

export { installFakes, FakeWS, FakePC, tick, until };
