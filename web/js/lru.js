// LRU accounting for the chunk cache: whole tracks are the unit (a peer
// seeds whole tracks), each with its byte size and last use. Pure logic; the
// storage backends in cache.js act on what it decides.

/** Default cache budget: 500 MB. */
export const DEFAULT_BUDGET = 500 * 1000 * 1000;

export class LRUIndex {
  /**
   * @param {number} budget bytes the cache may hold
   * @param {() => number} [now] clock (ms), injectable for tests
   */
  constructor(budget = DEFAULT_BUDGET, now = () => Date.now()) {
    if (!(budget > 0)) throw new Error(`lru: budget ${budget}`);
    this.budget = budget;
    this.now = now;
    /** @type {Map<string, {size: number, lastUsed: number}>} */
    this.entries = new Map();
    this.total = 0;
    this.tick = 0;
  }

  /** Total bytes accounted. */
  get size() {
    return this.total;
  }

  /** @param {string} key */
  has(key) {
    return this.entries.has(key);
  }

  /**
   * Marks key as used now (creating it with size 0 if missing).
   * @param {string} key
   */
  touch(key) {
    const e = this.entries.get(key);
    if (e) e.lastUsed = this.stamp();
    else this.entries.set(key, { size: 0, lastUsed: this.stamp() });
  }

  /**
   * Adds bytes to key's size and marks it used.
   * @param {string} key
   * @param {number} bytes
   */
  add(key, bytes) {
    if (!(bytes >= 0)) throw new Error(`lru: size ${bytes}`);
    const e = this.entries.get(key);
    if (e) {
      e.size += bytes;
      e.lastUsed = this.stamp();
    } else {
      this.entries.set(key, { size: bytes, lastUsed: this.stamp() });
    }
    this.total += bytes;
  }

  /**
   * Forgets key.
   * @param {string} key
   */
  delete(key) {
    const e = this.entries.get(key);
    if (!e) return false;
    this.total -= e.size;
    this.entries.delete(key);
    return true;
  }

  /**
   * The keys to evict, least recently used first, so that extra more bytes
   * fit within the budget. Keys in pinned are never chosen. The caller
   * deletes them (from storage and with delete()).
   * @param {number} extra
   * @param {Set<string>} [pinned]
   * @returns {string[]}
   */
  victims(extra = 0, pinned = new Set()) {
    let over = this.total + extra - this.budget;
    if (over <= 0) return [];
    const order = [...this.entries.entries()]
      .filter(([k]) => !pinned.has(k))
      .sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    const out = [];
    for (const [k, e] of order) {
      if (over <= 0) break;
      out.push(k);
      over -= e.size;
    }
    return out;
  }

  /** A JSON-able snapshot (for persisting the index). */
  toJSON() {
    return [...this.entries.entries()].map(([key, e]) => ({ key, size: e.size, lastUsed: e.lastUsed }));
  }

  /**
   * Restores entries from toJSON() output (as read back from storage: bad entries are skipped).
   * @param {{key: string, size: number, lastUsed: number}[]} list
   */
  load(list) {
    for (const { key, size, lastUsed } of list) {
      if (typeof key !== 'string' || !(size >= 0)) continue;
      this.delete(key);
      this.entries.set(key, { size, lastUsed: Number(lastUsed) || 0 });
      this.total += size;
      this.tick = Math.max(this.tick, Number(lastUsed) || 0);
    }
  }

  /** A strictly increasing use stamp (clock time, bumped on ties). */
  stamp() {
    this.tick = Math.max(this.tick + 1, this.now());
    return this.tick;
  }
}
