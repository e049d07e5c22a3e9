// The player: plays tracks through Media Source Extensions, one MediaSource
// for a track and the tracks chained after it (setNext): consecutive tracks
// play without a gap, each at its own base in the timeline (chain.js).
//
// Chromium and Safari append the raw MP3 chunks to an 'audio/mpeg'
// SourceBuffer (generated timestamps, "sequence" mode; timestampOffset is set
// whenever an append does not continue the previous one). Firefox gets each
// chunk wrapped into an fMP4 fragment (fmp4.js). iOS has only
// ManagedMediaSource, used when MediaSource is missing (or with ?mse=managed):
// between its endstreaming and startstreaming events nothing is downloaded
// beyond what is to be appended. Gapless trimming: timestampOffset =
// base − encoder_delay/sr and the append window [base, base + total_samples/sr);
// an engine that drops media at negative times (WebKitGTK buffers nothing)
// plays its first track from offset 0 instead, untrimmed, and chains none.
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
import { DEFAULTS, bufferedAhead, toRanges, planEvictions } from './scheduler.js';
import { durationSec } from './timeline.js';
import { appendSettings, appendedToEnd, chainable, nextAppend, partAt, partChunksIn, partEnd } from './chain.js';
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

/**
 * One track of a Session: where it lies in the Media Source's timeline,
 * the loader that downloads it and its chunks in the SourceBuffer.
 * @typedef {import('./chain.js').Part & {loader: Loader, nearEnd: boolean, misses?: number}} PlayerPart
 */

/**
 * Sets a SourceBuffer's append window to [start, end), in the order the
 * setters accept (the start must stay below the end at every step).
 * @param {SourceBuffer} sb
 * @param {number} start
 * @param {number} end
 */
function setAppendWindow(sb, start, end) {
  if (start >= sb.appendWindowEnd) {
    sb.appendWindowEnd = end;
    sb.appendWindowStart = start;
  } else {
    sb.appendWindowStart = start;
    sb.appendWindowEnd = end;
  }
}

/**
 * One MediaSource playing one track, and the tracks chained after it for
 * gapless playback (chain.js): the playhead goes from one to the next
 * without a new MediaSource. At most the track before the playhead's, that
 * one and the one after it are kept.
 */
class Session {
  /**
   * @param {Player} player
   * @param {Manifest} manifest
   * @param {Loader} loader
   * @param {number} t0 when play() was called (performance.now())
   */
  constructor(player, manifest, loader, t0) {
    this.p = player;
    this.t0 = t0;
    this.audio = player.audio;
    this.mode = player.mode;
    /** The tracks in this MediaSource, in timeline order. @type {PlayerPart[]} */
    this.parts = [];
    /** The part the playhead was in at the last pump(). */
    this.cur = 0;
    /** The chunk appended last (the next one in its part continues it), and the parts whose settings the SourceBuffer has. */
    /** @type {{part: PlayerPart, seq: number}|null} */
    this.last = null;
    /** @type {PlayerPart|null} */
    this.windowPart = null;
    /** @type {PlayerPart|null} */
    this.offsetPart = null;
    /** Where a removal of everything after it is due (a chained track was unchained), or null. @type {number|null} */
    this.truncateAt = null;
    /** A chained track whose first chunk is being appended (checkChained looks at it after), or null. @type {PlayerPart|null} */
    this.firstOfChained = null;
    /** The timer of watchEdge (0: none). @type {ReturnType<typeof setTimeout>|0} */
    this.edgeTimer = 0;
    this.initAppended = false;
    this.started = false;
    /** Whether the start latency counts in the stats (not after a recovery); set by play(). */
    this.countStartup = false;
    this.seekPending = false;
    this.closed = false;
    /** @type {number} */
    this.aheadSec = DEFAULTS.appendAheadSec;
    this.quotaUntil = 0;
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
    this.addPart(manifest, loader, 0);
  }

  /**
   * Adds track m at base to the end of the chain.
   * @param {Manifest} m
   * @param {Loader} loader
   * @param {number} base
   */
  addPart(m, loader, base) {
    this.parts.push({ m, base, appended: new Set(), loader, nearEnd: false });
    loader.addEventListener('chunk', this.onChunk);
  }

  /**
   * The index of the part under the playhead (computed now, between pumps too).
   */
  here() {
    return this.sb ? Math.max(partAt(this.parts, this.audio.currentTime), 0) : this.cur;
  }

  /** The part under the playhead. */
  get part() {
    return this.parts[this.here()];
  }

  /** The manifest of the track under the playhead. */
  get m() {
    return this.part.m;
  }

  /** The id of the track under the playhead. */
  get id() {
    return this.part.m.id;
  }

  /** The loader of the track under the playhead. */
  get loader() {
    return this.part.loader;
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
          const m = this.parts[0].m;
          ms.duration = durationSec(m);
          const type = this.mode === 'mpeg' ? 'audio/mpeg' : MP4_MIME;
          try {
            this.sb = ms.addSourceBuffer(type);
          } catch (err) {
            this.sb = ms.addSourceBuffer(type); // Firefox once refused the first try on a cold start
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
    if (this.firstOfChained) {
      const part = this.firstOfChained;
      this.firstOfChained = null;
      this.checkChained(part);
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
      for (const part of this.parts) part.appended.clear();
      this.last = null;
      this.chunkAppends = 0;
      return;
    }
    if (this.chunkAppends >= UNBUFFERED_APPENDS) {
      // Not the offset: the chunks themselves are not taken.
      if (this.retriedAtZero) this.p.negativeOffsets = true;
      this.p.cannotPlay(this, `${this.chunkAppends} chunks appended, nothing buffered`);
    }
  }

  /**
   * After the first chunks of a chained track were appended: they must show
   * in the SourceBuffer after the track's base. An engine that drops it
   * (WebKitGTK drops MP3 frames cut by the append window, and all that
   * follows) cannot play tracks gaplessly: the track is unchained and
   * plays after the end of this one, as do later ones.
   * @param {PlayerPart} part
   */
  checkChained(part) {
    const i = this.parts.indexOf(part);
    if (i <= 0) return;
    const ranges = toRanges(/** @type {SourceBuffer} */ (this.sb).buffered);
    if (ranges.some(([start, end]) => end > part.base + 0.1 && start < partEnd(part))) return;
    // Two appends that show nothing: one alone was once seen in Chromium, which played on gaplessly.
    part.misses = (part.misses || 0) + 1;
    if (part.misses < 2) {
      this.p.log(`the first chunk of chained track ${part.m.id} does not show yet (buffered ${JSON.stringify(ranges.map(([a, b]) => [+a.toFixed(3), +b.toFixed(3)]))})`);
      return;
    }
    this.p.gapless = false;
    this.p.log(`this browser dropped the start of a chained track (${part.m.id} at ${part.base.toFixed(3)} s; buffered ${JSON.stringify(ranges.map(([a, b]) => [+a.toFixed(3), +b.toFixed(3)]))}, appended ${[...part.appended]}): tracks play one after the other, with a gap`);
    this.unchainAfter(i - 1);
    this.p.partsChanged(this);
  }

  close() {
    this.closed = true;
    clearInterval(this.timer);
    if (this.edgeTimer) clearTimeout(this.edgeTimer);
    for (const part of this.parts) part.loader.removeEventListener('chunk', this.onChunk);
    if (this.objectURL) URL.revokeObjectURL(this.objectURL);
  }

  /** Seconds into the track under the playhead. */
  get position() {
    if (!this.sb) return this.startAt || 0;
    return Math.max(0, this.audio.currentTime - this.part.base);
  }

  /**
   * The playhead in track id's time: seconds into it when it plays, minus
   * the seconds until it starts when it is chained after the one playing
   * (the loader then knows how soon its first chunks are due), else 0.
   * @param {string} id
   */
  positionOf(id) {
    if (this.id === id) return this.position;
    if (!this.sb) return 0;
    for (let i = this.here() + 1; i < this.parts.length; i++) {
      const part = this.parts[i];
      if (part.m.id === id) return Math.min(this.audio.currentTime - part.base, 0);
    }
    return 0;
  }

  /** Seconds buffered contiguously from the playhead (across chained tracks). */
  bufferedAhead() {
    if (!this.sb) return 0;
    try {
      return bufferedAhead(toRanges(this.sb.buffered), this.audio.currentTime);
    } catch {
      return 0; // the SourceBuffer was removed
    }
  }

  /**
   * Puts track m (downloaded by loader) right after the part under the
   * playhead, in place of what followed it. Returns false when it is
   * there already.
   * @param {Manifest} m
   * @param {Loader} loader
   */
  chain(m, loader) {
    const cur = this.here();
    const after = this.parts[cur + 1];
    if (after && after.m.id === m.id) return false;
    this.unchainAfter(cur);
    this.addPart(m, loader, partEnd(this.parts[cur]));
    this.p.log(`chained ${m.id.slice(0, 8)} after ${this.parts[cur].m.id.slice(0, 8)} at ${partEnd(this.parts[cur]).toFixed(3)} s`);
    this.p.partsChanged(this);
    this.pump();
    return true;
  }

  /**
   * Drops the parts after part i; their media is removed from the SourceBuffer by the next pump().
   * @param {number} i
   */
  unchainAfter(i) {
    if (i + 1 >= this.parts.length) return;
    const dropped = this.parts.splice(i + 1);
    const at = dropped[0].base;
    this.truncateAt = this.truncateAt === null ? at : Math.min(this.truncateAt, at);
    this.detach(dropped);
    if (this.last && dropped.includes(this.last.part)) this.last = null;
    if (this.windowPart && dropped.includes(this.windowPart)) this.windowPart = null;
    if (this.offsetPart && dropped.includes(this.offsetPart)) this.offsetPart = null;
  }

  /**
   * Stops listening to the loaders of parts no longer in the chain (a
   * loader another part shares, the same track twice, still tells).
   * @param {PlayerPart[]} gone
   */
  detach(gone) {
    for (const part of gone) {
      if (!this.parts.some((p) => p.loader === part.loader)) part.loader.removeEventListener('chunk', this.onChunk);
    }
  }

  /**
   * Follows the playhead into another part: the part before it and the one
   * after stay, others go; the player is told (a 'track' event).
   */
  advance() {
    const i = this.here();
    if (i === this.cur) return;
    const dir = i > this.cur ? 1 : -1;
    this.p.log(`gapless ${dir > 0 ? 'on' : 'back'} from ${this.parts[this.cur].m.id.slice(0, 8)} to ${this.parts[i].m.id.slice(0, 8)} at ${this.audio.currentTime.toFixed(3)} s`);
    this.cur = i;
    this.parts[i].nearEnd = false; // said again for this pass through it
    this.unchainAfter(i + 1);
    if (i > 1) {
      const gone = this.parts.splice(0, i - 1);
      this.detach(gone);
      this.cur = 1;
    }
    this.p.partsChanged(this);
    this.p.dispatchEvent(new CustomEvent('track', { detail: { manifest: this.m, gapless: true, dir } }));
  }

  /** One step of buffer management: evict, append or end the stream; then let the loaders plan. */
  pump() {
    if (this.closed) return;
    if (this.sb) {
      this.advance();
      this.watchEdge(this.audio.currentTime);
    }
    for (const part of this.parts) part.loader.kick();
    const sb = this.sb;
    const ms = this.ms;
    if (!sb || !ms || sb.updating || ms.readyState === 'closed' || this.audio.error) return;
    const position = this.audio.currentTime;
    const now = performance.now();
    if (this.quotaUntil && now > this.quotaUntil) {
      this.quotaUntil = 0;
      this.aheadSec = DEFAULTS.appendAheadSec;
    }
    if (this.truncateAt !== null) {
      const at = this.truncateAt;
      this.truncateAt = null;
      if (at < ms.duration) {
        sb.remove(at, Infinity);
        return;
      }
    }
    const last = this.parts[this.parts.length - 1];
    const ranges = toRanges(sb.buffered);
    const evict = planEvictions({
      ranges, position, duration: partEnd(last), appendAheadSec: this.aheadSec,
      keepBehindSec: this.quotaUntil ? 3 : DEFAULTS.keepBehindSec,
    });
    if (evict.length > 0) {
      const [start, end] = evict[0];
      for (const part of this.parts) for (const s of partChunksIn(part, start, end)) part.appended.delete(s);
      this.last = null;
      sb.remove(start, end);
      return;
    }
    if (this.mode === 'mp4' && !this.initAppended) {
      const m = this.parts[0].m;
      this.initAppended = true;
      sb.appendBuffer(initSegment({ sampleRate: m.sample_rate, channels: m.channels, bitrate: m.bitrate }));
      return;
    }
    const next = nextAppend({
      parts: this.parts, cur: this.cur, position, aheadSec: this.aheadSec,
      have: (part) => this.p.store.held(part.m.id),
    });
    if (next) {
      this.append(this.parts[next.part], next.seq);
      return;
    }
    this.maybeEnd(position);
    this.maybeNearEnd();
  }

  /**
   * Less than a second before the end of a part with another after it:
   * pumps again at the boundary, so the move to the next track is told when
   * it is heard, not at the next timeupdate.
   * @param {number} position the playhead in the timeline (s)
   */
  watchEdge(position) {
    const part = this.parts[this.cur];
    if (!part || this.cur + 1 >= this.parts.length || this.audio.paused || this.edgeTimer) return;
    const left = (partEnd(part) - position) / (this.audio.playbackRate || 1);
    if (left <= 0 || left > 1) return;
    this.edgeTimer = setTimeout(() => {
      this.edgeTimer = 0;
      this.pump();
    }, left * 1000 + 5);
  }

  /**
   * @param {PlayerPart} part
   * @param {number} seq
   */
  append(part, seq) {
    const m = part.m;
    const bytes = this.p.store.get(m.id, seq);
    const sb = this.sb;
    if (!bytes || !sb) return;
    try {
      const set = appendSettings(part, seq, { mode: this.mode === 'mpeg' ? 'mpeg' : 'mp4', negativeOffsets: this.p.negativeOffsets });
      if (this.windowPart !== part) {
        setAppendWindow(sb, set.windowStart, set.windowEnd);
        this.windowPart = part;
      }
      if (this.mode === 'mpeg') {
        if (!this.last || this.last.part !== part || this.last.seq !== seq - 1) {
          sb.timestampOffset = set.timestampOffset;
          this.negativeOffset = set.timestampOffset < 0;
        }
        sb.appendBuffer(bytes);
      } else {
        if (this.offsetPart !== part) {
          sb.timestampOffset = set.timestampOffset;
          this.offsetPart = part;
        }
        sb.appendBuffer(fragment({ seq, bytes, framesPerChunk: m.frames_per_chunk, samplesPerFrame: m.samples_per_frame }));
      }
      this.appending = true;
      if (part.base > 0 && part.appended.size < 2) this.firstOfChained = part;
      part.appended.add(seq);
      this.last = { part, seq };
      this.p.dispatchEvent(new CustomEvent('appended', { detail: { track: m.id, seq } }));
    } catch (err) {
      if (err && err.name === 'QuotaExceededError') {
        // Keep less: drop more of what is behind, append less ahead for a while.
        this.quotaUntil = performance.now() + 30000;
        this.aheadSec = Math.max(10, this.aheadSec / 2);
        this.p.log(`SourceBuffer full: appending ${this.aheadSec}s ahead for a while`);
        setTimeout(() => this.pump(), 200);
      } else {
        this.p.log(`append of chunk ${seq} of ${m.id} failed: ${err && err.message}`);
        this.last = null;
        this.windowPart = null;
        this.offsetPart = null;
      }
    }
  }

  /**
   * Calls endOfStream once every chunk from the playhead to the end of the
   * last chained track is appended.
   * @param {number} position the playhead in the timeline (s)
   */
  maybeEnd(position) {
    const ms = this.ms;
    if (!ms || ms.readyState !== 'open' || !appendedToEnd(this.parts, this.cur, position)) return;
    try {
      ms.endOfStream();
    } catch (err) {
      this.p.log(`endOfStream: ${err.message}`);
    }
  }

  /**
   * Announces the end of the track under the playhead (the next one is
   * then prefetched or chained) once PREFETCH_REMAINING_SEC remain and the
   * rest of it is held (or half of that remains).
   */
  maybeNearEnd() {
    const part = this.parts[this.cur];
    if (!part || part.nearEnd) return;
    const position = this.position;
    const remaining = durationSec(part.m) - position;
    if (remaining > PREFETCH_REMAINING_SEC) return;
    if (remaining > PREFETCH_REMAINING_SEC / 2 && !part.loader.completeFrom(position)) return;
    part.nearEnd = true;
    this.p.dispatchEvent(new CustomEvent('nearend', { detail: { track: part.m.id } }));
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
    /** Whether this engine plays chained tracks (cleared when it dropped one: Session.checkChained). */
    this.gapless = true;
    /** Set when a track failed for good: {track, reason}; cleared by the next play(). @type {{track: string, reason: string}|null} */
    this.failure = null;
    /** Log every media element event (?debug=1). */
    this.debugEvents = /[?&]debug=1/.test(globalThis.location ? globalThis.location.search : '');
    /** @type {Session|StreamSession|null} */
    this.session = null;
    /** Recoveries from media errors per track id. @type {Map<string, number>} */
    this.recoveries = new Map();
    /** Loaders by track id: the session's tracks' and a prefetched one. @type {Map<string, Loader>} */
    this.loaders = new Map();
    /** The track prefetched by prefetch(), or null. @type {string|null} */
    this.prefetchId = null;
    /** The latest setNext() call (an earlier one still waiting gives way). @type {object|null} */
    this.nextToken = null;
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
      const at = s.position;
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
        position: () => (this.session instanceof Session ? this.session.positionOf(m.id) : 0),
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
    this.prefetchId = null;
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
        const rest = durationSec(s.m) - s.position;
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
    let to = Math.max(0, Math.min(durationSec(s.m) - 0.05, t));
    if (s instanceof Session) {
      const i = s.here();
      const part = s.parts[i];
      const before = s.parts[i - 1];
      // Back past the start of a gapless track: into the track before it, still in the Media Source.
      to = t < 0 && before ? Math.max(before.base, part.base + t) : part.base + to;
    }
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
    this.prefetchId = id;
    this.store.pinned.add(id);
    l.kick();
  }

  /**
   * Says what plays after the track under the playhead (null: nothing).
   * Where the Media Source can take it (chain.js chainable), it is chained
   * for gapless playback: its start downloads now (PREFETCH_SEC of it) and
   * it plays on from the last sample of this track, with no new
   * MediaSource; a 'track' event with detail.gapless says when the
   * playhead crossed into it. Otherwise its start is prefetched and it is
   * played with play() once this track ended. A later call replaces an
   * earlier one, also while that one still waits for a manifest.
   * @param {string|null} id
   */
  async setNext(id) {
    const token = {};
    this.nextToken = token;
    const s = this.session;
    if (!(s instanceof Session)) {
      if (id && this.mode !== 'stream') await this.prefetch(id);
      return;
    }
    if (id === null) {
      if (s.parts.length > s.here() + 1) this.log('nothing follows: unchained');
      s.unchainAfter(s.here());
      this.partsChanged(s);
      s.pump();
      return;
    }
    const m = await this.api.manifest(id);
    if (this.session !== s || this.nextToken !== token) return;
    // An engine that cannot cut the encoder delay at the append window (it drops what the window cuts) plays with a gap.
    const engine = this.gapless && this.negativeOffsets;
    if (!engine || !chainable(s.m, m)) {
      s.unchainAfter(s.here());
      this.partsChanged(s);
      if (engine) this.log(`${id} cannot follow ${s.id} in one Media Source (${m.sample_rate} Hz × ${m.channels} against ${s.m.sample_rate} Hz × ${s.m.channels}): it starts after a gap`);
      await this.prefetch(id);
      return;
    }
    this.store.setTotal(m.id, m.chunks.length);
    try {
      await this.beforePlay(m);
    } catch (err) {
      this.log(`before chaining ${id}: ${err.message}`);
    }
    if (this.session !== s || this.nextToken !== token) return;
    s.chain(m, this.loaderFor(m));
  }

  /**
   * Sets what the loaders of s's tracks download after the parts of s
   * changed: all of the track under the playhead, the start of the one
   * chained after it, nothing more of the one before; loaders of tracks
   * no longer in s (and not prefetched) stop.
   * @param {Session} s
   */
  partsChanged(s) {
    if (this.session !== s) return;
    const cur = s.here();
    /** @type {Map<string, number>} */
    const limits = new Map();
    s.parts.forEach((part, i) => {
      const limit = i === cur ? Infinity : i > cur ? PREFETCH_SEC : -Infinity;
      limits.set(part.m.id, Math.max(limits.get(part.m.id) ?? -Infinity, limit));
    });
    for (const [id, l] of this.loaders) {
      const limit = limits.get(id);
      if (limit !== undefined) l.limitSec = limit;
      else if (id !== this.prefetchId) {
        l.stop();
        this.loaders.delete(id);
      }
    }
    this.store.pinned.clear();
    for (const id of limits.keys()) this.store.pinned.add(id);
    this.store.touch(s.parts[cur].m.id); // the track playing is the most recently used
    if (this.prefetchId && this.loaders.has(this.prefetchId)) this.store.pinned.add(this.prefetchId);
  }

  /** The id of the track chained after the one playing (it follows without a gap), or null. */
  get chainedNext() {
    const s = this.session;
    if (!(s instanceof Session)) return null;
    const next = s.parts[s.here() + 1];
    return next ? next.m.id : null;
  }

  get playing() {
    return !!this.session && !this.audio.paused && !this.audio.ended;
  }

  /** Seconds into the track under the playhead. */
  get currentTime() {
    return this.session ? this.session.position : 0;
  }

  get duration() {
    return this.session ? durationSec(this.session.m) : 0;
  }
}
