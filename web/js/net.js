// The network side of a peer (docs/PROTOCOL.md): the WebSocket to the hub
// (hello/welcome, reconnect with backoff, keepalive, stats), the hub
// PeerConnection answering the hub's offer with its "chunks" DataChannel,
// tracker lookups, and direct PeerConnections to other peers ("links") — as
// leecher of a pair (we offer and open the channel) or as seeder (we
// answer). Links are kept across tracks (up to max_peer_conns idle ones):
// either side may ask the other `have` and `request` on them for any track.
//
// What a peer holds and tells (§8.1): every verified chunk held is served,
// of complete tracks and of the tracks being downloaded; `have` is answered
// ok (complete) or with the bitfield of a partial track, within the upload
// cap, which holds per remote peer on every link (slots: acquired when the
// hub pairs us as seeder or when a remote requests, released — with
// `upload_done` for the pairs the hub counts — once a range reaching the end
// of the track was served, or after UPLOAD_IDLE_MS without a request).
// The loaders (loader.js) send `holding` through holding()/withdraw(), and
// `completed` goes out when the chunk store completes a track.
//
// A misbehaving remote (a chunk failing the manifest's SHA-256, a message
// breaking the chunk protocol, a bitfield not matching the manifest, nothing
// sent in time) is abandoned: reported to the hub (`report`, once per peer and
// track), remembered as bad (the MAX_BAD_PEERS most recent) and unpaired. A
// later pairing as leecher with a remembered bad peer is ended at once, unused.

import { ChunkChannel } from './channel.js';
import { CHANNEL_LABEL, validTrackId, encodeBitfield } from './wire.js';
import { ALGORITHM_DEFAULTS, LookupBackoff, LinkClosedError } from './swarm.js';

/** @typedef {import('./channel.js').ServeHooks} ServeHooks */
/** @typedef {import('./channel.js').HaveAnswer} HaveAnswer */
/** @typedef {import('./wire.js').TextMessage} Message a decoded signaling message (docs/PROTOCOL.md §2) */
/**
 * The outcome of a tracker lookup: the links of the pairs it made (still
 * connecting) and, when none, why (lookup_result reason, or a local one:
 * offline, rate_limited, timeout, shutdown, or the hub's error code).
 * @typedef {{reason: string, links: PeerLink[]}} LookupOutcome
 */
/**
 * A tracker lookup query (§2.3): want seeders, holders from chunk from first.
 * @typedef {{want?: number, from?: number}} LookupQuery
 */

/** Default number of leechers served at once. */
export const DEFAULT_UPLOAD_CAP = 4;
/** Most remote ICE candidates queued before the remote description. */
const MAX_QUEUED_CANDIDATES = 64;
/** A peer link that is not open after this long is dropped. */
const PEER_CONNECT_TIMEOUT_MS = 10000;
/** An upload slot with no request for this long is freed (upload_done). */
export const UPLOAD_IDLE_MS = 30000;
/** After the hub answers a chunk request `unavailable`, it is not asked again for this long (HTTP is used). */
export const HUB_UNAVAILABLE_MS = 5000;
/** After `error rate_limited`, lookups and stats wait this long. */
export const RATE_LIMIT_BACKOFF_MS = 2000;
/** Most lookups pending at the hub at once (§6). */
export const MAX_PENDING_LOOKUPS = 4;
/** A lookup with no result after this long is given up. */
export const LOOKUP_TIMEOUT_MS = 5000;
/** Most seeders one lookup asks for (signaling.MaxLookupWant). */
const MAX_LOOKUP_WANT = 8;
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

/**
 * The pair ids of a lookup_result: `peers`, or the single pair_id of older hubs.
 * @param {Message} m
 * @returns {string[]}
 */
export function resultPairs(m) {
  if (Array.isArray(m.peers) && m.peers.length > 0) {
    return m.peers.filter((p) => p && typeof p.pair_id === 'string' && p.pair_id !== '').map((p) => /** @type {string} */ (p.pair_id));
  }
  return typeof m.pair_id === 'string' && m.pair_id !== '' ? [m.pair_id] : [];
}

/**
 * Whether pc's selected candidate pair uses a TURN relay on either side (from getStats).
 * @param {RTCPeerConnection} pc
 * @returns {Promise<boolean>}
 */
export async function viaRelay(pc) {
  const report = await pc.getStats();
  /** @type {Map<string, any>} */
  const byId = new Map();
  report.forEach((r) => byId.set(r.id, r));
  const all = [...byId.values()];
  const transport = all.find((r) => r.type === 'transport' && r.selectedCandidatePairId);
  // Firefox has no selectedCandidatePairId: the nominated pair that succeeded.
  const pair = transport
    ? byId.get(transport.selectedCandidatePairId)
    : all.find((r) => r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded');
  if (!pair) return false;
  const local = byId.get(pair.localCandidateId);
  const remote = byId.get(pair.remoteCandidateId);
  return (!!local && local.candidateType === 'relay') || (!!remote && remote.candidateType === 'relay');
}

/** A PeerConnection to another peer, made for one pair, used for any track. */
export class PeerLink {
  /**
   * @param {Net} net
   * @param {{pairId: string, peer: string, track: string, role: 'leecher'|'seeder'}} pair
   */
  constructor(net, { pairId, peer, track, role }) {
    this.net = net;
    this.pairId = pairId;
    this.peer = peer;
    /** The track the hub paired us for (the link serves others too). */
    this.track = track;
    this.role = role;
    /** @type {ChunkChannel|null} */
    this.channel = null;
    /** Remote ICE candidates received before the remote description. @type {RTCIceCandidateInit[]} */
    this.queued = [];
    this.closed = false;
    /** Whether the connection runs through a TURN relay (known once the channel opens). */
    this.relayed = false;
    /** When the link was last used (a request either way), for trimming idle links. */
    this.lastUsed = Date.now();
    /** @type {(() => void) | null} */
    this.resolveOpen = null;
    /** @type {((err: Error) => void) | null} */
    this.rejectOpen = null;
    /** Settles when the channel opens (or the link closes first). @type {Promise<void>} */
    this.opened = new Promise((resolve, reject) => {
      this.resolveOpen = resolve;
      this.rejectOpen = reject;
    });
    this.opened.catch(() => {}); // a link that never opens is not an error of anyone waiting
    this.pc = new RTCPeerConnection({ iceServers: net.iceServers || [], iceTransportPolicy: net.icePolicy });
    this.pc.addEventListener('icecandidate', (e) => {
      if (e.candidate) net.send({ type: 'signal', to: peer, pair_id: pairId, candidate: e.candidate.toJSON() });
    });
    this.pc.addEventListener('connectionstatechange', () => {
      if (this.pc.connectionState === 'failed' || this.pc.connectionState === 'closed') this.close(true, 'failed');
    });
    this.timer = setTimeout(() => {
      if (!this.channel || !this.channel.open) {
        net.log(`peer ${peer}: not connected after ${PEER_CONNECT_TIMEOUT_MS} ms`);
        this.close(true, 'timeout');
      }
    }, PEER_CONNECT_TIMEOUT_MS);
    if (role === 'leecher') {
      this.attach(this.pc.createDataChannel(CHANNEL_LABEL));
      this.offer().catch((err) => {
        net.log(`peer ${peer}: offer: ${err.message}`);
        this.close(true, 'refused');
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
    const ch = new ChunkChannel(dc, { name: `peer ${this.peer}`, serve: net.serveHooksFor(this), log: net.log });
    this.channel = ch;
    ch.addEventListener('close', () => this.close(true, 'failed'));
    ch.addEventListener('bad_message', (e) => {
      // Only a remote serving us can be abandoned for it (a leecher is not reported).
      const pending = [...ch.pending.values()];
      if (pending.length > 0) net.abandon(this, pending[0].track, 'bad_message', /** @type {CustomEvent<{message: string}>} */ (e).detail.message);
    });
    for (const type of ['have', 'have_reply', 'holding']) {
      ch.addEventListener(type, (e) => {
        this.lastUsed = Date.now();
        net.dispatchEvent(new CustomEvent(`peer-${type}`, { detail: { link: this, msg: /** @type {CustomEvent<Message>} */ (e).detail } }));
      });
    }
    ch.ready().then(() => {
      clearTimeout(this.timer);
      if (this.resolveOpen) this.resolveOpen();
      net.changed();
      viaRelay(this.pc).then((r) => { this.relayed = r; }, () => {});
    }, () => {});
  }

  /** Resolves once the link's channel is open; rejects if the link closes first. */
  ready() {
    return this.opened;
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

  /** Whether ranges are in flight on the link, either way. */
  get busy() {
    return !!this.channel && (this.channel.pending.size > 0 || this.channel.serving.size > 0);
  }

  /**
   * Closes the link; tells the hub (unpair) unless the hub told us.
   * @param {boolean} tellHub
   * @param {import('./swarm.js').LinkEnd} [why] why, for a link that never opened: its ready() rejects with a LinkClosedError
   */
  close(tellHub, why = 'abandoned') {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    if (this.rejectOpen) this.rejectOpen(new LinkClosedError(`peer ${this.peer}: link closed (${why})`, why));
    if (this.channel) this.channel.close();
    try {
      this.pc.close();
    } catch { /* closed */ }
    if (tellHub) this.net.send({ type: 'unpair', pair_id: this.pairId });
    this.net.links.delete(this.pairId);
    this.net.onLinkClosed(this);
    this.net.changed();
  }
}

export class Net extends EventTarget {
  /**
   * @param {{url?: string, store: import('./chunkstore.js').ChunkStore, stats: import('./stats.js').SessionStats,
   *   cached?: () => string[], uploadCap?: number, log?: (msg: string) => void, statsIntervalMs?: number,
   *   serve?: Partial<ServeHooks>|null, uploadIdleMs?: number, maxPeerConns?: number}} opts
   *   serve: overrides of the chunk serving hooks; uploadIdleMs: see UPLOAD_IDLE_MS;
   *   maxPeerConns: idle links kept (the algorithm's max_peer_conns)
   */
  constructor({ url = defaultWsURL(), store, stats, cached = () => [], uploadCap = DEFAULT_UPLOAD_CAP, log = () => {},
    statsIntervalMs = 2000, serve = null, uploadIdleMs = UPLOAD_IDLE_MS, maxPeerConns = ALGORITHM_DEFAULTS.max_peer_conns }) {
    super();
    this.url = url;
    this.store = store;
    this.stats = stats;
    this.cached = cached;
    this.uploadCap = uploadCap;
    this.log = log;
    this.statsIntervalMs = statsIntervalMs;
    this.uploadIdleMs = uploadIdleMs;
    this.maxPeerConns = maxPeerConns;
    /** Holds this page's tracker lookups after peer links failed to open (PROTOCOL.md §8.2). */
    this.lookupBackoff = new LookupBackoff();
    /** peer id → reason: peers that misbehaved, the MAX_BAD_PEERS most recent (insertion order). @type {Map<string, string>} */
    this.badPeers = new Map();
    /** `${peer} ${track}` of the reports sent, the MAX_REPORTED most recent. @type {Set<string>} */
    this.reported = new Set();
    /** @type {WebSocket|null} */
    this.ws = null;
    /** @type {string|null} */
    this.peerId = null;
    /** STUN/TURN servers for peer links (welcome, then ice_servers renewals). @type {RTCIceServer[]} */
    this.iceServers = [];
    /** 'relay' when the hub wants every peer link through a TURN relay. @type {RTCIceTransportPolicy} */
    this.icePolicy = 'all';
    /** @type {RTCPeerConnection|null} */
    this.hubPC = null;
    /** @type {ChunkChannel|null} */
    this.hubChannel = null;
    /** Hub ICE candidates received before its offer. @type {RTCIceCandidateInit[]} */
    this.hubQueued = [];
    /** pair id → PeerLink @type {Map<string, PeerLink>} */
    this.links = new Map();
    /** track → the pending lookup's settle function @type {Map<string, {settle: (o: LookupOutcome) => void, since: number}>} */
    this.lookups = new Map();
    /** remote peer id → its upload slot: when last used, and the pairs the hub counts against it. @type {Map<string, {last: number, pairs: Set<string>}>} */
    this.slots = new Map();
    this.attempt = 0;
    this.stopped = false;
    /** Tracks announced to the hub as complete (hello cached, completed). @type {Set<string>} */
    this.announced = new Set();
    /** The hub answered `unavailable` to a chunk request: it is not used until then (ms since epoch). */
    this.hubUnavailableUntil = 0;
    /** The hub answered `rate_limited`: lookups and stats wait until then (ms since epoch). */
    this.quietUntil = 0;
    /** @type {number|null} */
    this.janitorTimer = null;
    /** @type {number|null} */
    this.statsTimer = null;
    /** @type {number|null} */
    this.reconnectTimer = null;
    /** Chunk serving for peer channels: every chunk held in memory (serve may add the persistent cache). @type {ServeHooks} */
    this.serve = {
      canServe: (track) => {
        const t = store.tracks.get(track);
        return !!t && t.chunks.size > 0;
      },
      isComplete: (track) => store.isComplete(track),
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

  /** The hub DataChannel when chunks may be requested on it, else null (the HTTP endpoint is used). */
  usableHubChannel() {
    return this.hubUsable ? this.hubChannel : null;
  }

  /** Whether P2P is on: the hub WebSocket is up and welcomed us (lookups, holding, reports). */
  get p2p() {
    return !!this.peerId && !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  /** The hub cannot serve chunks for now (store down or shutting down): use HTTP for HUB_UNAVAILABLE_MS. */
  markHubUnavailable() {
    this.hubUnavailableUntil = Date.now() + HUB_UNAVAILABLE_MS;
    this.log(`hub unavailable: chunks over HTTP for ${HUB_UNAVAILABLE_MS} ms`);
    this.changed();
  }

  connect() {
    if (this.stopped) return;
    if (this.janitorTimer === null) {
      this.janitorTimer = setInterval(() => this.janitor(), Math.max(10, Math.min(this.uploadIdleMs / 4, 5000)));
    }
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
      if (!m || typeof m !== 'object') return;
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

  /** Drops the hub PeerConnection, every peer link and every pending lookup. */
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
    this.slots.clear();
    this.settleLookups('shutdown');
    this.announced.clear();
    this.changed();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.janitorTimer);
    this.janitorTimer = null;
    const ws = this.ws;
    this.teardown();
    if (ws) ws.close(1000);
  }

  /** @param {Message} m */
  send(m) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  changed() {
    this.stats.setPeers(this.openLinks().length);
    this.dispatchEvent(new Event('change'));
  }

  /** The open peer links. */
  openLinks() {
    return [...this.links.values()].filter((l) => l.open);
  }

  /** @param {Message} m */
  async onMessage(m) {
    switch (m.type) {
      case 'welcome':
        this.peerId = m.peer_id;
        this.iceServers = Array.isArray(m.ice_servers) ? m.ice_servers : [];
        this.icePolicy = m.ice_transport_policy === 'relay' ? 'relay' : 'all';
        this.attempt = 0;
        clearInterval(this.statsTimer);
        this.statsTimer = setInterval(() => this.sendStats(), this.statsIntervalMs);
        this.dispatchEvent(new CustomEvent('state', { detail: { state: 'signaling' } }));
        this.changed();
        break;
      case 'ice_servers': // renewed TURN credentials, for the next links
        if (Array.isArray(m.ice_servers)) this.iceServers = m.ice_servers;
        break;
      case 'catalog': // the library changed: whoever shows it fetches it again
        this.dispatchEvent(new CustomEvent('catalog'));
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
        this.onPaired(m);
        break;
      case 'lookup_result':
        this.onLookupResult(m);
        break;
      case 'ping':
        this.send({ type: 'pong' });
        break;
      case 'can_upload':
        this.send({ type: 'upload_reply', lookup_id: m.lookup_id, ok: validTrackId(m.track) && this.canUpload(m.track, '') });
        break;
      case 'unpair': {
        const l = this.links.get(m.pair_id);
        if (l) l.close(false, 'remote');
        break;
      }
      case 'error':
        this.log(`hub error ${m.code}: ${m.message || ''} (${m.ref || ''})`);
        if (m.code === 'rate_limited') {
          this.onRateLimited(m);
          break;
        }
        if (m.ref === 'lookup') this.onLookupError(m);
        break;
      default: // unknown types are ignored
    }
  }

  /** @param {Message} m a `paired` message */
  onPaired(m) {
    if (!validTrackId(m.track) || typeof m.pair_id !== 'string' || typeof m.peer !== 'string' || this.links.has(m.pair_id)) return;
    if (m.role === 'leecher' && this.badPeers.has(m.peer)) {
      // A seeder that misbehaved before: end the pair at once, unused.
      this.log(`peer ${m.peer}: known bad (${this.badPeers.get(m.peer)}), unpairing`);
      this.stats.peerAbandoned();
      this.send({ type: 'unpair', pair_id: m.pair_id });
      return;
    }
    if (m.role !== 'leecher' && m.role !== 'seeder') return;
    const limit = this.maxPeerConns + this.uploadCap;
    this.trimLinks(limit - 1);
    if (this.links.size >= limit) {
      this.log(`too many peer connections: refusing pair ${m.pair_id}`);
      this.send({ type: 'unpair', pair_id: m.pair_id });
      return;
    }
    if (m.role === 'seeder') this.acquireSlot(m.peer, m.pair_id, true); // the hub counts this upload
    this.links.set(m.pair_id, new PeerLink(this, { pairId: m.pair_id, peer: m.peer, track: m.track, role: m.role }));
    this.changed();
  }

  /**
   * Closes the least recently used idle links (nothing in flight, no upload
   * slot) until at most keep remain.
   * @param {number} keep
   */
  trimLinks(keep) {
    if (this.links.size <= keep) return;
    const idle = [...this.links.values()].filter((l) => !l.busy && !this.slots.has(l.peer)).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const l of idle) {
      if (this.links.size <= keep) break;
      l.close(true, 'trimmed');
    }
  }

  /**
   * Asks the tracker for peers serving track (§8.2.2: partial holders too).
   * Resolves once the lookup_result came (its pairs' links are still
   * connecting: see PeerLink.ready), or at once when the lookup cannot be
   * sent (offline, rate limited, one pending for the track already, too
   * many pending). Never rejects.
   * @param {string} track
   * @param {LookupQuery} [q]
   * @returns {Promise<LookupOutcome>}
   */
  lookup(track, { want = 1, from = 0 } = {}) {
    if (!this.p2p) return Promise.resolve({ reason: 'offline', links: [] });
    if (Date.now() < this.quietUntil) return Promise.resolve({ reason: 'rate_limited', links: [] });
    if (this.lookups.has(track)) return Promise.resolve({ reason: 'duplicate_lookup', links: [] });
    if (this.lookups.size >= MAX_PENDING_LOOKUPS) return Promise.resolve({ reason: 'too_many_lookups', links: [] });
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle({ reason: 'timeout', links: [] }), LOOKUP_TIMEOUT_MS);
      /** @param {LookupOutcome} o */
      const settle = (o) => {
        clearTimeout(timer);
        if (this.lookups.get(track) === entry) this.lookups.delete(track);
        resolve(o);
      };
      const entry = { settle, since: Date.now() };
      this.lookups.set(track, entry);
      const w = Math.max(1, Math.min(MAX_LOOKUP_WANT, Math.floor(want)));
      this.send({ type: 'lookup', track, want: w, from: Math.max(0, Math.floor(from)), partial: true });
    });
  }

  /** @param {Message} m a `lookup_result` */
  onLookupResult(m) {
    if (!validTrackId(m.track)) return;
    /** @type {PeerLink[]} */
    const links = [];
    for (const id of resultPairs(m)) {
      const l = this.links.get(id);
      if (l && !l.closed) links.push(l);
    }
    const entry = this.lookups.get(m.track);
    if (!entry) {
      for (const l of links) l.close(true); // nobody waits any more: free the seeders' slots
      return;
    }
    if (links.length === 0) this.log(`lookup ${m.track.slice(0, 8)}: ${m.reason || 'no peer'}`);
    entry.settle({ reason: typeof m.reason === 'string' ? m.reason : '', links });
    this.changed();
  }

  /**
   * The hub refused a lookup (error with ref lookup): settles the lookup it
   * names (its message carries the track id), else the oldest one.
   * @param {Message} m
   */
  onLookupError(m) {
    const named = typeof m.message === 'string' ? /[0-9a-f]{32}/.exec(m.message) : null;
    let entry = named ? this.lookups.get(named[0]) : undefined;
    if (!entry) entry = [...this.lookups.values()].sort((a, b) => a.since - b.since)[0];
    if (entry) entry.settle({ reason: String(m.code || 'error'), links: [] });
  }

  /**
   * Settles every pending lookup with reason.
   * @param {string} reason
   */
  settleLookups(reason) {
    for (const e of [...this.lookups.values()]) e.settle({ reason, links: [] });
  }

  /**
   * The hub dropped one of our messages (`rate_limited`). A refused signal
   * means the pair used up its signal budget: links still connecting cannot
   * finish and are closed. Otherwise the message rate was exceeded: lookups
   * and stats pause for RATE_LIMIT_BACKOFF_MS and the pending lookups (one
   * may have been dropped) end (their loaders retry later).
   * @param {Message} m the `error rate_limited` message
   */
  onRateLimited(m) {
    this.quietUntil = Date.now() + RATE_LIMIT_BACKOFF_MS;
    if (m.ref === 'signal') {
      for (const l of [...this.links.values()]) if (!l.open) l.close(true);
      return;
    }
    this.settleLookups('rate_limited');
    this.changed();
  }

  /**
   * Whether remote was caught misbehaving (and is remembered).
   * @param {string} remote
   */
  isBad(remote) {
    return this.badPeers.has(remote);
  }

  /**
   * Remembers peer as bad (forgetting the oldest beyond MAX_BAD_PEERS) and
   * reports it to the hub for track, once per (peer, track). Returns whether
   * a report was sent. A hub that refuses it (`error not_paired`) changes
   * nothing: the link is closed already.
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
   * The remote of link misbehaved while serving track (reason: one of
   * REPORT_REASONS): reports and remembers it, then closes the link
   * (unpair). The report goes first so that the hub has it before any
   * lookup that follows (else it could offer the same peer again).
   * @param {PeerLink} link
   * @param {string} track
   * @param {string} reason
   * @param {string} [why]
   */
  abandon(link, track, reason, why = '') {
    if (link.closed) return;
    this.log(`peer ${link.peer}: abandoned (${reason}${why ? ': ' + why : ''})`);
    this.stats.peerAbandoned();
    this.markBad(link.peer, track, reason);
    link.close(true);
  }

  /**
   * Ends link's pair (not needed, or the remote is done with): frees the remote's slot at the hub.
   * @param {PeerLink} link
   */
  unpair(link) {
    link.close(true);
  }

  /**
   * The serving hooks of one link: the peer's, plus the upload cap of the remote.
   * @param {PeerLink} link
   * @returns {ServeHooks}
   */
  serveHooksFor(link) {
    const remote = link.peer;
    return {
      ...this.serve,
      haveReply: (track) => this.haveReply(track, remote),
      admit: () => {
        link.lastUsed = Date.now();
        return this.acquireSlot(remote, '', false);
      },
      sent: (track, seq) => {
        this.touchSlot(remote);
        if (this.serve.sent) this.serve.sent(track, seq);
      },
      finished: (track, from, to) => {
        this.touchSlot(remote);
        if (to >= this.serve.chunkCount(track) && !this.servingTo(remote)) this.releaseSlot(remote);
      },
    };
  }

  /**
   * Whether the peer holds at least one verified chunk of track and would
   * upload it to remote now: remote holds an upload slot or one is free
   * ('' for an unknown remote, as in can_upload).
   * @param {string} track
   * @param {string} remote
   */
  canUpload(track, remote) {
    if (!this.serve.canServe(track)) return false;
    if (remote !== '' && this.slots.has(remote)) return true;
    return this.slots.size < this.uploadCap;
  }

  /**
   * The answer to remote's `have` for track (§4.1): ok for a complete track,
   * the bitfield of a partial one, nothing without a chunk or a slot for remote.
   * @param {string} track
   * @param {string} remote
   * @returns {HaveAnswer}
   */
  haveReply(track, remote) {
    if (!this.canUpload(track, remote)) return { ok: false };
    if (this.serve.isComplete ? this.serve.isComplete(track) : this.store.isComplete(track)) return { ok: true };
    const present = this.presentFlags(track);
    if (!present) return { ok: false };
    return { ok: false, chunks: present.length, have: encodeBitfield(present) };
  }

  /**
   * The flags of the chunks of track held in memory, or null when its chunk count is unknown.
   * @param {string} track
   * @returns {boolean[] | null}
   */
  presentFlags(track) {
    const t = this.store.tracks.get(track);
    if (!t || !t.total) return null;
    const out = new Array(t.total).fill(false);
    for (const seq of t.chunks.keys()) if (seq >= 0 && seq < t.total) out[seq] = true;
    return out;
  }

  /**
   * Gives remote an upload slot if it has none and one is free; force takes
   * one over the cap (the hub paired us as seeder: it counted it).
   * @param {string} remote
   * @param {string} pairId '' when not for a pair
   * @param {boolean} force
   */
  acquireSlot(remote, pairId, force) {
    let s = this.slots.get(remote);
    if (!s) {
      if (!force && this.slots.size >= this.uploadCap) return false;
      s = { last: Date.now(), pairs: new Set() };
      this.slots.set(remote, s);
    }
    s.last = Date.now();
    if (pairId) s.pairs.add(pairId);
    return true;
  }

  /** @param {string} remote */
  touchSlot(remote) {
    const s = this.slots.get(remote);
    if (s) s.last = Date.now();
  }

  /**
   * Frees remote's slot and tells the hub (upload_done) for every open pair counted against it.
   * @param {string} remote
   */
  releaseSlot(remote) {
    const s = this.slots.get(remote);
    if (!s) return;
    this.slots.delete(remote);
    for (const id of s.pairs) {
      const l = this.links.get(id);
      if (l && !l.closed) this.send({ type: 'upload_done', pair_id: id });
    }
    this.changed();
  }

  /**
   * Whether a range is being served to remote on one of its links.
   * @param {string} remote
   */
  servingTo(remote) {
    for (const l of this.links.values()) if (l.peer === remote && l.channel && l.channel.serving.size > 0) return true;
    return false;
  }

  /**
   * A link closed: a remote left with no link frees its slot (the hub ended its pairs).
   * @param {PeerLink} link
   */
  onLinkClosed(link) {
    for (const l of this.links.values()) if (l.peer === link.peer) return;
    this.slots.delete(link.peer);
  }

  /** Frees the upload slots idle for uploadIdleMs. */
  janitor() {
    const now = Date.now();
    for (const [remote, s] of [...this.slots]) {
      if (now - s.last > this.uploadIdleMs && !this.servingTo(remote)) this.releaseSlot(remote);
    }
  }

  /**
   * Tells the hub and the links that asked `have` about track which chunks
   * of it the peer holds now (§8.1). The caller (a loader) paces it.
   * @param {string} track
   * @param {ArrayLike<boolean>} present
   */
  holding(track, present) {
    const bits = { chunks: present.length, have: encodeBitfield(present) };
    this.send({ type: 'holding', track, ...bits });
    for (const l of this.openLinks()) if (l.channel) l.channel.pushHolding(track, bits);
  }

  /**
   * A download of track stopped unfinished: the hub stops listing the peer as
   * a partial holder (a holding with no bit set).
   * @param {string} track
   * @param {number} chunks
   */
  withdraw(track, chunks) {
    if (chunks > 0) this.send({ type: 'holding', track, chunks, have: encodeBitfield(new Array(chunks).fill(false)) });
  }

  /** @param {string} track */
  onComplete(track) {
    if (!this.announced.has(track)) {
      this.announced.add(track);
      this.send({ type: 'completed', track });
    }
    // The links that follow our holdings of track learn that it is whole.
    const present = this.presentFlags(track);
    if (present) {
      const bits = { chunks: present.length, have: encodeBitfield(present) };
      for (const l of this.openLinks()) if (l.channel) l.channel.pushHolding(track, bits);
    }
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

  sendStats() {
    if (Date.now() < this.quietUntil) return; // the deltas keep accumulating
    const d = this.stats.drainDelta();
    const any = Object.entries(d).some(([, v]) => (Array.isArray(v) ? v.length > 0 : v > 0)); // startup_ms is the array
    if (any) this.send({ type: 'stats', ...d });
  }
}
