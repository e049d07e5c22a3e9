// The player: plays one track at a time through Media Source Extensions.
//
// Chromium and Safari append the raw MP3 chunks to an 'audio/mpeg'
// SourceBuffer (generated timestamps, "sequence" mode; timestampOffset is set
// whenever an append does not continue the previous one). Firefox gets each
// chunk wrapped into an fMP4 fragment (fmp4.js). iOS has only
// ManagedMediaSource, used when MediaSource is missing (or with ?mse=managed):
// between its endstreaming and startstreaming events nothing is downloaded
// beyond what is to be appended. Gapless trimming:
// timestampOffset = −encoder_delay/sr and the append window [0, total_samples/sr);
// an engine that drops media at negative times (WebKitGTK buffers nothing)
// plays from offset 0 instead, untrimmed.
//
// Failure is bounded: a media error is recovered from (a new MediaSource at
// the same position) at most MAX_RECOVERIES times per track. When the Media
// Source never buffered anything (an engine that cannot take our chunks), or
// there is no Media Source for MP3 at all, the player falls back to the last
// resort: the track's whole MP3 from GET /api/tracks/{id}/stream in a plain
// <audio src> (no peers, every byte from the server), for this and later
// tracks. Otherwise it gives up on the track ('failed'): it stops
// downloading and does not go on to the next track.
//
// Chunks are downloaded by a Loader (the peer algorithm of docs/PROTOCOL.md
// §8: from the hub, peers and the HTTP endpoint, as swarm.js schedule()
// decides) into the ChunkStore; the player appends them from there, at most
// appendAheadSec ahead, and removes what lies far behind so the SourceBuffer
// stays small.

import { MP4_MIME, initSegment, fragment } from './fmp4.js';
import { DEFAULTS, bufferedAhead, toRanges, planAppends, planEvictions, chunksInRange } from './scheduler.js';
import { chunkAt, chunkStartSec, durationSec } from './timeline.js';
import { Loader } from './loader.js';

/** @typedef {import('./api.js').Manifest} Manifest */
/** @typedef {import('./swarm.js').Algorithm} Algorithm */

/** Start the next track's download when this many seconds remain. */
export const PREFETCH_REMAINING_SEC = 30;
/** A prefetch downloads the first this many seconds of the next track. */
export const PREFETCH_SEC = 10;
/** Seconds buffered before playback starts. */
export const START_BUFFER_SEC = 2;
/** Playback starts at the latest this long (ms) after the first chunk is buffered. */
const START_WAIT_MS = 1500;
/** Media errors recovered from per track before giving up. */
const MAX_RECOVERIES = 2;
/** Chunk appends that buffered nothing after which the Media Source is deemed unable to play them. */
const UNBUFFERED_APPENDS = 3;
/** How long play() waits for playback to start. */
const START_TIMEOUT_MS = 30000;

/**
 * The Media Source constructor of this browser (ManagedMediaSource on iOS,
 * or where preferred and present), or null.
 * @param {boolean} [preferManaged]
 */
export function mediaSourceClass(preferManaged = false) {
  const managed = globalThis.ManagedMediaSource || null;
  if (preferManaged && managed) return managed;
  return globalThis.MediaSource || managed;
}

/**
 * Whether ms is a ManagedMediaSource.
 * @param {unknown} ms
 */
function isManaged(ms) {
  return !!globalThis.ManagedMediaSource && ms instanceof globalThis.ManagedMediaSource;
}

/**
 * 'mpeg' when raw MP3 can be appended, 'mp4' when it must be wrapped, or null.
 * @param {{isTypeSupported(type: string): boolean} | null} [MS]
 * @returns {'mpeg'|'mp4'|null}
 */
export function appendMode(MS = mediaSourceClass()) {
  if (!MS) return null;
  if (MS.isTypeSupported('audio/mpeg')) return 'mpeg';
  if (MS.isTypeSupported(MP4_MIME)) return 'mp4';
  return null;
}

/**
 * How the player plays: appending chunks to a Media Source ('mpeg' or
 * 'mp4', see appendMode), or 'stream', the whole MP3 from the server in a
 * plain <audio src> where no Media Source can take MP3.
 * @param {{isTypeSupported(type: string): boolean} | null} [MS]
 * @returns {'mpeg'|'mp4'|'stream'}
 */
export function playMode(MS = mediaSourceClass()) {
  return appendMode(MS) || 'stream';
}

/** One track loaded into one MediaSource. */
class Session {
  /**
   * @param {Player} player
   * @param {Manifest} manifest
   * @param {Loader} loader
   * @param {number} t0 when play() was called (performance.now())
   */
  constructor(player, manifest, loader, t0) {
    this.p = player;
    this.m = manifest;
    this.id = manifest.id;
    this.loader = loader;
    this.t0 = t0;
    this.audio = player.audio;
    this.mode = player.mode;
    this.appended = new Set();
    this.lastAppended = -2;
    this.initAppended = false;
    this.started = false;
    /** Whether the start latency counts in the stats (not after a recovery); set by play(). */
    this.countStartup = false;
    this.seekPending = false;
    this.closed = false;
    /** @type {number} */
    this.aheadSec = DEFAULTS.appendAheadSec;
    this.quotaUntil = 0;
    this.prefetched = false;
    /** Whether the SourceBuffer ever held media (a media error before that blames the engine, not the track). */
    this.everBuffered = false;
    /** Chunk appends completed (updateend), and whether one is under way. */
    this.chunkAppends = 0;
    this.appending = false;
    /** Whether the start was appended at a negative timestampOffset (the gapless trim), and whether it was appended again at 0. */
    this.negativeOffset = false;
    this.retriedAtZero = false;
    /** @type {MediaSource|null} */
    this.ms = null;
    /** @type {SourceBuffer|null} */
    this.sb = null;
    this.onChunk = () => this.pump();
  }

  /**
   * Creates the MediaSource and SourceBuffer; resolves once it can take appends.
   * @param {number} startAt
   */
  open(startAt) {
    const MS = mediaSourceClass(this.p.preferManaged);
    const ms = new MS();
    this.ms = ms;
    this.startAt = startAt;
    const audio = this.audio;
    if (isManaged(ms)) {
      audio.disableRemotePlayback = true; // required for ManagedMediaSource to open
      this.p.log('playing through ManagedMediaSource');
      // The browser says when it wants data: between endstreaming and
      // startstreaming, nothing beyond what is to be appended is downloaded.
      ms.addEventListener('endstreaming', () => {
        if (this.closed) return;
        this.loader.limitSec = this.position + this.aheadSec;
        this.p.streamingHints++;
        this.p.log(`endstreaming at ${this.position.toFixed(1)} s: downloading up to ${this.loader.limitSec.toFixed(1)} s`);
      });
      ms.addEventListener('startstreaming', () => {
        if (this.closed) return;
        this.loader.limitSec = Infinity;
        this.p.streamingHints++;
        this.p.log(`startstreaming at ${this.position.toFixed(1)} s`);
        this.pump();
      });
    }
    return /** @type {Promise<void>} */ (new Promise((resolve, reject) => {
      ms.addEventListener('sourceopen', () => {
        if (this.sb || this.closed) return; // reopened after endOfStream
        try {
          ms.duration = durationSec(this.m);
          const type = this.mode === 'mpeg' ? 'audio/mpeg' : MP4_MIME;
          try {
            this.sb = ms.addSourceBuffer(type);
          } catch (err) {
            this.sb = ms.addSourceBuffer(type); // Firefox once refused the first try on a cold start
          }
          this.sb.appendWindowStart = 0;
          this.sb.appendWindowEnd = durationSec(this.m);
          if (this.mode === 'mp4') {
            this.sb.timestampOffset = -this.m.encoder_delay / this.m.sample_rate;
          }
          this.sb.addEventListener('updateend', () => {
            this.checkBuffered();
            this.pump();
          });
          this.sb.addEventListener('error', () => this.p.log(`SourceBuffer error on ${this.id}`));
          resolve();
        } catch (err) {
          reject(err);
        }
      }, { once: false });
      if (isManaged(ms) && 'srcObject' in audio) {
        try {
          audio.srcObject = ms;
        } catch {
          audio.src = URL.createObjectURL(ms);
        }
      } else {
        this.objectURL = URL.createObjectURL(ms);
        audio.src = this.objectURL;
      }
    })).then(() => {
      if (this.closed) return;
      if (startAt > 0) audio.currentTime = startAt;
      this.loader.addEventListener('chunk', this.onChunk);
      this.timer = setInterval(() => this.pump(), 500);
      this.pump();
    });
  }

  /**
   * After an append: notes whether the SourceBuffer holds media. Chunks
   * appended with nothing buffered mean the engine drops them: first
   * without the negative start offset, then for good (the player falls
   * back to streaming the file).
   */
  checkBuffered() {
    const sb = this.sb;
    if (this.closed || !sb) return;
    if (this.appending) {
      this.appending = false;
      this.chunkAppends++;
    }
    let held = false;
    try {
      held = sb.buffered.length > 0;
    } catch {
      return; // removed from its MediaSource
    }
    if (held) {
      if (!this.everBuffered && this.retriedAtZero) this.p.log('this browser drops media before 0 s: tracks start untrimmed');
      this.everBuffered = true;
      return;
    }
    if (this.everBuffered || this.chunkAppends === 0) return;
    if (this.negativeOffset) {
      // Append the same chunks again from offset 0 (WebKitGTK takes them then).
      this.p.negativeOffsets = false;
      this.negativeOffset = false;
      this.retriedAtZero = true;
      this.appended.clear();
      this.lastAppended = -2;
      this.chunkAppends = 0;
      return;
    }
    if (this.chunkAppends >= UNBUFFERED_APPENDS) {
      // Not the offset: the chunks themselves are not taken.
      if (this.retriedAtZero) this.p.negativeOffsets = true;
      this.p.cannotPlay(this, `${this.chunkAppends} chunks appended, nothing buffered`);
    }
  }

  close() {
    this.closed = true;
    clearInterval(this.timer);
    this.loader.removeEventListener('chunk', this.onChunk);
    if (this.objectURL) URL.revokeObjectURL(this.objectURL);
  }

  get position() {
    if (!this.sb) return this.startAt || 0;
    return this.audio.currentTime;
  }

  /** Seconds buffered contiguously from the playhead. */
  bufferedAhead() {
    if (!this.sb) return 0;
    try {
      return bufferedAhead(toRanges(this.sb.buffered), this.audio.currentTime);
    } catch {
      return 0; // the SourceBuffer was removed
    }
  }

  /** One step of buffer management: evict, append or end the stream; then let the loader plan. */
  pump() {
    if (this.closed) return;
    this.loader.kick();
    const sb = this.sb;
    const ms = this.ms;
    if (!sb || !ms || sb.updating || ms.readyState === 'closed' || this.audio.error) return;
    const position = this.audio.currentTime;
    const m = this.m;
    const now = performance.now();
    if (this.quotaUntil && now > this.quotaUntil) {
      this.quotaUntil = 0;
      this.aheadSec = DEFAULTS.appendAheadSec;
    }
    const ranges = toRanges(sb.buffered);
    const evict = planEvictions({
      ranges, position, duration: durationSec(m), appendAheadSec: this.aheadSec,
      keepBehindSec: this.quotaUntil ? 3 : DEFAULTS.keepBehindSec,
    });
    if (evict.length > 0) {
      const [start, end] = evict[0];
      for (const s of chunksInRange(m, start, end)) this.appended.delete(s);
      this.lastAppended = -2;
      sb.remove(start, end);
      return;
    }
    if (this.mode === 'mp4' && !this.initAppended) {
      this.initAppended = true;
      sb.appendBuffer(initSegment({ sampleRate: m.sample_rate, channels: m.channels, bitrate: m.bitrate }));
      return;
    }
    const todo = planAppends({ manifest: m, position, have: this.p.store.held(this.id), appended: this.appended, aheadSec: this.aheadSec });
    if (todo.length > 0) {
      this.append(todo[0]);
      return;
    }
    this.maybeEnd(position);
    this.maybePrefetch(position);
  }

  /** @param {number} seq */
  append(seq) {
    const m = this.m;
    const bytes = this.p.store.get(this.id, seq);
    const sb = this.sb;
    if (!bytes || !sb) return;
    try {
      if (this.mode === 'mpeg') {
        if (this.lastAppended !== seq - 1) {
          const at = chunkStartSec(m, seq);
          sb.timestampOffset = this.p.negativeOffsets ? at : Math.max(0, at);
          this.negativeOffset = sb.timestampOffset < 0;
        }
        sb.appendBuffer(bytes);
      } else {
        sb.appendBuffer(fragment({ seq, bytes, framesPerChunk: m.frames_per_chunk, samplesPerFrame: m.samples_per_frame }));
      }
      this.appending = true;
      this.appended.add(seq);
      this.lastAppended = seq;
      this.p.dispatchEvent(new CustomEvent('appended', { detail: { track: this.id, seq } }));
    } catch (err) {
      if (err && err.name === 'QuotaExceededError') {
        // Keep less: drop more of what is behind, append less ahead for a while.
        this.quotaUntil = performance.now() + 30000;
        this.aheadSec = Math.max(10, this.aheadSec / 2);
        this.p.log(`SourceBuffer full: appending ${this.aheadSec}s ahead for a while`);
        setTimeout(() => this.pump(), 200);
      } else {
        this.p.log(`append of chunk ${seq} failed: ${err && err.message}`);
        this.lastAppended = -2;
      }
    }
  }

  /**
   * Calls endOfStream once every chunk from the playhead to the last one is appended.
   * @param {number} position
   */
  maybeEnd(position) {
    const n = this.m.chunks.length;
    const ms = this.ms;
    if (!ms || ms.readyState !== 'open' || !this.appended.has(n - 1)) return;
    for (let s = chunkAt(this.m, position); s < n; s++) if (!this.appended.has(s)) return;
    try {
      ms.endOfStream();
    } catch (err) {
      this.p.log(`endOfStream: ${err.message}`);
    }
  }

  /**
   * Announces the end of the track (the next one is prefetched) once
   * PREFETCH_REMAINING_SEC remain and the rest of this one is held (or
   * half of that remains).
   * @param {number} position
   */
  maybePrefetch(position) {
    if (this.prefetched) return;
    const remaining = durationSec(this.m) - position;
    if (remaining > PREFETCH_REMAINING_SEC) return;
    if (remaining > PREFETCH_REMAINING_SEC / 2 && !this.loader.completeFrom(position)) return;
    this.prefetched = true;
    this.p.dispatchEvent(new CustomEvent('nearend', { detail: { track: this.id } }));
  }
}

/**
 * One track played by a plain <audio src> from GET /api/tracks/{id}/stream:
 * the last resort of a browser whose Media Source cannot take our chunks.
 * No loader: no peers, no cache, every byte from the server.
 */
class StreamSession {
  /**
   * @param {Player} player
   * @param {Manifest} manifest
   * @param {number} t0 when play() was called (performance.now())
   */
  constructor(player, manifest, t0) {
    this.p = player;
    this.m = manifest;
    this.id = manifest.id;
    this.t0 = t0;
    this.audio = player.audio;
    /** @type {Loader|null} */
    this.loader = null;
    this.started = false;
    this.countStartup = false;
    this.seekPending = false;
    this.closed = false;
    /** A progressive file either plays or fails: there is nothing further to fall back to. */
    this.everBuffered = true;
  }

  /** @param {number} startAt */
  open(startAt) {
    this.audio.src = this.p.api.streamURL(this.id);
    if (startAt > 0) {
      this.audio.addEventListener('loadedmetadata', () => {
        if (!this.closed) this.audio.currentTime = startAt;
      }, { once: true });
    }
    return Promise.resolve();
  }

  close() {
    this.closed = true;
  }

  get position() {
    return this.audio.currentTime;
  }

  bufferedAhead() {
    return bufferedAhead(toRanges(this.audio.buffered), this.audio.currentTime);
  }

  pump() {}
}

export class Player extends EventTarget {
  /**
   * @param {{audio: HTMLAudioElement, api: import('./api.js').CatalogAPI,
   *   store: import('./chunkstore.js').ChunkStore, stats: import('./stats.js').SessionStats,
   *   net?: import('./net.js').Net|null, algorithm?: () => Partial<Algorithm>,
   *   beforePlay?: (m: Manifest) => Promise<void>, log?: (msg: string) => void, stream?: boolean, managed?: boolean}} opts
   *   net: the hub connection and peer links (null: HTTP only); algorithm: the peer algorithm's constants;
   *   stream: play every track whole from the server's file (mode 'stream'), never through a Media Source;
   *   managed: use ManagedMediaSource where MediaSource exists too
   */
  constructor({ audio, api, store, stats, net = null, algorithm = () => ({}), beforePlay = async () => {},
    log = (msg) => console.warn('[ztream]', msg), stream = false, managed = false }) {
    super();
    this.audio = audio;
    this.api = api;
    this.store = store;
    this.stats = stats;
    this.net = net;
    this.algorithm = algorithm;
    /** Called with the manifest before a track's chunks are fetched (loads it from the persistent cache). */
    this.beforePlay = beforePlay;
    this.log = log;
    /** ManagedMediaSource over MediaSource where both exist (?mse=managed: Safari on iOS's path, on other WebKits). */
    this.preferManaged = managed;
    /** 'mpeg' or 'mp4' (Media Source), or 'stream' (see playMode); becomes 'stream' when the Media Source fails. */
    this.mode = stream ? 'stream' : playMode(mediaSourceClass(managed));
    /** startstreaming/endstreaming events seen from a ManagedMediaSource. */
    this.streamingHints = 0;
    /** Whether this engine keeps media appended at a negative timestampOffset (cleared when it is seen not to). */
    this.negativeOffsets = true;
    /** Set when a track failed for good: {track, reason}; cleared by the next play(). @type {{track: string, reason: string}|null} */
    this.failure = null;
    /** Log every media element event (?debug=1). */
    this.debugEvents = /[?&]debug=1/.test(globalThis.location ? globalThis.location.search : '');
    /** @type {Session|StreamSession|null} */
    this.session = null;
    /** Recoveries from media errors per track id. @type {Map<string, number>} */
    this.recoveries = new Map();
    /** Loaders by track id: the current track's and a prefetched one. @type {Map<string, Loader>} */
    this.loaders = new Map();
    this.wireAudio();
  }

  get trackId() {
    return this.session ? this.session.id : null;
  }

  get manifest() {
    return this.session ? this.session.m : null;
  }

  /** Whether the current track plays through a ManagedMediaSource. */
  get managed() {
    return !!this.session && 'ms' in this.session && isManaged(this.session.ms);
  }

  /** The loader of the current track, or null. */
  get loader() {
    return this.session ? this.session.loader : null;
  }

  wireAudio() {
    const a = this.audio;
    if (this.debugEvents) {
      for (const ev of ['seeking', 'seeked', 'waiting', 'playing', 'pause', 'play', 'canplay', 'stalled', 'ended']) {
        a.addEventListener(ev, () => this.log(`event ${ev} t=${a.currentTime.toFixed(3)} rs=${a.readyState} seekPending=${this.session && this.session.seekPending}`));
      }
    }
    a.addEventListener('playing', () => {
      const s = this.session;
      if (!s) return;
      s.seekPending = false;
      if (!s.started) {
        s.started = true;
        if (s.countStartup) this.stats.startup(performance.now() - s.t0);
      }
    });
    a.addEventListener('seeking', () => {
      if (this.session) {
        this.session.seekPending = true;
        this.session.pump();
      }
    });
    a.addEventListener('seeked', () => this.session && this.session.pump());
    a.addEventListener('timeupdate', () => this.session && this.session.pump());
    a.addEventListener('waiting', () => {
      const s = this.session;
      if (s && s.started && !s.seekPending && !a.seeking && !a.ended) {
        this.stats.stall();
        this.log(`stall at ${a.currentTime.toFixed(2)}s (${s.bufferedAhead().toFixed(2)}s buffered)`);
      }
    });
    a.addEventListener('ended', () => {
      // Only a track that played ends: an engine that ends an empty stream does not skip through the library.
      if (this.session && this.session.started) this.dispatchEvent(new CustomEvent('ended', { detail: { track: this.session.id } }));
    });
    a.addEventListener('error', () => {
      const e = a.error;
      const s = this.session;
      if (!s) return;
      const what = e ? (e.message || `media error ${e.code}`) : 'media error';
      this.log(`media error ${e ? e.code + ' ' + e.message : ''}`);
      // Recover: a new MediaSource at the same position, at most MAX_RECOVERIES times per track.
      const n = this.recoveries.get(s.id) || 0;
      if (n >= MAX_RECOVERIES) {
        this.cannotPlay(s, what);
        return;
      }
      this.recoveries.set(s.id, n + 1);
      const at = a.currentTime;
      this.log(`recovering ${s.id} at ${at.toFixed(2)}s (attempt ${n + 1})`);
      this.play(s.id, at, { recovery: true }).catch((err) => this.log(`recovery failed: ${err.message}`));
    });
  }

  /**
   * The loader of track m (reusing a prefetch), with no download limit.
   * @param {Manifest} m
   */
  loaderFor(m) {
    let l = this.loaders.get(m.id);
    if (!l) {
      l = new Loader({
        manifest: m, store: this.store, stats: this.stats, net: this.net, api: this.api, config: this.algorithm(), log: this.log,
        position: () => (this.session && this.session.id === m.id ? this.session.position : 0),
      });
      this.loaders.set(m.id, l);
    }
    l.limitSec = Infinity;
    return l;
  }

  /**
   * Plays track id from startAt seconds. Resolves once audio is playing
   * (rejects if another play() supersedes it, on error, or after 30 s).
   * @param {string} id
   * @param {number} [startAt]
   * @param {{recovery?: boolean, t0?: number, countStartup?: boolean}} [opts]
   *   recovery: after a media error (counts towards MAX_RECOVERIES); t0: when the listener asked
   *   (a restart keeps the first play()'s); countStartup: whether the start latency counts (not after a recovery)
   */
  async play(id, startAt = 0, { recovery = false, t0 = performance.now(), countStartup = !recovery } = {}) {
    if (!recovery) this.recoveries.delete(id);
    this.failure = null;
    const m = await this.api.manifest(id);
    this.stop();
    if (this.mode === 'stream') return this.playStream(m, startAt, t0, countStartup);
    this.store.setTotal(m.id, m.chunks.length);
    try {
      await this.beforePlay(m);
    } catch (err) {
      this.log(`before playing ${id}: ${err.message}`);
    }
    this.stop(); // a play() that started meanwhile loses
    const loader = this.loaderFor(m);
    // Forget other loaders (a prefetch of another track, the previous track).
    for (const [tid, l] of this.loaders) {
      if (tid !== id) {
        l.stop();
        this.loaders.delete(tid);
      }
    }
    this.store.pinned.clear();
    this.store.pinned.add(id);
    this.store.touch(id);
    const s = new Session(this, m, loader, t0);
    s.countStartup = countStartup;
    this.session = s;
    this.dispatchEvent(new CustomEvent('track', { detail: { manifest: m } }));
    loader.kick();
    await s.open(startAt);
    if (this.session !== s) {
      s.close();
      throw new DOMException('superseded by another play()', 'AbortError');
    }
    return this.startPlayback(s);
  }

  /**
   * Plays m from the server's file (mode 'stream'); no loader downloads it.
   * @param {Manifest} m
   * @param {number} startAt
   * @param {number} t0
   * @param {boolean} countStartup
   */
  async playStream(m, startAt, t0, countStartup) {
    for (const l of this.loaders.values()) l.stop();
    this.loaders.clear();
    this.store.pinned.clear();
    const s = new StreamSession(this, m, t0);
    s.countStartup = countStartup;
    this.session = s;
    this.dispatchEvent(new CustomEvent('track', { detail: { manifest: m } }));
    await s.open(startAt);
    return this.startPlayback(s);
  }

  /**
   * s's track cannot play (why). If the Media Source never buffered
   * anything, it cannot take our chunks here: this and later tracks stream
   * from the server's file instead. Otherwise (or already streaming) the
   * track fails.
   * @param {Session|StreamSession} s
   * @param {string} why
   */
  cannotPlay(s, why) {
    if (this.session !== s) return;
    if (s.everBuffered || this.mode === 'stream') {
      this.fail(s, why);
      return;
    }
    this.log(`the Media Source cannot play these tracks (${why}): streaming the files from the server`);
    this.mode = 'stream';
    this.dispatchEvent(new CustomEvent('mode', { detail: { mode: this.mode, reason: why } }));
    this.play(s.id, s.position, { recovery: true, t0: s.t0, countStartup: s.countStartup && !s.started })
      .catch((err) => this.log(`streaming ${s.id} failed: ${err.message}`));
  }

  /**
   * Gives up on s's track: stops playing and downloading it, and says why
   * ('failed'); the next track does not start by itself.
   * @param {Session|StreamSession} s
   * @param {string} reason
   */
  fail(s, reason) {
    if (this.session !== s) return;
    this.log(`giving up on ${s.id}: ${reason}`);
    const l = this.loaders.get(s.id);
    if (l) {
      l.stop();
      this.loaders.delete(s.id);
    }
    this.stop();
    this.failure = { track: s.id, reason };
    this.dispatchEvent(new CustomEvent('failed', { detail: { manifest: s.m, reason } }));
  }

  /**
   * Resolves once START_BUFFER_SEC are buffered at the playhead (or the rest
   * of the track is, or START_WAIT_MS passed since the first data), so the
   * first seconds do not stall while the next chunks are still in flight.
   * @param {Session} s
   * @returns {Promise<void>}
   */
  waitForStartBuffer(s) {
    return new Promise((resolve) => {
      let firstData = 0;
      const check = () => {
        if (this.session !== s) return resolve();
        const ahead = s.bufferedAhead();
        const rest = durationSec(s.m) - this.audio.currentTime;
        if (ahead > 0 && !firstData) firstData = performance.now();
        if (ahead >= Math.min(START_BUFFER_SEC, rest - 0.05) || (firstData && performance.now() - firstData > START_WAIT_MS)) {
          resolve();
          return;
        }
        setTimeout(check, 20);
      };
      check();
    });
  }

  /**
   * Calls audio.play() and waits for the 'playing' event. A track that
   * does not start within START_TIMEOUT_MS fails (and stops downloading).
   * @param {Session|StreamSession} s
   * @returns {Promise<void>}
   */
  async startPlayback(s) {
    if (s instanceof Session) await this.waitForStartBuffer(s);
    if (this.session !== s) throw new DOMException('superseded by another play()', 'AbortError');
    return new Promise((resolve, reject) => {
      const a = this.audio;
      /** @type {number|undefined} */
      let timer;
      /** @param {unknown} [err] */
      const done = (err) => {
        clearTimeout(timer);
        a.removeEventListener('playing', onPlaying);
        a.removeEventListener('error', onError);
        this.removeEventListener('track', onOther);
        if (err) reject(err);
        else resolve();
      };
      const onPlaying = () => done();
      const onError = () => done(new Error(`media error: ${a.error ? a.error.message || a.error.code : 'unknown'}`));
      const onOther = () => done(new DOMException('superseded by another play()', 'AbortError'));
      a.addEventListener('playing', onPlaying);
      a.addEventListener('error', onError);
      this.addEventListener('track', onOther);
      timer = setTimeout(() => {
        const err = new Error(`playback did not start within ${START_TIMEOUT_MS / 1000} s`);
        done(err);
        this.cannotPlay(s, err.message);
      }, START_TIMEOUT_MS);
      a.play().catch((err) => {
        if (this.session === s) done(err);
      });
    });
  }

  /** Detaches the current track. */
  stop() {
    const s = this.session;
    if (!s) return;
    s.close();
    this.session = null;
    this.audio.pause();
    this.audio.removeAttribute('src');
    if ('srcObject' in this.audio) this.audio.srcObject = null;
    this.audio.load();
  }

  pause() {
    this.audio.pause();
  }

  resume() {
    if (this.session) return this.audio.play();
    return Promise.resolve();
  }

  /**
   * Seeks to t seconds (clamped to the track).
   * @param {number} t
   */
  seek(t) {
    const s = this.session;
    if (!s) return;
    const d = durationSec(s.m);
    const to = Math.max(0, Math.min(d - 0.05, t));
    s.seekPending = true;
    if (s.loader) s.loader.kick();
    this.audio.currentTime = to;
    s.pump();
  }

  /**
   * Downloads the start of track id in the background (next in the queue).
   * @param {string} id
   */
  async prefetch(id) {
    if (this.loaders.has(id)) return;
    const m = await this.api.manifest(id);
    if (this.loaders.has(id) || (this.session && this.session.id === id)) return;
    const l = this.loaderFor(m);
    l.limitSec = PREFETCH_SEC;
    this.store.pinned.add(id);
    l.kick();
  }

  get playing() {
    return !!this.session && !this.audio.paused && !this.audio.ended;
  }

  get currentTime() {
    return this.session ? this.audio.currentTime : 0;
  }

  get duration() {
    return this.session ? durationSec(this.session.m) : 0;
  }
}
