// In-memory chunk store of the session: the chunks of the tracks being played,
// prefetched or seeded, with where each came from. Whole tracks are evicted
// least-recently-used first when the memory budget is exceeded; the tracks in
// use are pinned. A persistent cache (cache.js) can back it.

import { LRUIndex } from './lru.js';

/** Default memory budget: 256 MB. */
export const DEFAULT_MEMORY_BUDGET = 256 * 1000 * 1000;

export class ChunkStore extends EventTarget {
  /** @param {{budget?: number}} [opts] */
  constructor({ budget = DEFAULT_MEMORY_BUDGET } = {}) {
    super();
    /** @type {Map<string, {chunks: Map<number, {bytes: Uint8Array, source: string}>, total: number|null}>} */
    this.tracks = new Map();
    this.lru = new LRUIndex(budget);
    /** Track ids that must not be evicted (playing, next, seeding). */
    this.pinned = new Set();
  }

  track(id) {
    let t = this.tracks.get(id);
    if (!t) {
      t = { chunks: new Map(), total: null };
      this.tracks.set(id, t);
    }
    return t;
  }

  /** Records how many chunks track id has (from its manifest). */
  setTotal(id, n) {
    this.track(id).total = n;
  }

  has(id, seq) {
    const t = this.tracks.get(id);
    return !!t && t.chunks.has(seq);
  }

  /** The set of chunk numbers held for track id (a live view: do not modify). */
  held(id) {
    return this.track(id).chunks;
  }

  get(id, seq) {
    const t = this.tracks.get(id);
    const c = t && t.chunks.get(seq);
    return c ? c.bytes : undefined;
  }

  source(id, seq) {
    const t = this.tracks.get(id);
    const c = t && t.chunks.get(seq);
    return c ? c.source : undefined;
  }

  /** Stores a verified chunk; returns false when it was already held. */
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

  /** Marks track id as used now. */
  touch(id) {
    if (this.tracks.has(id)) this.lru.touch(id);
  }

  /** Forgets track id. */
  drop(id) {
    this.tracks.delete(id);
    this.lru.delete(id);
    this.dispatchEvent(new CustomEvent('drop', { detail: { track: id } }));
  }

  /** Whether every chunk of track id is held. */
  isComplete(id) {
    const t = this.tracks.get(id);
    return !!t && t.total !== null && t.total > 0 && t.chunks.size === t.total;
  }

  /** Track ids held completely. */
  completeTracks() {
    return [...this.tracks.keys()].filter((id) => this.isComplete(id));
  }
}
