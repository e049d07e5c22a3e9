// Persistent chunk cache: complete tracks (the unit a peer seeds) kept across
// page loads in the Origin Private File System — one file per track, the
// concatenation of its chunks — or, where OPFS cannot write, in IndexedDB.
// Bounded by a byte budget (default 500 MB) with least-recently-used eviction
// (lru.js); the index lives in localStorage and is reconciled with storage
// on open.

import { LRUIndex, DEFAULT_BUDGET } from './lru.js';
import { validTrackId } from './wire.js';

const INDEX_KEY = 'ztream.cache.v1';
const DIR = 'ztream-tracks';
const DB = 'ztream-cache';
const STORE = 'tracks';

/**
 * Splits a track's bytes into its chunks using the manifest's sizes; null when the total differs.
 * @param {{chunks: {size: number}[]}} m
 * @param {Uint8Array<ArrayBuffer>} bytes
 */
export function splitTrack(m, bytes) {
  const total = m.chunks.reduce((n, c) => n + c.size, 0);
  if (bytes.length !== total) return null;
  const out = [];
  let off = 0;
  for (const c of m.chunks) {
    out.push(bytes.subarray(off, off + c.size));
    off += c.size;
  }
  return out;
}

/**
 * Concatenates chunks 0..n-1.
 * @param {Uint8Array[]} chunks
 */
export function joinTrack(chunks) {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** OPFS backend: one file per track. */
class OPFSBackend {
  /** @param {FileSystemDirectoryHandle} dir */
  constructor(dir) {
    this.dir = dir;
    this.kind = 'opfs';
  }

  static async open() {
    if (!globalThis.navigator || !navigator.storage || !navigator.storage.getDirectory) return null;
    if (!globalThis.FileSystemFileHandle || !('createWritable' in FileSystemFileHandle.prototype)) return null;
    const root = await navigator.storage.getDirectory();
    return new OPFSBackend(await root.getDirectoryHandle(DIR, { create: true }));
  }

  async keys() {
    const out = [];
    for await (const name of this.dir.keys()) out.push(name);
    return out;
  }

  /** @param {string} id */
  async get(id) {
    try {
      const f = await (await this.dir.getFileHandle(id)).getFile();
      return new Uint8Array(await f.arrayBuffer());
    } catch {
      return null;
    }
  }

  /**
   * @param {string} id
   * @param {Uint8Array<ArrayBuffer>} bytes
   */
  async put(id, bytes) {
    const h = await this.dir.getFileHandle(id, { create: true });
    const w = await h.createWritable();
    await w.write(bytes);
    await w.close();
  }

  /** @param {string} id */
  async delete(id) {
    await this.dir.removeEntry(id).catch(() => {});
  }
}

/**
 * Settles with the outcome of an IndexedDB request.
 * @template T
 * @param {IDBRequest<T>} r
 * @returns {Promise<T>}
 */
function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** IndexedDB backend: one record per track. */
class IDBBackend {
  /** @param {IDBDatabase} db */
  constructor(db) {
    this.db = db;
    this.kind = 'indexeddb';
  }

  static async open() {
    if (!globalThis.indexedDB) return null;
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE);
    return new IDBBackend(await req(r));
  }

  /** @param {IDBTransactionMode} mode */
  tx(mode) {
    return this.db.transaction(STORE, mode).objectStore(STORE);
  }

  async keys() {
    return (await req(this.tx('readonly').getAllKeys())).map(String);
  }

  /** @param {string} id */
  async get(id) {
    const v = await req(this.tx('readonly').get(id));
    return v ? new Uint8Array(v) : null;
  }

  /**
   * @param {string} id
   * @param {Uint8Array<ArrayBuffer>} bytes
   */
  async put(id, bytes) {
    await req(this.tx('readwrite').put(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), id));
  }

  /** @param {string} id */
  async delete(id) {
    await req(this.tx('readwrite').delete(id));
  }
}

export class PersistentCache {
  /**
   * @param {OPFSBackend|IDBBackend} backend
   * @param {number} budget bytes
   * @param {(msg: string) => void} log
   */
  constructor(backend, budget, log) {
    this.backend = backend;
    this.lru = new LRUIndex(budget);
    this.log = log;
    /** Track ids being written. @type {Set<string>} */
    this.writing = new Set();
  }

  /**
   * Opens the cache (OPFS, else IndexedDB); resolves to null when the browser
   * has neither (or storage is denied, e.g. in some private modes).
   * @param {{budget?: number, log?: (msg: string) => void}} [opts]
   */
  static async open({ budget = DEFAULT_BUDGET, log = () => {} } = {}) {
    let backend = null;
    for (const B of [OPFSBackend, IDBBackend]) {
      try {
        backend = await B.open();
      } catch (err) {
        log(`cache: ${B.name}: ${err.message}`);
      }
      if (backend) break;
    }
    if (!backend) return null;
    const c = new PersistentCache(backend, budget, log);
    await c.reconcile();
    return c;
  }

  get kind() {
    return this.backend.kind;
  }

  /** Loads the index and makes it agree with what storage holds. */
  async reconcile() {
    try {
      const saved = JSON.parse(localStorage.getItem(INDEX_KEY) || '[]');
      if (Array.isArray(saved)) this.lru.load(saved);
    } catch { /* no or bad index: rebuilt below */ }
    const stored = new Set((await this.backend.keys()).filter(validTrackId));
    for (const { key } of this.lru.toJSON()) if (!stored.has(key)) this.lru.delete(key);
    for (const id of stored) {
      if (!this.lru.has(id)) await this.backend.delete(id); // size unknown: drop it
    }
    await this.evict(0);
    this.save();
  }

  save() {
    try {
      localStorage.setItem(INDEX_KEY, JSON.stringify(this.lru.toJSON()));
    } catch { /* storage full or denied: the index is rebuilt next time */ }
  }

  /** Track ids held, most recently used first. */
  tracks() {
    return this.lru.toJSON().sort((a, b) => b.lastUsed - a.lastUsed).map((e) => e.key);
  }

  /** @param {string} id */
  has(id) {
    return this.lru.has(id);
  }

  /**
   * Marks a track used now.
   * @param {string} id
   */
  touch(id) {
    if (this.lru.has(id)) {
      this.lru.touch(id);
      this.save();
    }
  }

  /**
   * Evicts least recently used tracks (not in pinned) until extra more bytes fit.
   * @param {number} extra
   * @param {Set<string>} [pinned]
   */
  async evict(extra, pinned = new Set()) {
    for (const victim of this.lru.victims(extra, pinned)) {
      await this.backend.delete(victim);
      this.lru.delete(victim);
      this.log(`cache: evicted ${victim}`);
    }
  }

  /**
   * Stores a complete track (its chunks in order), evicting older tracks to fit.
   * @param {string} id
   * @param {Uint8Array[]} chunks
   */
  async putTrack(id, chunks) {
    if (this.lru.has(id) || this.writing.has(id)) return;
    const bytes = joinTrack(chunks);
    if (bytes.length > this.lru.budget) return;
    this.writing.add(id);
    try {
      await this.evict(bytes.length, new Set([id]));
      await this.backend.put(id, bytes);
      this.lru.add(id, bytes.length);
      this.save();
    } finally {
      this.writing.delete(id);
    }
  }

  /**
   * The chunks of track m from the cache, or null (a track whose size no longer matches is dropped).
   * @param {{id: string, chunks: {size: number}[]}} m
   */
  async getTrack(m) {
    if (!this.lru.has(m.id)) return null;
    const bytes = await this.backend.get(m.id);
    const chunks = bytes && splitTrack(m, bytes);
    if (!chunks) {
      await this.deleteTrack(m.id);
      return null;
    }
    this.touch(m.id);
    return chunks;
  }

  /** @param {string} id */
  async deleteTrack(id) {
    await this.backend.delete(id);
    this.lru.delete(id);
    this.save();
  }
}
