// In-memory chunk store of the session: the chunks of the tracks being played,
// prefetched or seeded, with where each came from. Whole tracks are evicted
// least-recently-used first when the memory budget is exceeded; the tracks in
// use are pinned. A persistent cache (cache.js) can back it.

import { LRUIndex } from './lru.js';

/** @typedef {import('./stats.js').SourceName} SourceName */
/** @typedef {{bytes: Uint8Array<ArrayBuffer>, source: SourceName}} StoredChunk */

/** Default memory budget: 256 MB. */
export const DEFAULT_MEMORY_BUDGET = 256 * 1000 * 1000;

export class ChunkStore extends EventTarget {
  /** @param {{budget?: number}} [opts] */
  constructor({ budget = DEFAULT_MEMORY_BUDGET } = {}) {
    super();
    /** @type {Map<string, {chunks: Map<number, StoredChunk>, total: number|null}>} */
    this.tracks = new Map();
    this.lru = new LRUIndex(budget);
    /** Track ids that must not be evicted (playing, next, seeding). @type {Set<string>} */
    this.pinned = new Set();
  }

  /**
   * The entry of track id (created empty if missing).
   * @param {string} id
   */
  track(id) {
    let t = this.tracks.get(id);
    if (!t) {
      t = { chunks: new Map(), total: null };
      this.tracks.set(id, t);
    }
    return t;
  }

  /**
   * Records how many chunks track id has (from its manifest).
   * @param {string} id
   * @param {number} n
   */
  setTotal(id, n) {
    this.track(id).total = n;
  }

  /**
   * @param {string} id
   * @param {number} seq
   */
  has(id, seq) {
    const t = this.tracks.get(id);
    return !!t && t.chunks.has(seq);
  }

  /**
   * The chunks held for track id by number (a live view: do not modify).
   * @param {string} id
   * @returns {ReadonlyMap<number, StoredChunk>}
   */
  held(id) {
    return this.track(id).chunks;
  }

  /**
   * @param {string} id
   * @param {number} seq
   */
  get(id, seq) {
    const t = this.tracks.get(id);
    const c = t && t.chunks.get(seq);
    return c ? c.bytes : undefined;
  }

  /**
   * @param {string} id
   * @param {number} seq
   */
  source(id, seq) {
    const t = this.tracks.get(id);
    const c = t && t.chunks.get(seq);
    return c ? c.source : undefined;
  }

  /**
   * Stores a verified chunk; returns false when it was already held.
   * @param {string} id
   * @param {number} seq
   * @param {Uint8Array<ArrayBuffer>} bytes
   * @param {SourceName} source
   */
  put(id, seq, bytes, source) {
    const t = this.track(id);
    if (t.chunks.has(seq)) return false;
    for (const victim of this.lru.victims(bytes.length, new Set([...this.pinned, id]))) this.drop(victim);
    t.chunks.set(seq, { bytes, source });
    this.lru.add(id, bytes.length);
    this.dispatchEvent(new CustomEvent('chunk', { detail: { track: id, seq, source, size: bytes.length } }));
    if (this.isComplete(id)) this.dispatchEvent(new CustomEvent('complete', { detail: { track: id } }));
    return true;
  }

  /**
   * Marks track id as used now.
   * @param {string} id
   */
  touch(id) {
    if (this.tracks.has(id)) this.lru.touch(id);
  }

  /**
   * Forgets track id.
   * @param {string} id
   */
  drop(id) {
    this.tracks.delete(id);
    this.lru.delete(id);
    this.dispatchEvent(new CustomEvent('drop', { detail: { track: id } }));
  }

  /**
   * Whether every chunk of track id is held.
   * @param {string} id
   */
  isComplete(id) {
    const t = this.tracks.get(id);
    return !!t && t.total !== null && t.total > 0 && t.chunks.size === t.total;
  }

  /** Track ids held completely. */
  completeTracks() {
    return [...this.tracks.keys()].filter((id) => this.isComplete(id));
  }
}
