// Entry point: wires the catalog, the player, the UI and the window.ztream
// automation API together.

import { CatalogAPI } from './api.js';
import { ChunkStore } from './chunkstore.js';
import { SessionStats } from './stats.js';
import { Player } from './player.js';
import { httpSource } from './loader.js';
import { UI } from './ui.js';

const api = new CatalogAPI('/api');
const store = new ChunkStore();
const stats = new SessionStats();
const audio = /** @type {HTMLAudioElement} */ (document.getElementById('audio'));
const log = (msg) => console.warn('[ztream]', msg);

const player = new Player({
  audio, api, store, stats, log,
  sources: () => [httpSource(api)],
});
const ui = new UI({ document, player, store, stats });

/** Played-through and complete tracks, for the automation API. */
const automation = {
  ready: false,
  /** When true (default), the next track starts when one ends. */
  autoAdvance: true,
  /** Plays track id; resolves when audio plays. */
  play: (trackId) => ui.playTrack(trackId),
  pause: () => player.pause(),
  resume: () => player.resume(),
  seek: (seconds) => player.seek(seconds),
  stats: () => ({
    server_bytes: stats.serverBytes,
    p2p_bytes: stats.bytes.peer,
    cache_bytes: stats.bytes.cache,
    uploaded_bytes: stats.uploaded,
    hub_bytes: stats.bytes.hub,
    http_bytes: stats.bytes.http,
    bad_chunks: stats.badChunks,
    stalls: stats.stalls,
    peers: stats.peers,
    startup_ms: stats.lastStartupMs,
    playing: player.playing,
    currentTime: player.currentTime,
    duration: player.duration,
    track: player.trackId,
    complete: store.completeTracks(),
    mode: player.mode,
  }),
};
window.ztream = automation;

player.addEventListener('ended', () => {
  if (automation.autoAdvance) ui.next(true);
});

ui.start(api).then(
  () => {
    automation.ready = true;
    ui.setConnection('fallback', 'HTTP');
    window.dispatchEvent(new Event('ztream-ready'));
  },
  (err) => {
    ui.setConnection('error', 'catalog unavailable');
    log(`loading the catalog: ${err.message}`);
  },
);
