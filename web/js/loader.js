// The loader downloads the chunks of one track as the peer algorithm of
// docs/PROTOCOL.md §8 decides: every request decision comes from schedule()
// (swarm.js, the same rule as the Go reference peer's peer.Schedule); this
// file is the event-driven part around it, as peer/session.go is for Go.
//
// Sources (§8.2): the hub — its DataChannel, or the HTTP chunk endpoint
// while that is down or answered `unavailable` — and up to max_sources peer
// links, each with the bitfield it answered to `have` (null: the whole
// track) and its `holding` updates. `have` goes to every open link at start,
// and to every link that opens later while fewer than max_sources serve
// (ours or other peers' pairs: both sides of a link may request), once per
// link and playback. While fewer sources serve, no `have` is unanswered,
// no lookup is under way, and either no link serves, a source is slow or a
// missing chunk is held by no source, the tracker is asked (lookup with
// want/from/partial, at most once per lookup_retry_ms of media and
// lookup_retry_real_ms, and max_lookups times). The start waits up to
// start_wait_real_ms for a peer unless the tracker said the track is cold
// (no_candidates); `busy` only means "later".
//
// Beyond session.go: a link that answered our `have` holding nothing yet
// still sends us its `holding` updates (we follow the track on it); one
// with chunks makes it a source with that bitfield, so that peers who start
// a track together all use each other (the tracker never offers a current
// partner, and a link is asked `have` once per playback).
//
// Scheduling (§8.3): one range per source in flight; a new request replaces
// it. A hub range ending with chunks missing after a first-copy request
// sets the first-copy hold and triggers a lookup (§8.4).
//
// Slow and lying sources (§8.5): a peer's range with no chunk for
// source_timeout_ms is cancelled and the peer left out for as long (the
// hub's counts as stalled only after HUB_STALL_MS too: it is slow under
// load but does not lie, and re-asking restarts its range); a source that sent
// nothing silence_real_ms after it was first asked, or whose range ended
// without a chunk its bitfield claims, is abandoned and reported `timeout`;
// a chunk failing the manifest's SHA-256 gets its source reported
// `hash_mismatch`, a bitfield not matching the manifest `bad_message`
// (Net.abandon: report, remember, unpair).
//
// What it holds it tells (§8.1): `holding` to the hub and to the links
// following the track, at most every holding_interval_real_ms while chunks
// arrive, and a holding with no bit set when it stops unfinished
// (`completed` and the final holding are Net's, on the store's 'complete').
//
// Every chunk is verified against the manifest before it is stored; its
// bytes are counted by source ('hub', 'http' or 'peer').

import { schedule, firstMissing, chunkStarts, chunkAtMs, withAlgorithmDefaults, failedLink } from './swarm.js';
import { verifyChunk } from './verify.js';
import { chunkStartSec } from './timeline.js';
import { decodeBitfield } from './wire.js';

/** @typedef {import('./api.js').Manifest} Manifest */
/** @typedef {import('./swarm.js').Algorithm} Algorithm */
/** @typedef {import('./swarm.js').SourceState} SourceState */
/** @typedef {import('./swarm.js').Range} Range */
/** @typedef {import('./channel.js').ChunkChannel} ChunkChannel */
/** @typedef {import('./net.js').PeerLink} Link */
/** @typedef {import('./net.js').Net} Net */
/** @typedef {import('./stats.js').SourceName} SourceName */
/** @typedef {import('./wire.js').TextMessage} TextMessage */
/**
 * The HTTP chunk endpoint (api.js CatalogAPI).
 * @typedef {{chunk(id: string, seq: number, signal?: AbortSignal): Promise<Uint8Array<ArrayBuffer>>}} ChunkAPI
 */

/** How often (ms) the loader re-plans without an event (timeouts, playhead). */
export const TICK_MS = 50;
/** A `have` unanswered after this long (ms) no longer counts (session.go: 500 ms). */
export const PROBE_MS = 500;
/** After the hub ended a range with an error, it is asked again after this long (ms), doubling to HUB_RETRY_MAX_MS. */
export const HUB_RETRY_MS = 250;
const HUB_RETRY_MAX_MS = 8000;
/** Chunks fetched at once over HTTP. */
export const HTTP_PARALLEL = 4;
/** The hub's range counts as stalled after at least this long (ms real) without a chunk (session.go hubStallTimeout). */
export const HUB_STALL_MS = 2000;
/** An HTTP chunk fetch that takes longer than this (ms) fails (timeout): the hub range ends and is asked again. */
export const HTTP_CHUNK_TIMEOUT_MS = 10_000;
/** The events of Net the loader follows. */
const NET_EVENTS = ['peer-have_reply', 'peer-holding', 'change'];

/** One sender of the track's chunks and its range in flight. */
class Source {
  /** @param {'hub'|'peer'} kind */
  constructor(kind) {
    this.kind = kind;
    /** @type {SourceState} */
    this.state = { active: false, from: 0, to: 0, next: 0, stalled: false, firstCopy: false };
    /** The request in flight (0: none); replies of older ones are ignored. */
    this.token = 0;
    /** @type {AbortController|null} */
    this.ctrl = null;
    /** When the range last progressed (performance.now()). */
    this.last = 0;
    /** Whether the range's chunks arrive in order (a DataChannel), else in any order (HTTP). */
    this.inOrder = true;
    /** Chunks of the range in flight that arrived. @type {Set<number>} */
    this.got = new Set();
  }
}

/** A peer link serving the track. */
class PeerSource extends Source {
  /**
   * @param {Link} link
   * @param {boolean[]|null} has the chunks it holds; null: all of them
   */
  constructor(link, has) {
    super('peer');
    this.link = link;
    this.has = has;
    /** Verified chunks it delivered. */
    this.received = 0;
    /** When it was first asked for chunks (0: never). */
    this.asked = 0;
    /** It stalled: no new range before then. */
    this.slowUntil = 0;
  }
}

/**
 * Whether a peer source was asked for chunks and sent none yet.
 * @param {{received: number, asked: number}} ps
 */
const silent = (ps) => ps.received === 0 && ps.asked > 0;

export class Loader extends EventTarget {
  /**
   * @param {{manifest: Manifest, store: import('./chunkstore.js').ChunkStore,
   *   stats: import('./stats.js').SessionStats, net?: Net|null, api?: ChunkAPI|null,
   *   config?: Partial<Algorithm>, position?: () => number, log?: (msg: string) => void, tickMs?: number}} opts
   *   net: the peer's network (null: no hub WebSocket, no DataChannel: HTTP only, no P2P);
   *   api: the HTTP chunk endpoint (the hub's fallback); config: the algorithm's constants
   *   (GET /api/config); position: the playhead (s; negative: the track starts that much later)
   */
  constructor({ manifest, store, stats, net = null, api = null, config, position = () => 0, log = () => {}, tickMs = TICK_MS }) {
    super();
    this.m = manifest;
    this.id = manifest.id;
    this.n = manifest.chunks.length;
    this.store = store;
    this.stats = stats;
    this.net = net;
    this.api = api;
    this.cfg = withAlgorithmDefaults(config);
    this.position = position;
    this.log = log;
    this.tickMs = tickMs;
    this.chunkMs = manifest.chunks.map((c) => c.duration_ms);
    this.starts = chunkStarts(this.chunkMs);
    /** Media time is presentation time plus the trimmed encoder delay (chunk 0 starts at 0). */
    this.delayMs = manifest.sample_rate > 0 ? (manifest.encoder_delay / manifest.sample_rate) * 1000 : 0;
    this.hub = new Source('hub');
    /** @type {PeerSource[]} */
    this.peers = [];
    /** Links asked `have`, not answered yet, and when. @type {Map<Link, number>} */
    this.probing = new Map();
    /** Every link asked `have` in this playback (each is asked once). @type {WeakSet<Link>} */
    this.asked = new WeakSet();
    this.probeEnd = 0;
    /** A tracker lookup is under way. */
    this.looking = false;
    /** Links of a lookup not open yet. */
    this.linking = 0;
    /** No lookup before then. */
    this.nextLook = 0;
    /** Lookups made. */
    this.lookups = 0;
    /** The tracker said nobody else holds any chunk of the track. */
    this.cold = false;
    /** No first-copy request before then (§8.4). */
    this.firstCopyHold = 0;
    /** The first chunk of the last first-copy range the hub skipped (-1: none). */
    this.orphan = -1;
    /** No hub request before then (after a hub error). */
    this.hubHold = 0;
    this.hubErrors = 0;
    /** Chunks arrived since the last holding, sent at lastHolding. */
    this.holdingDirty = false;
    this.lastHolding = -Infinity;
    /** A holding was sent: withdraw it if the download stops unfinished. */
    this.told = false;
    /** Chunks delivered and being verified: not asked again meanwhile. @type {Set<number>} */
    this.verifying = new Set();
    /** Peers abandoned in this playback. @type {Set<string>} */
    this.bad = new Set();
    /** Peers that delivered a verified chunk in this playback. @type {Set<string>} */
    this.used = new Set();
    /** Whether the chunk at the playhead (the start) came from a peer; null before it came. @type {boolean|null} */
    this.startFromPeer = null;
    /** The chunk at the playhead was held once: playback could start. */
    this.started = false;
    this.t0 = performance.now();
    /** Only chunks starting before this time (s) are fetched: a prefetch loads just the start. */
    this.limitSec = Infinity;
    this.stopped = false;
    this.finished = false;
    /** @type {number|null} */
    this.timer = null;
    this.kickPending = false;
    this.seq = 0;
    /** @param {Event} e */
    this.onNet = (e) => this.onNetEvent(e);
    store.setTotal(this.id, this.n);
  }

  /** Whether every chunk is held. */
  get complete() {
    return this.store.isComplete(this.id);
  }

  /** Distinct peers that delivered a verified chunk in this playback. */
  get sourcesUsed() {
    return this.used.size;
  }

  /** Whether P2P is on: a hub WebSocket (lookups, holding, links). */
  get p2p() {
    return !!this.net && this.net.p2p;
  }

  /** The source timeout (ms real): source_timeout_ms of media, at least 50 ms. */
  get sourceTimeout() {
    return Math.max(this.cfg.source_timeout_ms, 50);
  }

  /** Re-plans soon (coalesced): call it on any event. Starts the loader on the first call. */
  kick() {
    if (this.stopped || this.finished) return;
    if (this.timer === null) this.start();
    if (this.kickPending) return;
    this.kickPending = true;
    queueMicrotask(() => {
      this.kickPending = false;
      this.step();
    });
  }

  start() {
    this.t0 = performance.now();
    this.timer = setInterval(() => this.step(), this.tickMs);
    if (this.net) for (const t of NET_EVENTS) this.net.addEventListener(t, this.onNet);
    if (this.p2p && !this.complete) this.probe(this.t0);
  }

  /** Stops every range in flight and withdraws a partial download from the tracker. */
  stop() {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = null;
    if (this.net) for (const t of NET_EVENTS) this.net.removeEventListener(t, this.onNet);
    this.cancelRanges();
    if (this.net && this.told && !this.complete) this.net.withdraw(this.id, this.n);
  }

  /** The chunks held (verified, in the store). */
  heldFlags() {
    const held = this.store.held(this.id);
    const out = new Array(this.n).fill(false);
    for (const seq of held.keys()) if (seq >= 0 && seq < this.n) out[seq] = true;
    return out;
  }

  /**
   * The playhead in media ms (0 before playback; negative for a track that
   * plays later, chained after the one playing: minus the time until it
   * starts, §8.3). When the chunk there needs the previous one (bit
   * reservoir), that one's start.
   * @param {boolean[]} present
   */
  playheadMs(present) {
    const pos = this.position();
    if (pos < 0) return pos * 1000;
    if (!(pos > 0)) return 0;
    let ms = pos * 1000 + this.delayMs;
    const c = chunkAtMs(this.starts, ms);
    if (c > 0 && c < this.n && this.m.chunks[c].reservoir && !present[c - 1]) ms = this.starts[c - 1];
    return ms;
  }

  /** One decision round (cheap): check the sources, search peers, request what schedule() says, tell holdings. */
  step() {
    if (this.stopped || this.finished) return;
    const now = performance.now();
    const held = this.heldFlags();
    if (held.every(Boolean)) {
      this.finish();
      return;
    }
    const present = held.map((h, i) => h || this.verifying.has(i));
    this.checkPeers(now);
    if (this.probing.size > 0 && now > this.probeEnd) this.probing.clear();
    const playhead = this.playheadMs(present);
    const at = chunkAtMs(this.starts, playhead);
    if (!this.started && at < this.n && held[at]) this.started = true;
    let wanted = present;
    if (this.limitSec !== Infinity) wanted = present.map((p, c) => p || chunkStartSec(this.m, c) >= this.limitSec);
    const p2p = this.p2p;
    const needed = firstMissing(wanted, 0) < this.n;
    if (p2p && needed && this.peers.length + this.linking < this.cfg.max_sources) this.probe(now); // links opened since
    if (p2p && needed && this.wantsPeers(now, wanted, at, playhead)) this.startLookup(now, firstMissing(wanted, at));
    const peers = [...this.peers];
    const d = schedule(this.cfg.sched, {
      chunkMs: this.chunkMs,
      present: wanted,
      playheadMs: playhead,
      hub: this.hubState(now),
      peers: peers.map((ps) => {
        const state = this.stateOf(ps, now);
        state.stalled = state.stalled || now < ps.slowUntil;
        return { state, has: ps.has };
      }),
      p2p,
      waiting: this.waiting(now, p2p),
      firstCopyHold: now < this.firstCopyHold,
      startLate: p2p && !this.started && now - this.t0 >= this.cfg.start_rescue_real_ms,
    });
    if (d.hub && now >= this.hubHold) {
      if (d.hubFirstCopy && d.hub.from === this.orphan) {
        // Skipped once already and still held by no source: the peer that got it is not linked to
        // us. Ask for it plainly (§8.4).
        this.requestHub({ from: d.hub.from, to: d.hub.from + 1 }, false, now);
      } else {
        this.requestHub(d.hub, d.hubFirstCopy, now);
      }
    }
    d.peers.forEach((r, i) => {
      if (r && this.peers.includes(peers[i])) this.requestPeer(peers[i], r, now);
    });
    this.pushHolding(now, held);
  }

  /**
   * The scheduler's view of src's range.
   * @param {Source} src
   * @param {number} now
   * @returns {SourceState}
   */
  stateOf(src, now) {
    return { ...src.state, stalled: src.state.active && now - src.last > this.sourceTimeout };
  }

  /**
   * The scheduler's view of the hub's range: stalled after HUB_STALL_MS real at least.
   * @param {number} now
   * @returns {SourceState}
   */
  hubState(now) {
    const st = this.hub.state;
    return { ...st, stalled: st.active && now - this.hub.last > Math.max(this.sourceTimeout, HUB_STALL_MS) };
  }

  /**
   * Whether the start still waits for peers (§8.2.3).
   * @param {number} now
   * @param {boolean} p2p
   */
  waiting(now, p2p) {
    if (!p2p || this.started || this.cold || now - this.t0 >= this.cfg.start_wait_real_ms) return false;
    return this.probing.size > 0 || this.looking || this.linking > 0;
  }

  /**
   * Whether to ask the tracker for more peers now (§8.2.2): fewer than
   * max_sources serve or are being connected, no search is under way, the
   * retry time has come, the page's lookups are not held after failed links
   * (LookupBackoff), and no link serves, a source is slow, or a missing
   * chunk is held by no source.
   * @param {number} now
   * @param {boolean[]} present the chunks held or not wanted
   * @param {number} at the chunk at the playhead
   * @param {number} playheadMs the playhead (ms)
   */
  wantsPeers(now, present, at, playheadMs) {
    if (this.looking || this.probing.size > 0 || this.peers.length + this.linking >= this.cfg.max_sources || now < this.nextLook) return false;
    if (this.net && this.net.lookupBackoff.holds(now)) return false;
    if (this.peers.length === 0) return true;
    if (this.peers.some((ps) => now < ps.slowUntil)) return true;
    // Holes near the playhead only (in_order_ms): first copies fill the rest.
    for (let c = firstMissing(present, at); c < this.n && this.starts[c] < playheadMs + this.cfg.sched.in_order_ms; c++) {
      if (!present[c] && !this.peers.some((ps) => ps.has === null || ps.has[c])) return true;
    }
    return false;
  }

  /**
   * Drops closed links, cancels stalled ranges, abandons silent peers.
   * @param {number} now
   */
  checkPeers(now) {
    const timeout = this.sourceTimeout;
    const silence = Math.max(timeout, this.cfg.silence_real_ms);
    for (const ps of [...this.peers]) {
      if (!ps.link.open) {
        this.dropPeer(ps);
      } else if (ps.received === 0 && ps.asked > 0 && now - ps.asked > silence) {
        this.abandon(ps.link, 'timeout', `nothing in ${Math.round(now - ps.asked)} ms`);
      } else if (ps.state.active && now - ps.last > timeout) {
        // A slow range: its chunks go to other sources; no new range for as long.
        if (globalThis.ZDEBUG) this.log(`peer ${ps.link.peer}: range [${ps.state.from},${ps.state.to}) stalled`);
        this.cancel(ps);
        ps.slowUntil = now + timeout;
      }
    }
  }

  /**
   * Sends `have` to every open link not asked yet in this playback: at the
   * start, and as links open (ours, or those other peers opened to us).
   * @param {number} now
   */
  probe(now) {
    if (!this.net) return;
    for (const link of this.net.openLinks()) {
      if (!this.asked.has(link) && !this.isBad(link.peer) && !this.usesRemote(link.peer)) this.ask(link, now);
    }
  }

  /**
   * Asks link `have` for the track; the answer is awaited until the probe deadline.
   * @param {Link} link
   * @param {number} now
   */
  ask(link, now) {
    this.asked.add(link);
    if (!link.open || !link.channel) return;
    link.channel.sendText('have', { track: this.id });
    this.probing.set(link, now);
    this.probeEnd = now + PROBE_MS;
  }

  /** @param {string} peer */
  isBad(peer) {
    return this.bad.has(peer) || (!!this.net && this.net.isBad(peer));
  }

  /**
   * Whether peer serves us or is being asked already.
   * @param {string} peer
   */
  usesRemote(peer) {
    if (this.peers.some((ps) => ps.link.peer === peer)) return true;
    for (const l of this.probing.keys()) if (l.peer === peer) return true;
    return false;
  }

  /**
   * Whether link may become a source now.
   * @param {Link} link
   */
  keep(link) {
    return !this.complete && link.open && !this.isBad(link.peer) && !this.usesRemote(link.peer) && this.peers.length < this.cfg.max_sources;
  }

  /** @param {Link} link */
  peerOf(link) {
    return this.peers.find((ps) => ps.link === link) || null;
  }

  /**
   * @param {Link} link
   * @param {boolean[]|null} has
   */
  addPeer(link, has) {
    this.peers.push(new PeerSource(link, has));
    if (globalThis.ZDEBUG) this.log(`peer ${link.peer}: source of ${this.id.slice(0, 8)} (${has === null ? 'whole track' : has.filter(Boolean).length + ' chunks'})`);
  }

  /**
   * Asks the tracker for more peers (in the background).
   * @param {number} now
   * @param {number} from the next chunk needed
   */
  startLookup(now, from) {
    const net = this.net;
    if (!net) return;
    if (this.lookups >= this.cfg.max_lookups) {
      this.nextLook = now + 3600e3;
      return;
    }
    this.looking = true;
    this.lookups++;
    this.nextLook = now + Math.max(this.cfg.lookup_retry_ms, this.cfg.lookup_retry_real_ms);
    const want = Math.max(1, this.cfg.max_sources - this.peers.length - this.linking);
    net.lookup(this.id, { want, from }).then((r) => this.onLookup(r)).catch((err) => {
      this.looking = false;
      this.log(`lookup of ${this.id.slice(0, 8)}: ${err && err.message ? err.message : err}`);
    });
  }

  /** @param {{reason: string, links: Link[]}} r */
  onLookup(r) {
    if (this.stopped) return;
    this.looking = false;
    this.cold = r.reason === 'no_candidates';
    this.linking += r.links.length;
    for (const link of r.links) link.ready().then(() => this.onLink(link, true), (err) => this.onLink(link, false, failedLink(err)));
    this.kick();
  }

  /**
   * A link of a lookup opened (ok) or did not.
   * @param {Link} link
   * @param {boolean} ok
   * @param {boolean} [failed] it did not open for a failure that counts in the lookup backoff (failedLink)
   */
  onLink(link, ok, failed = false) {
    this.linking--;
    if (this.net && !this.stopped) {
      if (ok) this.net.lookupBackoff.opened();
      else if (failed) this.net.lookupBackoff.failed(performance.now(), this.cfg);
    }
    if (this.stopped || this.finished || !ok) {
      this.kick();
      return;
    }
    if (this.asked.has(link) || this.usesRemote(link.peer)) return; // asked already (it opened before this event)
    if (!this.keep(link)) {
      if (this.net) this.net.unpair(link); // not needed: free the seeder's slot
      return;
    }
    this.ask(link, performance.now());
    this.kick();
  }

  /** @param {Event} e */
  onNetEvent(e) {
    if (this.stopped) return;
    if (e.type === 'change') {
      this.kick();
      return;
    }
    const { link, msg } = /** @type {CustomEvent<{link: Link, msg: TextMessage}>} */ (e).detail;
    if (!msg || msg.track !== this.id) return;
    if (e.type === 'peer-have_reply') this.onHaveReply(link, msg);
    else if (e.type === 'peer-holding') this.onHolding(link, msg);
    this.kick();
  }

  /**
   * The bitfield of a have_reply or holding, checked against the manifest (null: it does not match).
   * @param {TextMessage} msg
   */
  decodeHas(msg) {
    return msg.chunks === this.n ? decodeBitfield(msg.have, this.n) : null;
  }

  /**
   * @param {Link} link
   * @param {TextMessage} msg
   */
  onHaveReply(link, msg) {
    if (!this.probing.has(link)) return;
    this.probing.delete(link);
    /** @type {boolean[]|null} */
    let has = null;
    if (msg.ok === true) {
      has = null;
    } else if ((typeof msg.have === 'string' && msg.have !== '') || (msg.chunks !== undefined && msg.chunks !== 0)) {
      has = this.decodeHas(msg);
      if (!has) {
        this.abandon(link, 'bad_message', `have_reply bitfield of ${msg.chunks} chunks does not match the manifest (${this.n})`);
        return;
      }
    } else {
      return; // holds nothing, or no slot for us
    }
    if (this.keep(link)) this.addPeer(link, has);
  }

  /**
   * A link tells which chunks of the track it holds now.
   * @param {Link} link
   * @param {TextMessage} msg
   */
  onHolding(link, msg) {
    const ps = this.peerOf(link);
    if (ps && ps.has === null) return; // it holds everything already
    if (!ps && (this.probing.has(link) || !this.p2p)) return;
    const has = this.decodeHas(msg);
    if (!has) {
      this.abandon(link, 'bad_message', `holding bitfield of ${msg.chunks} chunks does not match the manifest (${this.n})`);
      return;
    }
    if (ps) ps.has = has;
    else if (has.some(Boolean) && this.keep(link)) this.addPeer(link, has);
  }

  /**
   * Starts a range on src (replacing its range in flight).
   * @param {Source} src
   * @param {Range} r
   * @param {boolean} firstCopy
   * @param {boolean} inOrder
   * @param {number} now
   */
  begin(src, r, firstCopy, inOrder, now) {
    src.token = ++this.seq;
    src.state = { active: true, from: r.from, to: r.to, next: r.from, stalled: false, firstCopy };
    src.last = now;
    src.inOrder = inOrder;
    src.got = new Set();
    const old = src.ctrl;
    src.ctrl = new AbortController();
    return { token: src.token, signal: src.ctrl.signal, old };
  }

  /**
   * The delivery function of range token of src: progress, then verification.
   * @param {Source} src
   * @param {number} token
   * @param {SourceName} via
   * @param {Promise<void>[]} deliveries
   * @returns {(seq: number, bytes: Uint8Array<ArrayBuffer>) => void}
   */
  onChunkOf(src, token, via, deliveries) {
    return (seq, bytes) => {
      if (this.stopped) return;
      const st = src.state;
      if (src.token === token && st.active && seq >= st.from && seq < st.to) {
        src.got.add(seq);
        if (src.inOrder) {
          if (seq >= st.next) st.next = seq + 1;
        } else {
          while (st.next < st.to && (src.got.has(st.next) || this.store.has(this.id, st.next))) st.next++;
        }
        src.last = performance.now();
      }
      deliveries.push(this.deliver(src, via, seq, bytes).catch((err) => this.log(`chunk ${seq} of ${this.id.slice(0, 8)}: ${err && err.message ? err.message : err}`)));
    };
  }

  /**
   * When range token of src settles (after its chunks are verified), handles its end.
   * @param {Source} src
   * @param {number} token
   * @param {Promise<void>} p
   * @param {Promise<void>[]} deliveries
   */
  settle(src, token, p, deliveries) {
    p.then(() => '', (err) => (err && err.name === 'AbortError' ? 'aborted' : String((err && err.code) || (err && err.message) || 'failed')))
      .then((code) => Promise.all(deliveries).then(() => code))
      .then((code) => this.onEnd(src, token, code))
      .catch((err) => this.log(`loader ${this.id.slice(0, 8)}: ${err && err.message ? err.message : err}`));
  }

  /**
   * Asks the hub for r: over its DataChannel (first copies when firstCopy),
   * else over HTTP.
   * @param {Range} r
   * @param {boolean} firstCopy
   * @param {number} now
   */
  requestHub(r, firstCopy, now) {
    const ch = this.net ? this.net.usableHubChannel() : null;
    if (!ch && !this.api) return;
    const src = this.hub;
    const fc = !!ch && firstCopy;
    const { token, signal, old } = this.begin(src, r, fc, !!ch, now);
    if (!firstCopy && this.peers.length > 0) this.stats.emergencyFetches += r.to - r.from;
    /** @type {Promise<void>[]} */
    const deliveries = [];
    const via = ch ? 'hub' : 'http';
    if (globalThis.ZDEBUG) this.log(`${via} [${r.from},${r.to})${fc ? ' first copies' : ''} of ${this.id.slice(0, 8)}`);
    const onChunk = this.onChunkOf(src, token, via, deliveries);
    const p = ch ? ch.request(this.id, r.from, r.to, onChunk, signal, { firstCopy: fc }) : this.fetchHTTP(r, onChunk, signal);
    if (old) old.abort(); // an HTTP range; a DataChannel's was replaced by the request
    this.settle(src, token, p, deliveries);
  }

  /**
   * Asks peer ps for r.
   * @param {PeerSource} ps
   * @param {Range} r
   * @param {number} now
   */
  requestPeer(ps, r, now) {
    const ch = ps.link.channel;
    if (!ch || !ps.link.open) {
      this.dropPeer(ps);
      return;
    }
    const { token, signal, old } = this.begin(ps, r, false, true, now);
    if (ps.asked === 0) ps.asked = now;
    /** @type {Promise<void>[]} */
    const deliveries = [];
    if (globalThis.ZDEBUG) this.log(`peer ${ps.link.peer} [${r.from},${r.to}) of ${this.id.slice(0, 8)}`);
    const p = ch.request(this.id, r.from, r.to, this.onChunkOf(ps, token, 'peer', deliveries), signal);
    if (old) old.abort();
    this.settle(ps, token, p, deliveries);
  }

  /**
   * Fetches r over HTTP, HTTP_PARALLEL chunks at once, skipping those held.
   * @param {Range} r
   * @param {(seq: number, bytes: Uint8Array<ArrayBuffer>) => void} onChunk
   * @param {AbortSignal} signal
   */
  async fetchHTTP(r, onChunk, signal) {
    const api = /** @type {ChunkAPI} */ (this.api); // requestHub checked
    let next = r.from;
    let failed = false;
    const worker = async () => {
      while (next < r.to && !signal.aborted && !failed) {
        const seq = next++;
        if (this.store.has(this.id, seq)) continue;
        try {
          const bytes = await api.chunk(this.id, seq, AbortSignal.any([signal, AbortSignal.timeout(HTTP_CHUNK_TIMEOUT_MS)]));
          if (signal.aborted) return;
          onChunk(seq, bytes);
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(HTTP_PARALLEL, r.to - r.from) }, worker));
    if (signal.aborted) throw new DOMException('aborted', 'AbortError');
  }

  /**
   * A range ended: done (code ''), or with an error code.
   * @param {Source} src
   * @param {number} token
   * @param {string} code
   */
  onEnd(src, token, code) {
    if (this.stopped || src.token !== token) return;
    const now = performance.now();
    const st = { ...src.state };
    src.state.active = false;
    src.token = 0;
    src.ctrl = null;
    if (!(src instanceof PeerSource)) {
      if (code) {
        // e.g. unavailable (store down, hub shutting down), or HTTP failing: not at every tick.
        this.hubErrors++;
        this.hubHold = now + Math.min(HUB_RETRY_MS * 2 ** (this.hubErrors - 1), HUB_RETRY_MAX_MS);
        if (code === 'unavailable' && this.net) this.net.markHubUnavailable();
        this.log(`hub: chunks ${st.from}..${st.to - 1} of ${this.id.slice(0, 8)}: ${code}`);
      } else {
        this.hubErrors = 0;
        if (st.firstCopy && !this.heldFlags()[st.from]) {
          // The hub skipped the first chunk asked: it gave it to another peer. Get such chunks
          // from peers; look for more now. (A range cut short after its first chunk only met
          // the hub's stripe limit.)
          this.firstCopyHold = now + this.cfg.first_copy_retry_ms;
          this.orphan = st.from;
          if (this.nextLook > now) this.nextLook = now;
        }
      }
      this.kick();
      return;
    }
    const ps = src;
    if (!this.peers.includes(ps)) return;
    if (code) {
      if (globalThis.ZDEBUG) this.log(`peer ${ps.link.peer}: range [${st.from},${st.to}): ${code}`);
      this.dropPeer(ps);
      this.kick();
      return;
    }
    const held = this.heldFlags();
    for (let c = st.from; c < st.to; c++) {
      if (!held[c] && (ps.has === null || ps.has[c])) {
        // It claimed this chunk and did not send it: a lying peer is a silent one (§8.5).
        this.abandon(ps.link, 'timeout', `range [${st.from},${st.to}) done without chunk ${c} it holds`);
        break;
      }
    }
    this.kick();
  }

  /**
   * Verifies and stores one chunk src delivered (over via).
   * @param {Source} src
   * @param {SourceName} via
   * @param {number} seq
   * @param {Uint8Array<ArrayBuffer>} bytes
   * @returns {Promise<void>}
   */
  async deliver(src, via, seq, bytes) {
    const ps = src instanceof PeerSource ? src : null;
    if (this.stopped || seq < 0 || seq >= this.n) return;
    if (this.store.has(this.id, seq) || this.verifying.has(seq)) {
      if (ps) ps.received++;
      return;
    }
    this.verifying.add(seq);
    let bad;
    try {
      bad = await verifyChunk(this.m, seq, bytes);
    } finally {
      this.verifying.delete(seq);
    }
    if (this.stopped) return;
    if (bad) {
      this.stats.badChunk();
      this.log(`${ps ? 'peer ' + ps.link.peer : via}: rejected ${bad}`);
      if (ps) this.abandon(ps.link, 'hash_mismatch', bad);
      else this.kick();
      return;
    }
    if (ps) {
      ps.received++;
      this.used.add(ps.link.peer);
    }
    if (this.store.has(this.id, seq)) return;
    if (!this.started) {
      const at = chunkAtMs(this.starts, this.playheadMs(this.heldFlags()));
      if (seq === at) {
        this.started = true;
        this.startFromPeer = !!ps;
      }
    }
    this.store.put(this.id, seq, bytes, via);
    this.stats.received(via, bytes.length);
    if (ps && ps.link.relayed) this.stats.relayed(bytes.length);
    this.holdingDirty = true;
    if (globalThis.ZDEBUG) this.log(`got ${seq} from ${ps ? 'peer ' + ps.link.peer : via}`);
    this.dispatchEvent(new CustomEvent('chunk', { detail: { seq, source: via } }));
    if (this.complete) this.finish();
    else this.kick();
  }

  /**
   * Tells the hub and the links following the track what is held, at most every holding_interval_real_ms.
   * @param {number} now
   * @param {boolean[]} held
   */
  pushHolding(now, held) {
    if (!this.holdingDirty || !this.net || !this.p2p || now - this.lastHolding < this.cfg.holding_interval_real_ms) return;
    this.holdingDirty = false;
    this.lastHolding = now;
    this.told = true;
    this.net.holding(this.id, held);
  }

  /** Every chunk is held: nothing more to fetch (Net sends completed). */
  finish() {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.timer);
    this.timer = null;
    this.cancelRanges();
    if (this.net) for (const t of NET_EVENTS) this.net.removeEventListener(t, this.onNet);
    // A source asked and silent is still judged at silence_real_ms (§8.5),
    // however soon the others completed the track, as the Go peer does
    // while its playback goes on; then (or at stop) the checks end. One
    // asked less than a source timeout ago did not have its time: spared.
    const now = performance.now();
    for (const ps of [...this.peers]) if (silent(ps) && now - ps.asked <= this.sourceTimeout) this.dropPeer(ps);
    if (this.peers.some(silent)) {
      this.timer = setInterval(() => {
        this.checkPeers(performance.now());
        if (!this.peers.some(silent)) {
          clearInterval(this.timer);
          this.timer = null;
        }
      }, this.tickMs);
    }
  }

  /**
   * Stops src's range in flight (a cancel goes to its sender).
   * @param {Source} src
   */
  cancel(src) {
    if (!src.state.active) return;
    src.state.active = false;
    src.token = 0;
    const ctrl = src.ctrl;
    src.ctrl = null;
    if (ctrl) ctrl.abort();
  }

  cancelRanges() {
    this.cancel(this.hub);
    for (const ps of this.peers) this.cancel(ps);
  }

  /**
   * Stops using a peer source (its link stays).
   * @param {PeerSource} ps
   */
  dropPeer(ps) {
    this.cancel(ps);
    const i = this.peers.indexOf(ps);
    if (i >= 0) this.peers.splice(i, 1);
  }

  /**
   * The remote of link misbehaved: it is not used again, reported and unpaired (Net.abandon).
   * @param {Link} link
   * @param {string} reason
   * @param {string} why
   */
  abandon(link, reason, why) {
    this.probing.delete(link);
    const ps = this.peerOf(link);
    if (ps) this.dropPeer(ps);
    if (this.bad.has(link.peer)) return;
    this.bad.add(link.peer);
    if (this.net) this.net.abandon(link, this.id, reason, why);
  }

  /**
   * Whether every chunk from the one playing at position (s) to the end is held.
   * @param {number} position
   */
  completeFrom(position) {
    const held = this.heldFlags();
    const at = chunkAtMs(this.starts, position > 0 ? position * 1000 + this.delayMs : 0);
    return firstMissing(held, at) >= this.n;
  }
}
