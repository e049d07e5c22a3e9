// Entry point: wires the catalog, the player, the UI and the window.ztream
// automation API together.

import { CatalogAPI } from './api.js';
import { ChunkStore } from './chunkstore.js';
import { SessionStats } from './stats.js';
import { Player } from './player.js';
import { UI, degradedNotice } from './ui.js';
import { Net } from './net.js';
import { PersistentCache } from './cache.js';
import { verifyChunk } from './verify.js';
import { Queue } from './queue.js';

/** The page's localStorage, or null where it is denied (some private modes throw on access). */
function localStore() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

const api = new CatalogAPI('/api');
const store = new ChunkStore();
const stats = new SessionStats();
const audio = /** @type {HTMLAudioElement} */ (document.getElementById('audio'));
/** Recent log lines (bounded), exposed as window.ztream.log for debugging and tests. @type {string[]} */
const logLines = [];
/** @param {string} msg */
const log = (msg) => {
  const line = `${(performance.now() / 1000).toFixed(3)} ${msg}`;
  logLines.push(line);
  if (logLines.length > 300) logLines.splice(0, logLines.length - 300);
  console.warn('[ztream]', msg);
};

const params = new URLSearchParams(location.search);
if (params.get('debug') === '1') globalThis.ZDEBUG = true;
/** ?transport=http: no WebSocket/WebRTC at all, only the HTTP chunk endpoint. */
const httpRequested = params.get('transport') === 'http';
/** A browser without WebRTC (or with it turned off) plays over HTTP only. */
const noWebRTC = typeof globalThis.RTCPeerConnection !== 'function';
const httpOnly = httpRequested || noWebRTC;
/** ?player=stream: every track plays whole from GET /api/tracks/{id}/stream in a plain <audio src>, never through Media Source. */
const streamRequested = params.get('player') === 'stream';
/** ?mse=managed: ManagedMediaSource (Safari on iOS has only it) where MediaSource exists as well. */
const managedRequested = params.get('mse') === 'managed';
/** How long the page waits for the hub DataChannel before playing over HTTP. */
const HUB_WAIT_MS = 5000;

/** The peer algorithm's constants (GET /api/config, else the built-in defaults of swarm.js), fetched once. */
const algorithmP = api.config({ log });

/** ?cache=0 disables the persistent cache (OPFS / IndexedDB). */
const cache = httpRequested || params.get('cache') === '0'
  ? null
  : await PersistentCache.open({ log, budget: Number(params.get('cache_mb')) * 1e6 || undefined }).catch((err) => {
    log(`persistent cache unavailable: ${err.message}`);
    return null;
  });

/**
 * Loads track m from the persistent cache into the chunk store (source
 * 'cache'), verifying every chunk. Resolves to whether it did.
 * @param {import('./api.js').Manifest} m
 */
async function loadFromCache(m) {
  if (!cache || !cache.has(m.id) || store.isComplete(m.id)) return false;
  const chunks = await cache.getTrack(m);
  if (!chunks) return false;
  for (let seq = 0; seq < chunks.length; seq++) {
    const bad = await verifyChunk(m, seq, chunks[seq]);
    if (bad) {
      log(`cache: ${bad}: dropping the track`);
      await cache.deleteTrack(m.id);
      return false;
    }
  }
  store.setTotal(m.id, m.chunks.length);
  for (let seq = 0; seq < chunks.length; seq++) store.put(m.id, seq, chunks[seq].slice(), 'cache');
  return true;
}

if (cache) {
  // Every track completed in memory is kept for later plays and for seeding.
  store.addEventListener('complete', (e) => {
    const id = /** @type {CustomEvent<{track: string}>} */ (e).detail.track;
    const t = store.tracks.get(id);
    if (!t || t.total === null || cache.has(id)) return;
    const chunks = [];
    for (let seq = 0; seq < t.total; seq++) {
      const c = store.get(id, seq);
      if (!c) return; // not reached: 'complete' fires once every chunk is held
      chunks.push(c);
    }
    cache.putTrack(id, chunks).catch((err) => log(`cache: storing ${id}: ${err.message}`));
  });
}

const algorithm = await algorithmP;

/** @param {string} track */
const heldInMemory = (track) => {
  const t = store.tracks.get(track);
  return !!t && t.chunks.size > 0;
};
const net = httpOnly ? null : new Net({
  store, stats, log,
  uploadCap: Number(params.get('upload_cap')) || undefined,
  maxPeerConns: algorithm.max_peer_conns,
  cached: () => (cache ? cache.tracks() : []),
  serve: cache ? {
    canServe: (track) => heldInMemory(track) || cache.has(track),
    isComplete: (track) => store.isComplete(track) || cache.has(track),
    prepare: async (track) => {
      if (!store.isComplete(track) && cache.has(track)) await loadFromCache(await api.manifest(track));
    },
  } : null,
});

// The hub (its DataChannel, or HTTP while that is down) and the peers, as the peer algorithm decides.
const player = new Player({
  audio, api, store, stats, log, net,
  stream: streamRequested,
  managed: managedRequested,
  algorithm: () => algorithm,
  beforePlay: async (m) => {
    if (!cache) return;
    cache.touch(m.id);
    await loadFromCache(m);
    // Chunks that came from the persistent cache count as cache bytes each time they are played.
    let n = 0;
    for (const c of store.held(m.id).values()) if (c.source === 'cache') n += c.bytes.length;
    if (n > 0) stats.received('cache', n);
  },
});
const ui = new UI({ document, player, store, stats, queue: new Queue({ storage: localStore() }) });
const showDegraded = () => ui.setNotice('degraded', degradedNotice({
  cache: !!cache || httpRequested || params.get('cache') === '0',
  webrtc: !noWebRTC,
  mse: player.mode !== 'stream' || streamRequested,
}));
showDegraded();
player.addEventListener('mode', showDegraded);

/** Played-through and complete tracks, for the automation API. */
const automation = {
  ready: false,
  log: logLines,
  /** 'hub' when the hub DataChannel is up, else 'http'. */
  transport: 'http',
  /** When true (default), the next track starts when one ends (gaplessly where it can). */
  get autoAdvance() {
    return ui.autoAdvance;
  },
  set autoAdvance(on) {
    ui.autoAdvance = !!on;
  },
  /** The peer algorithm's constants in use (GET /api/config, else the built-in defaults). */
  algorithm,
  /** Plays track id; resolves when audio plays. */
  play: (/** @type {string} */ trackId) => ui.playTrack(trackId),
  pause: () => player.pause(),
  resume: () => player.resume(),
  seek: (/** @type {number} */ seconds) => player.seek(seconds),
  /** Starts a queue of track ids from the first (shuffled when shuffle is on). */
  playQueue: (/** @type {string[]} */ ids) => ui.playList(ids, 0),
  stats: () => ({
    server_bytes: stats.serverBytes,
    p2p_bytes: stats.bytes.peer,
    cache_bytes: stats.bytes.cache,
    uploaded_bytes: stats.uploaded,
    hub_bytes: stats.bytes.hub,
    http_bytes: stats.bytes.http,
    bad_chunks: stats.badChunks,
    reports_sent: stats.reportsSent,
    peers_abandoned: stats.peersAbandoned,
    /** Ids of the seeders remembered as misbehaving (most recent last). */
    bad_peers: net ? [...net.badPeers.keys()] : [],
    stalls: stats.stalls,
    peers: stats.peers,
    startup_ms: stats.lastStartupMs,
    playing: player.playing,
    currentTime: player.currentTime,
    duration: player.duration,
    track: player.trackId,
    /** The track chained after it in the same Media Source (it follows without a gap), or null. */
    next: player.chainedNext,
    complete: store.completeTracks(),
    mode: player.mode,
    /** Whether the playing track goes through a ManagedMediaSource, and the streaming hints it gave. */
    managed: player.managed,
    streaming_hints: player.streamingHints,
    /** Why the last track failed for good ({track, reason}), or null. */
    failure: player.failure,
    transport: net && net.hubOpen ? 'hub' : 'http',
    peer_id: net ? net.peerId : null,
    emergency_fetches: stats.emergencyFetches,
    /** Distinct peers that delivered a chunk in the current playback. */
    sources: player.loader ? player.loader.sourcesUsed : 0,
    /** Whether the first chunk of the current playback came from a peer. */
    start_from_peer: player.loader ? player.loader.startFromPeer === true : false,
    cache: cache ? { kind: cache.kind, tracks: cache.tracks(), bytes: cache.lru.size } : null,
    /** The play queue: ids in play order, the entry playing, shuffle and repeat. */
    queue: ui.queue.state(),
  }),
};
window.ztream = automation;

player.addEventListener('ended', () => {
  if (ui.autoAdvance) ui.next(true);
});

function markReady() {
  if (automation.ready) return;
  automation.ready = true;
  window.dispatchEvent(new Event('ztream-ready'));
}

function showConnection() {
  if (!net) ui.setConnection('fallback', 'HTTP only');
  else if (net.hubOpen) ui.setConnection('ok', stats.peers > 0 ? `hub + ${stats.peers} peer${stats.peers > 1 ? 's' : ''}` : 'hub connected');
  else if (net.peerId) ui.setConnection('fallback', 'HTTP fallback (connecting to hub…)');
  else ui.setConnection('error', 'offline: HTTP fallback, reconnecting…');
}

ui.start(api).then(
  () => {
    if (!net) {
      showConnection();
      markReady();
      return;
    }
    if (net.hubOpen) markReady();
    else setTimeout(markReady, HUB_WAIT_MS); // play over HTTP if the hub PeerConnection does not come up
  },
  (err) => {
    ui.setConnection('error', 'catalog unavailable');
    log(`loading the catalog: ${err.message}`);
  },
);

if (net) {
  net.addEventListener('state', (e) => {
    automation.transport = net.hubOpen ? 'hub' : 'http';
    if (/** @type {CustomEvent<{state: string}>} */ (e).detail.state === 'hub' && ui.tracks.length > 0) markReady();
    showConnection();
  });
  net.addEventListener('change', () => {
    showConnection();
    if (player.session) player.session.pump();
  });
  net.addEventListener('catalog', () => {
    ui.reloadCatalog(api).catch((err) => log(`reloading the catalog: ${err.message}`));
  });
  net.connect();
}
showConnection();
