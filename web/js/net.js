// The network side of a peer (docs/PROTOCOL.md): the WebSocket to the hub
// (hello/welcome, reconnect with backoff), the hub PeerConnection answering
// the hub's offer with its "chunks" DataChannel, tracker lookups, and direct
// PeerConnections to other peers — as leecher (we offer and open the channel)
// or as seeder (we answer and serve complete tracks, within an upload cap).
//
// As leecher, each link is watched for a misbehaving seeder: a chunk failing
// the manifest's SHA-256 (hash_mismatch), a message breaking the chunk
// protocol (bad_message) or a range delivering nothing for
// PEER_RANGE_TIMEOUT_MS (timeout). Such a link is closed at once (unpair),
// its peer remembered as bad (the MAX_BAD_PEERS most recent) and reported to
// the hub (`report`, once per peer and track; docs/PROTOCOL.md §2.3); the
// loader carries on with the other peers and the hub. A later pairing with a
// remembered bad peer is ended at once, unused.

import { ChunkChannel, channelSource } from './channel.js';
import { CHANNEL_LABEL, validTrackId } from './wire.js';
import { ABANDONED } from './loader.js';

/** @typedef {import('./channel.js').ServeHooks} ServeHooks */
/** @typedef {import('./loader.js').OnChunk} OnChunk */
/** @typedef {import('./loader.js').Source} Source */
/** @typedef {import('./wire.js').TextMessage} Message a decoded signaling message (docs/PROTOCOL.md §2) */

/** Default number of leechers served at once. */
export const DEFAULT_UPLOAD_CAP = 4;
/** Buffer (s) under which the hub is asked for chunks even when peers serve the track. */
export const EMERGENCY_SEC = 3;
/** Most remote ICE candidates queued before the remote description. */
const MAX_QUEUED_CANDIDATES = 64;
/** Most lookups per track per page session (one every LOOKUP_RETRY_MS). */
const MAX_LOOKUPS_PER_TRACK = 8;
const LOOKUP_RETRY_MS = 4000;
/** A peer link that is not open after this long is dropped. */
const PEER_CONNECT_TIMEOUT_MS = 10000;
/** A seeder link that served nothing for this long tells the hub its upload is done. */
export const UPLOAD_IDLE_MS = 30000;
/** After the hub answers a chunk request `unavailable`, it is not asked again for this long (HTTP is used). */
export const HUB_UNAVAILABLE_MS = 5000;
/** After `error rate_limited`, lookups and stats wait this long. */
export const RATE_LIMIT_BACKOFF_MS = 2000;
/**
 * A range requested from a peer that delivers no chunk for this long (real
 * time, reset by each chunk) gets its seeder abandoned and reported as
 * `timeout`. A chunk is about one second of audio (at most 64 KiB), so such
 * a seeder is several times slower than the playback — useless — while the
 * hub rescue (under EMERGENCY_SEC of buffer) keeps the playback going
 * meanwhile. The hub never drops a seeder for everyone on timeouts (a
 * departing or overloaded seeder times out too): it only stops offering it
 * to the reporter for that track.
 */
export const PEER_RANGE_TIMEOUT_MS = 4000;
/** Most peers remembered as bad (the oldest is forgotten first). */
export const MAX_BAD_PEERS = 64;
/** Longest peer id a `report` may name (signaling.MaxPeerIDLen). */
const MAX_PEER_ID_LEN = 64;
/** Most (peer, track) reports remembered, so that each is sent once. */
const MAX_REPORTED = 4 * MAX_BAD_PEERS;
/** Reasons of a `report` to the hub. */
export const REPORT_REASONS = Object.freeze(['hash_mismatch', 'bad_message', 'timeout']);

/**
 * The WebSocket URL of the hub serving this page.
 * @param {{protocol: string, host: string}} [loc]
 */
export function defaultWsURL(loc = globalThis.location) {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws`;
}

/**
 * Reconnect delay (ms) after `attempt` failed attempts: 0.5 s doubling to 15 s, with ±25 % jitter.
 * @param {number} attempt
 * @param {() => number} [rand]
 */
export function backoffDelay(attempt, rand = Math.random) {
  const base = Math.min(15000, 500 * 2 ** Math.max(0, attempt));
  return Math.round(base * (0.75 + rand() * 0.5));
}

/** A PeerConnection to another peer for one pair. */
class PeerLink {
  /**
   * @param {Net} net
   * @param {{pairId: string, peer: string, track: string, role: 'leecher'|'seeder'}} pair
   */
  constructor(net, { pairId, peer, track, role }) {
    this.net = net;
    this.pairId = pairId;
    this.peer = peer;
    this.track = track;
    this.role = role;
    /** @type {ChunkChannel|null} */
    this.channel = null;
    /** Remote ICE candidates received before the remote description. @type {RTCIceCandidateInit[]} */
    this.queued = [];
    this.closed = false;
    /** Seeder: the chunks of the pair's track sent on this link, and whether upload_done was sent. */
    this.sentSeqs = new Set();
    this.uploadDone = false;
    /** @type {number|null} */
    this.idleTimer = null;
    this.pc = new RTCPeerConnection({ iceServers: net.iceServers || [] });
    this.pc.addEventListener('icecandidate', (e) => {
      if (e.candidate) net.send({ type: 'signal', to: peer, pair_id: pairId, candidate: e.candidate.toJSON() });
    });
    this.pc.addEventListener('connectionstatechange', () => {
      if (this.pc.connectionState === 'failed' || this.pc.connectionState === 'closed') this.close(true);
    });
    this.timer = setTimeout(() => {
      if (!this.channel || !this.channel.open) {
        net.log(`peer ${peer}: not connected after ${PEER_CONNECT_TIMEOUT_MS} ms`);
        this.close(true);
      }
    }, PEER_CONNECT_TIMEOUT_MS);
    if (role === 'leecher') {
      this.attach(this.pc.createDataChannel(CHANNEL_LABEL));
      this.offer().catch((err) => {
        net.log(`peer ${peer}: offer: ${err.message}`);
        this.close(true);
      });
    } else {
      this.pc.addEventListener('datachannel', (e) => {
        if (e.channel.label === CHANNEL_LABEL && !this.channel) this.attach(e.channel);
      });
    }
  }

  /** @param {RTCDataChannel} dc */
  attach(dc) {
    const net = this.net;
    /** @type {ServeHooks} */
    const serve = this.role === 'seeder' ? { ...net.serve, sent: (t, seq) => this.onSent(t, seq) } : net.serve;
    this.channel = new ChunkChannel(dc, { name: `peer ${this.peer}`, serve, log: net.log });
    this.channel.addEventListener('close', () => this.close(true));
    if (this.role === 'leecher') {
      this.channel.addEventListener('bad_message', (e) => this.abandon('bad_message', /** @type {CustomEvent<{message: string}>} */ (e).detail.message));
    }
    this.channel.ready().then(() => {
      clearTimeout(this.timer);
      if (this.role === 'seeder') this.armIdle();
      net.changed();
    }, () => {});
  }

  /**
   * Seeder: a chunk was sent; once every chunk of the pair's track went out, the upload is done.
   * @param {string} track
   * @param {number} seq
   */
  onSent(track, seq) {
    if (track !== this.track || this.uploadDone) return;
    this.sentSeqs.add(seq);
    this.armIdle();
    const n = this.net.serve.chunkCount(track);
    if (n > 0 && this.sentSeqs.size >= n) this.finishUpload();
  }

  /** Seeder: (re)starts the idle timer that ends an upload the leecher stopped using. */
  armIdle() {
    clearTimeout(this.idleTimer);
    if (this.uploadDone || this.closed) return;
    this.idleTimer = setTimeout(() => {
      if (this.channel && this.channel.serving.size > 0) this.armIdle();
      else this.finishUpload();
    }, this.net.uploadIdleMs);
  }

  /** Seeder: tells the hub (upload_done) that this pair's upload is over, freeing the slot it counts. */
  finishUpload() {
    if (this.role !== 'seeder' || this.uploadDone || this.closed) return;
    this.uploadDone = true;
    clearTimeout(this.idleTimer);
    this.net.send({ type: 'upload_done', pair_id: this.pairId });
    this.net.changed();
  }

  async offer() {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    const d = /** @type {RTCSessionDescription} */ (this.pc.localDescription); // set just above
    this.net.send({ type: 'signal', to: this.peer, pair_id: this.pairId, sdp: { type: d.type, sdp: d.sdp } });
  }

  /** @param {Message} m a `signal` message of this pair */
  async onSignal(m) {
    if (m.sdp) {
      await this.pc.setRemoteDescription(m.sdp);
      for (const c of this.queued.splice(0)) await this.pc.addIceCandidate(c).catch(() => {});
      if (m.sdp.type === 'offer') {
        await this.pc.setLocalDescription(await this.pc.createAnswer());
        const d = /** @type {RTCSessionDescription} */ (this.pc.localDescription); // set just above
        this.net.send({ type: 'signal', to: this.peer, pair_id: this.pairId, sdp: { type: d.type, sdp: d.sdp } });
      }
    } else if (m.candidate) {
      if (!this.pc.remoteDescription) {
        if (this.queued.length < MAX_QUEUED_CANDIDATES) this.queued.push(m.candidate);
      } else {
        await this.pc.addIceCandidate(m.candidate).catch(() => {});
      }
    }
  }

  get open() {
    return !this.closed && !!this.channel && this.channel.open;
  }

  /**
   * Leecher: the seeder misbehaved (reason: one of REPORT_REASONS).
   * Remembers the peer as bad, reports it to the hub, then closes the link
   * (unpair). Ranges in flight on it reject with code ABANDONED. The report
   * goes first so that the hub has it before the lookup that closing the
   * link may start at once (else the hub could offer the same seeder again).
   * @param {string} reason
   * @param {string} [why]
   */
  abandon(reason, why = '') {
    if (this.closed || this.role !== 'leecher') return;
    this.abandoned = reason;
    this.net.log(`peer ${this.peer}: abandoned (${reason}${why ? ': ' + why : ''})`);
    this.net.stats.peerAbandoned();
    this.net.markBad(this.peer, this.track, reason);
    this.close(true);
  }

  /**
   * Leecher: requests chunks [from, to) of track on this link (see
   * ChunkChannel.request), abandoning the seeder when a chunk fails
   * verification (onChunk resolves to what is wrong) or when no chunk comes
   * for rangeTimeoutMs.
   * @param {string} track
   * @param {number} from
   * @param {number} to
   * @param {OnChunk} onChunk
   * @param {AbortSignal} [signal]
   */
  request(track, from, to, onChunk, signal) {
    if (!this.channel) return Promise.reject(new Error(`peer ${this.peer}: no channel`));
    /** @type {number|null} */
    let timer = null;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.abandon('timeout', `no chunk of [${from},${to}) in ${this.net.rangeTimeoutMs} ms`), this.net.rangeTimeoutMs);
    };
    /** @type {OnChunk} */
    const watched = (seq, bytes) => {
      arm();
      const p = Promise.resolve(onChunk(seq, bytes));
      p.then((bad) => {
        if (bad) this.abandon('hash_mismatch', bad);
      }, () => {});
      return p;
    };
    arm();
    return this.channel.request(track, from, to, watched, signal).catch((err) => {
      if (this.abandoned) throw Object.assign(new Error(`peer ${this.peer} abandoned: ${this.abandoned}`), { code: ABANDONED });
      throw err;
    }).finally(() => clearTimeout(timer));
  }

  /**
   * Closes the link; tells the hub (unpair) unless the hub told us.
   * @param {boolean} tellHub
   */
  close(tellHub) {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.idleTimer);
    if (this.channel) this.channel.close();
    try {
      this.pc.close();
    } catch { /* closed */ }
    if (tellHub) this.net.send({ type: 'unpair', pair_id: this.pairId });
    this.net.links.delete(this.pairId);
    this.net.changed();
  }
}

export class Net extends EventTarget {
  /**
   * @param {{url?: string, store: import('./chunkstore.js').ChunkStore, stats: import('./stats.js').SessionStats,
   *   cached?: () => string[], uploadCap?: number, log?: (msg: string) => void, statsIntervalMs?: number,
   *   serve?: Partial<ServeHooks>|null, uploadIdleMs?: number, rangeTimeoutMs?: number}} opts
   *   serve: overrides of the chunk serving hooks; uploadIdleMs: see UPLOAD_IDLE_MS;
   *   rangeTimeoutMs: see PEER_RANGE_TIMEOUT_MS
   */
  constructor({ url = defaultWsURL(), store, stats, cached = () => [], uploadCap = DEFAULT_UPLOAD_CAP, log = () => {},
    statsIntervalMs = 2000, serve = null, uploadIdleMs = UPLOAD_IDLE_MS, rangeTimeoutMs = PEER_RANGE_TIMEOUT_MS }) {
    super();
    this.url = url;
    this.store = store;
    this.stats = stats;
    this.cached = cached;
    this.uploadCap = uploadCap;
    this.log = log;
    this.statsIntervalMs = statsIntervalMs;
    this.uploadIdleMs = uploadIdleMs;
    this.rangeTimeoutMs = rangeTimeoutMs;
    /** peer id → reason: seeders that misbehaved, the MAX_BAD_PEERS most recent (insertion order). @type {Map<string, string>} */
    this.badPeers = new Map();
    /** `${peer} ${track}` of the reports sent, the MAX_REPORTED most recent. @type {Set<string>} */
    this.reported = new Set();
    /** @type {WebSocket|null} */
    this.ws = null;
    /** @type {string|null} */
    this.peerId = null;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** @type {RTCPeerConnection|null} */
    this.hubPC = null;
    /** @type {ChunkChannel|null} */
    this.hubChannel = null;
    /** Hub ICE candidates received before its offer. @type {RTCIceCandidateInit[]} */
    this.hubQueued = [];
    /** pair id → PeerLink @type {Map<string, PeerLink>} */
    this.links = new Map();
    /** track → lookup state @type {Map<string, {pending: boolean, attempts: number, last: number}>} */
    this.lookups = new Map();
    this.attempt = 0;
    this.stopped = false;
    /** Tracks announced to the hub as complete (hello cached, completed). @type {Set<string>} */
    this.announced = new Set();
    /** The hub answered `unavailable` to a chunk request: it is not used until then (ms since epoch). */
    this.hubUnavailableUntil = 0;
    /** The hub answered `rate_limited`: lookups and stats wait until then (ms since epoch). */
    this.quietUntil = 0;
    /** Chunk serving for peer channels: only complete tracks (from memory unless serve says more). @type {ServeHooks} */
    this.serve = {
      canServe: (track) => store.isComplete(track),
      chunkCount: (track) => {
        const t = store.tracks.get(track);
        return t ? t.total || 0 : 0;
      },
      getChunk: (track, seq) => store.get(track, seq),
      uploaded: (n) => stats.uploadedBytes(n),
      ...(serve || {}),
    };
    store.addEventListener('complete', (e) => this.onComplete(/** @type {CustomEvent<{track: string}>} */ (e).detail.track));
  }

  /** Whether the hub's chunks DataChannel is open. */
  get hubOpen() {
    return !!this.hubChannel && this.hubChannel.open;
  }

  /** Whether chunks can be requested from the hub: its DataChannel is open and it did not just answer `unavailable`. */
  get hubUsable() {
    return this.hubOpen && Date.now() >= this.hubUnavailableUntil;
  }

  /** The hub cannot serve chunks for now (store down or shutting down): use HTTP for HUB_UNAVAILABLE_MS. */
  markHubUnavailable() {
    this.hubUnavailableUntil = Date.now() + HUB_UNAVAILABLE_MS;
    this.log(`hub unavailable: chunks over HTTP for ${HUB_UNAVAILABLE_MS} ms`);
    this.changed();
  }

  connect() {
    if (this.stopped) return;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.log(`websocket: ${err.message}`);
      this.reconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      const cached = [...new Set([...this.cached(), ...this.store.completeTracks()])].filter(validTrackId).slice(0, 256);
      for (const t of cached) this.announced.add(t);
      this.send({ type: 'hello', version: 1, cached, upload_cap: this.uploadCap });
    });
    ws.addEventListener('message', (e) => {
      if (typeof e.data !== 'string') return;
      let m;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      this.onMessage(m).catch((err) => this.log(`${m.type}: ${err.message}`));
    });
    ws.addEventListener('close', (e) => {
      if (this.ws !== ws) return;
      this.log(`websocket closed (${e.code}${e.reason ? ' ' + e.reason : ''})`);
      this.teardown();
      this.reconnect();
    });
    ws.addEventListener('error', () => {});
  }

  reconnect() {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt++);
    this.dispatchEvent(new CustomEvent('state', { detail: { state: 'reconnecting', delay } }));
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /** Drops the hub PeerConnection and every peer link. */
  teardown() {
    this.ws = null;
    this.peerId = null;
    clearInterval(this.statsTimer);
    if (this.hubChannel) this.hubChannel.close();
    this.hubChannel = null;
    if (this.hubPC) this.hubPC.close();
    this.hubPC = null;
    this.hubQueued = [];
    for (const l of [...this.links.values()]) l.close(false);
    for (const l of this.lookups.values()) l.pending = false;
    this.announced.clear();
    this.changed();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    const ws = this.ws;
    this.teardown();
    if (ws) ws.close(1000);
  }

  /** @param {Message} m */
  send(m) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  changed() {
    this.stats.setPeers([...this.links.values()].filter((l) => l.open).length);
    this.dispatchEvent(new Event('change'));
  }

  /** @param {Message} m */
  async onMessage(m) {
    switch (m.type) {
      case 'welcome':
        this.peerId = m.peer_id;
        this.iceServers = Array.isArray(m.ice_servers) ? m.ice_servers : [];
        this.attempt = 0;
        clearInterval(this.statsTimer);
        this.statsTimer = setInterval(() => this.sendStats(), this.statsIntervalMs);
        this.dispatchEvent(new CustomEvent('state', { detail: { state: 'signaling' } }));
        break;
      case 'signal':
        if (m.pair_id) {
          const l = this.links.get(m.pair_id);
          if (l) await l.onSignal(m);
        } else {
          await this.onHubSignal(m);
        }
        break;
      case 'paired':
        if (!validTrackId(m.track) || this.links.has(m.pair_id)) break;
        if (m.role === 'leecher' && this.badPeers.has(m.peer)) {
          // A seeder that misbehaved before: end the pair at once, unused.
          this.log(`peer ${m.peer}: known bad (${this.badPeers.get(m.peer)}), unpairing`);
          this.stats.peerAbandoned();
          this.send({ type: 'unpair', pair_id: m.pair_id });
          break;
        }
        this.links.set(m.pair_id, new PeerLink(this, { pairId: m.pair_id, peer: m.peer, track: m.track, role: m.role }));
        this.changed();
        break;
      case 'lookup_result': {
        const l = this.lookups.get(m.track);
        if (l) {
          l.pending = false;
          l.last = Date.now();
        }
        if (!m.peer_id) this.log(`lookup ${m.track.slice(0, 8)}: ${m.reason}`);
        this.changed();
        break;
      }
      case 'ping':
        this.send({ type: 'pong' });
        break;
      case 'can_upload': {
        const seeding = [...this.links.values()].filter((l) => l.role === 'seeder' && !l.uploadDone && !l.closed).length;
        const ok = this.serve.canServe(m.track) && seeding < this.uploadCap;
        this.send({ type: 'upload_reply', lookup_id: m.lookup_id, ok });
        break;
      }
      case 'unpair': {
        const l = this.links.get(m.pair_id);
        if (l) l.close(false);
        break;
      }
      case 'error':
        this.log(`hub error ${m.code}: ${m.message || ''} (${m.ref || ''})`);
        if (m.code === 'rate_limited') {
          this.onRateLimited(m);
          break;
        }
        if (m.ref === 'lookup') for (const l of this.lookups.values()) if (l.pending && Date.now() - l.last > 1000) l.pending = false;
        break;
      default: // unknown types are ignored
    }
  }

  /**
   * The hub dropped one of our messages (`rate_limited`). A refused signal
   * means the pair used up its signal budget: links still connecting cannot
   * finish and are closed (their tracks are looked up again later). Otherwise
   * the message rate was exceeded: lookups and stats pause for
   * RATE_LIMIT_BACKOFF_MS and the pending lookups (one may have been dropped)
   * are retried later.
   * @param {Message} m the `error rate_limited` message
   */
  onRateLimited(m) {
    this.quietUntil = Date.now() + RATE_LIMIT_BACKOFF_MS;
    if (m.ref === 'signal') {
      for (const l of [...this.links.values()]) if (!l.open) l.close(true);
      return;
    }
    for (const l of this.lookups.values()) {
      if (l.pending) {
        l.pending = false;
        l.last = Date.now();
      }
    }
    this.changed();
  }

  /**
   * Remembers peer as a bad seeder (forgetting the oldest beyond
   * MAX_BAD_PEERS) and reports it to the hub for track, once per (peer,
   * track). Returns whether a report was sent. A hub that refuses it
   * (`error not_paired`) changes nothing: the link is closed already.
   * @param {string} peer
   * @param {string} track
   * @param {string} reason one of REPORT_REASONS
   */
  markBad(peer, track, reason) {
    if (typeof peer !== 'string' || peer === '' || peer.length > MAX_PEER_ID_LEN || peer === 'hub') return false;
    if (!validTrackId(track) || !REPORT_REASONS.includes(reason)) return false;
    this.badPeers.delete(peer); // re-inserted as the most recent
    this.badPeers.set(peer, reason);
    while (this.badPeers.size > MAX_BAD_PEERS) this.badPeers.delete(/** @type {string} */ (this.badPeers.keys().next().value));
    const key = `${peer} ${track}`;
    if (this.reported.has(key)) return false;
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false; // not reported: may be retried on a later fault
    this.reported.add(key);
    while (this.reported.size > MAX_REPORTED) this.reported.delete(/** @type {string} */ (this.reported.values().next().value));
    this.send({ type: 'report', peer, track, reason });
    this.stats.reportSent();
    this.changed();
    return true;
  }

  /**
   * The hub's offer and candidates for the hub PeerConnection.
   * @param {Message} m
   */
  async onHubSignal(m) {
    if (m.sdp && m.sdp.type === 'offer') {
      if (this.hubPC) this.hubPC.close();
      const pc = new RTCPeerConnection({});
      this.hubPC = pc;
      pc.addEventListener('icecandidate', (e) => {
        if (e.candidate) this.send({ type: 'signal', to: 'hub', candidate: e.candidate.toJSON() });
      });
      pc.addEventListener('datachannel', (e) => {
        if (e.channel.label !== CHANNEL_LABEL) return;
        const ch = new ChunkChannel(e.channel, { name: 'hub', log: this.log });
        this.hubChannel = ch;
        ch.ready().then(() => {
          this.dispatchEvent(new CustomEvent('state', { detail: { state: 'hub' } }));
          this.changed();
        }, () => {});
        ch.addEventListener('close', () => {
          if (this.hubChannel === ch) {
            this.hubChannel = null;
            this.dispatchEvent(new CustomEvent('state', { detail: { state: 'signaling' } }));
            this.changed();
          }
        });
      });
      await pc.setRemoteDescription(m.sdp);
      for (const c of this.hubQueued.splice(0)) await pc.addIceCandidate(c).catch(() => {});
      await pc.setLocalDescription(await pc.createAnswer());
      const d = /** @type {RTCSessionDescription} */ (pc.localDescription); // set just above
      this.send({ type: 'signal', to: 'hub', sdp: { type: d.type, sdp: d.sdp } });
    } else if (m.candidate) {
      if (!this.hubPC || !this.hubPC.remoteDescription) {
        if (this.hubQueued.length < MAX_QUEUED_CANDIDATES) this.hubQueued.push(m.candidate);
      } else {
        await this.hubPC.addIceCandidate(m.candidate).catch((err) => this.log(`hub candidate: ${err.message}`));
      }
    }
  }

  /**
   * Starts (or retries) a tracker lookup for track when it is not complete and no peer serves it.
   * @param {string} track
   */
  want(track) {
    if (!this.peerId || this.store.isComplete(track) || this.peersFor(track) > 0 || Date.now() < this.quietUntil) return;
    let l = this.lookups.get(track);
    if (!l) {
      l = { pending: false, attempts: 0, last: 0 };
      this.lookups.set(track, l);
    }
    if (l.pending || l.attempts >= MAX_LOOKUPS_PER_TRACK || Date.now() - l.last < LOOKUP_RETRY_MS) return;
    if ([...this.lookups.values()].filter((x) => x.pending).length >= 4) return;
    l.pending = true;
    l.attempts++;
    l.last = Date.now();
    this.send({ type: 'lookup', track });
  }

  /**
   * Whether a lookup for track is in flight or a peer link for it is connecting.
   * @param {string} track
   */
  peerPending(track) {
    const l = this.lookups.get(track);
    if (l && l.pending) return true;
    for (const link of this.links.values()) if (link.track === track && link.role === 'leecher' && !link.closed && !link.open) return true;
    return false;
  }

  /**
   * Open leecher links for track.
   * @param {string} track
   */
  peersFor(track) {
    let n = 0;
    for (const l of this.links.values()) if (l.track === track && l.role === 'leecher' && l.open) n++;
    return n;
  }

  /** @param {string} track */
  onComplete(track) {
    // Done leeching: end the pairs of this track so the seeders' slots free up.
    for (const l of [...this.links.values()]) if (l.track === track && l.role === 'leecher') l.close(true);
    if (!this.announced.has(track)) {
      this.announced.add(track);
      this.send({ type: 'completed', track });
    }
  }

  /**
   * Ends the leecher pairs of tracks not in keep (the user moved on).
   * @param {string[]} keep
   */
  release(keep) {
    for (const l of [...this.links.values()]) if (l.role === 'leecher' && !keep.includes(l.track)) l.close(true);
  }

  sendStats() {
    if (Date.now() < this.quietUntil) return; // the deltas keep accumulating
    const d = this.stats.drainDelta();
    const any = Object.entries(d).some(([, v]) => (Array.isArray(v) ? v.length > 0 : v > 0)); // startup_ms is the array
    if (any) this.send({ type: 'stats', ...d });
  }

  /**
   * Loader sources for track (in priority order): its peers, then the hub
   * (everything when no peer is in sight; only urgent chunks while peers
   * serve the track or are being found, or when under EMERGENCY_SEC of buffer).
   * A hub that answers `unavailable` is left alone for HUB_UNAVAILABLE_MS
   * (the page's HTTP fallback takes over: see hubUsable).
   * @param {string} track
   * @returns {Source[]}
   */
  sources(track) {
    const net = this;
    /** @type {Source} */
    const peer = {
      name: 'peer',
      statsName: 'peer',
      maxRun: 16,
      isolatesFaults: true, // a bad seeder is abandoned by its link (PeerLink.abandon), not by backing off every peer
      available: () => {
        net.want(track);
        return net.peersFor(track) > 0;
      },
      slots: () => [...net.links.values()].filter((l) => l.track === track && l.role === 'leecher' && l.open && l.channel !== null && !l.channel.busyWith(track)).length,
      request(t, from, to, onChunk, signal) {
        const l = [...net.links.values()].find((x) => x.track === t && x.role === 'leecher' && x.open && x.channel !== null && !x.channel.busyWith(t));
        if (!l) return Promise.reject(new Error('no idle peer'));
        return l.request(t, from, to, onChunk, signal);
      },
    };
    const hubBase = channelSource('hub', 'hub', () => net.hubChannel, { maxRun: 8 });
    /** @type {Source} */
    const hub = {
      ...hubBase,
      available: () => hubBase.available() && net.hubUsable,
      rescues: true,
      get urgentOnly() {
        return net.peersFor(track) > 0 || net.peerPending(track);
      },
      slots: (t, { ahead = Infinity, urgent = false } = {}) => {
        const restricted = net.peersFor(track) > 0 || net.peerPending(track);
        if (restricted && !(urgent || ahead < EMERGENCY_SEC)) return 0;
        return hubBase.slots(t);
      },
      request(t, from, to, onChunk, signal) {
        if (net.peersFor(track) > 0) net.stats.emergencyFetches += to - from;
        return hubBase.request(t, from, to, onChunk, signal).catch((err) => {
          if (err && err.code === 'unavailable') net.markHubUnavailable();
          throw err;
        });
      },
    };
    return [peer, hub];
  }
}
