// The loader downloads the chunks of one track, playhead first, from the
// sources it is given (HTTP endpoint, hub DataChannel, peers), verifies each
// chunk's SHA-256, stores it and counts its bytes by source.
//
// A source is {name, statsName, available(), slots(track, {ahead, urgent}), maxRun,
// lookahead?, urgentOnly?, rescues?, isolatesFaults?, request(track, from, to, onChunk, signal) → Promise}:
// it delivers chunks [from, to) through onChunk(seq, bytes) and settles when
// the range is done or failed. onChunk returns a promise of null once the
// chunk is verified and stored (or was not needed), or of a string saying why
// it failed the SHA-256 check. The loader hands each source runs of
// contiguous missing chunks, most urgent first, within its free slots.
//
// A failed range or a bad chunk backs the source off (RETRY_BASE_MS,
// doubling), except for a source that isolatesFaults: one made of several
// links (the peers) that drops the faulty link itself, so that the others
// are not punished; its ranges rejected with code ABANDONED (the link was
// dropped for misbehaving) do not back it off either.

import { planFetches } from './scheduler.js';
import { verifyChunk } from './verify.js';
import { chunkStartSec } from './timeline.js';

/** @typedef {import('./api.js').Manifest} Manifest */
/**
 * Takes a delivered chunk; resolves to null once it is verified and stored
 * (or was not needed), or to what is wrong with it.
 * @typedef {(seq: number, bytes: Uint8Array<ArrayBuffer>) => Promise<string|null>} OnChunk
 */
/**
 * A source of chunks for the loader (see the comment at the top).
 * @typedef {object} Source
 * @property {string} name
 * @property {import('./stats.js').SourceName} statsName where its bytes are counted
 * @property {number} maxRun longest range requested at once
 * @property {() => boolean} available
 * @property {(track: string, opts?: {ahead?: number, urgent?: boolean}) => number} slots ranges it takes now
 * @property {(track: string, from: number, to: number, onChunk: OnChunk, signal?: AbortSignal) => Promise<unknown>} request
 * @property {number} [lookahead] only chunks starting within this many seconds of the playhead
 * @property {boolean} [urgentOnly] only urgent chunks
 * @property {boolean} [rescues] may refetch chunks in flight elsewhere when the buffer runs low
 * @property {boolean} [isolatesFaults] drops faulty links itself (not backed off for them)
 */
/** @typedef {{seq: number, urgent: boolean}} PlannedChunk */

/** After a failed range, a source is not used again for this long (ms), doubling up to 8 s. */
const RETRY_BASE_MS = 250;
/** Error code of a range whose link the source dropped for misbehaving (see isolatesFaults). */
export const ABANDONED = 'abandoned';

export class Loader extends EventTarget {
  /**
   * @param {{manifest: Manifest, store: import('./chunkstore.js').ChunkStore,
   *   stats: import('./stats.js').SessionStats, sources: Source[],
   *   position: () => number, bufferedAhead?: () => number, log?: (msg: string) => void}} opts
   */
  constructor({ manifest, store, stats, sources, position, bufferedAhead = () => Infinity, log = () => {} }) {
    super();
    this.m = manifest;
    this.id = manifest.id;
    this.store = store;
    this.stats = stats;
    this.sources = sources;
    this.position = position;
    this.bufferedAhead = bufferedAhead;
    this.log = log;
    /** seq → source name of the range it is requested in @type {Map<number, string>} */
    this.inflight = new Map();
    /** @type {Set<{src: Source, from: number, to: number}>} */
    this.jobs = new Set();
    /** source name → {failures, until} @type {Map<string, {failures: number, until: number}>} */
    this.backoff = new Map();
    this.stopped = false;
    this.ctrl = new AbortController();
    /** @type {ReturnType<typeof setTimeout>|null} */
    this.retryTimer = null;
    /** Buffer (s) under which sources marked `rescues` may refetch chunks in flight elsewhere. */
    this.emergencySec = 3;
    /** Chunks requested again from a rescuing source while in flight elsewhere. */
    this.rescues = 0;
    /** Only chunks starting before this time (s) are fetched: a prefetch loads just the start. */
    this.limitSec = Infinity;
    store.setTotal(this.id, manifest.chunks.length);
  }

  /** Whether every chunk is held. */
  get complete() {
    return this.store.isComplete(this.id);
  }

  stop() {
    this.stopped = true;
    this.ctrl.abort();
    clearTimeout(this.retryTimer);
  }

  /** Re-plans: starts ranges on every source with a free slot. Cheap; call it often. */
  kick() {
    if (this.stopped || this.complete) return;
    const now = performance.now();
    const position = this.position();
    const ahead = this.bufferedAhead();
    let plan = planFetches({ manifest: this.m, position, have: this.store.held(this.id), inflight: this.inflight });
    if (this.limitSec !== Infinity) plan = plan.filter((p) => chunkStartSec(this.m, p.seq) < this.limitSec);
    if (plan.length === 0 && !(ahead < this.emergencySec)) return;
    const urgent = plan.some((p) => p.urgent);
    let soonestRetry = Infinity;
    for (const src of this.sources) {
      if (!src.available()) continue;
      const bo = this.backoff.get(src.name);
      if (bo && bo.until > now) {
        soonestRetry = Math.min(soonestRetry, bo.until);
        continue;
      }
      let srcPlan = plan;
      let rescuing = false;
      if (src.rescues && ahead < this.emergencySec) {
        // Under emergencySec of buffer, a rescuing source (the hub) may fetch
        // urgent chunks again that another source (a slow peer) has in flight.
        const mine = new Set([...this.inflight].filter(([, name]) => name === src.name).map(([seq]) => seq));
        srcPlan = planFetches({ manifest: this.m, position, have: this.store.held(this.id), inflight: mine }).filter((p) => p.urgent);
        rescuing = srcPlan.some((p) => this.inflight.has(p.seq));
      }
      let slots = src.slots(this.id, { ahead, urgent: urgent || rescuing });
      while (slots > 0) {
        const run = this.takeRun(srcPlan, src, position, rescuing);
        if (!run) break;
        slots--;
        this.startJob(src, run.from, run.to);
      }
    }
    if (soonestRetry < Infinity && !this.retryTimer) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.kick();
      }, soonestRetry - now);
    }
  }

  /**
   * Takes from plan the first run of contiguous chunks src accepts (urgentOnly, lookahead).
   * @param {Array<PlannedChunk|null>} plan taken entries are set to null
   * @param {Source} src
   * @param {number} position
   * @param {boolean} [rescuing]
   */
  takeRun(plan, src, position, rescuing = false) {
    for (let i = 0; i < plan.length; i++) {
      const p = plan[i];
      if (p === null || (!rescuing && this.inflight.has(p.seq)) || this.inflight.get(p.seq) === src.name) continue;
      if (src.urgentOnly && !p.urgent) continue;
      if (src.lookahead !== undefined && chunkStartSec(this.m, p.seq) > position + src.lookahead) continue;
      let to = p.seq + 1;
      plan[i] = null;
      for (let j = i + 1; j < plan.length && to - p.seq < src.maxRun; j++) {
        const q = plan[j];
        if (q === null || q.seq !== to || this.inflight.get(q.seq) === src.name) break;
        if (src.urgentOnly && !q.urgent) break;
        plan[j] = null;
        to++;
      }
      return { from: p.seq, to };
    }
    return null;
  }

  /**
   * Requests chunks [from, to) from src.
   * @param {Source} src
   * @param {number} from
   * @param {number} to
   */
  startJob(src, from, to) {
    if (globalThis.ZDEBUG) this.log(`job ${src.name} [${from},${to})`);
    for (let s = from; s < to; s++) {
      if (this.inflight.has(s) && this.inflight.get(s) !== src.name) this.rescues++;
      this.inflight.set(s, src.name);
    }
    const job = { src, from, to };
    this.jobs.add(job);
    const badBefore = this.stats.badChunks;
    // Settle the job only after every delivered chunk is verified and stored,
    // so that its chunks are not planned again meanwhile.
    /** @type {Promise<string|null>[]} */
    const deliveries = [];
    /** @type {OnChunk} */
    const onChunk = (seq, bytes) => {
      const p = this.deliver(src, seq, bytes);
      deliveries.push(p);
      return p;
    };
    /** @param {unknown} [v] */
    const settled = (v) => Promise.all(deliveries).then(() => v);
    src.request(this.id, from, to, onChunk, this.ctrl.signal).then(settled, (e) => settled().then(() => { throw e; })).then(
      () => {
        if (this.stats.badChunks === badBefore) this.backoff.delete(src.name);
      },
      (err) => {
        if (this.stopped || this.complete) return;
        if (!(src.isolatesFaults && err && err.code === ABANDONED)) this.penalize(src);
        this.log(`${src.name}: chunks ${from}..${to - 1} of ${this.id}: ${err && err.message ? err.message : err}`);
      },
    ).finally(() => {
      this.jobs.delete(job);
      for (let s = from; s < to; s++) if (this.inflight.get(s) === src.name) this.inflight.delete(s);
      this.kick();
    });
  }

  /**
   * Keeps src unused for a while, longer after each failure.
   * @param {Source} src
   */
  penalize(src) {
    const bo = this.backoff.get(src.name) || { failures: 0, until: 0 };
    bo.failures++;
    bo.until = performance.now() + Math.min(8000, RETRY_BASE_MS * 2 ** (bo.failures - 1));
    this.backoff.set(src.name, bo);
  }

  /**
   * Verifies and stores one chunk delivered by src. Resolves to null, or to
   * what is wrong with a chunk failing verification.
   * @param {Source} src
   * @param {number} seq
   * @param {Uint8Array<ArrayBuffer>} bytes
   * @returns {Promise<string|null>}
   */
  async deliver(src, seq, bytes) {
    if (this.stopped || seq < 0 || seq >= this.m.chunks.length || this.store.has(this.id, seq)) return null;
    const bad = await verifyChunk(this.m, seq, bytes);
    if (bad) {
      this.stats.badChunk();
      if (!src.isolatesFaults) this.penalize(src);
      this.log(`${src.name}: rejected ${bad}`);
      return bad;
    }
    if (this.store.has(this.id, seq)) return null; // a duplicate verified meanwhile
    this.store.put(this.id, seq, bytes, src.statsName);
    this.stats.received(src.statsName, bytes.length);
    if (this.inflight.get(seq) === src.name) this.inflight.delete(seq);
    if (globalThis.ZDEBUG) this.log(`got ${seq} from ${src.name}`);
    this.dispatchEvent(new CustomEvent('chunk', { detail: { seq, source: src.statsName } }));
    return null;
  }
}

/**
 * The HTTP chunk endpoint as a loader source: up to `parallel` single-chunk
 * requests at once (its ranges are one chunk long).
 * @param {import('./api.js').CatalogAPI} api
 * @param {{parallel?: number, lookahead?: number, urgentOnly?: boolean}} [opts]
 * @returns {Source}
 */
export function httpSource(api, { parallel = 4, lookahead, urgentOnly = false } = {}) {
  let active = 0;
  return {
    name: 'http',
    statsName: 'http',
    maxRun: 1,
    lookahead,
    urgentOnly,
    available: () => true,
    slots: () => parallel - active,
    async request(track, from, to, onChunk, signal) {
      active++;
      try {
        for (let seq = from; seq < to; seq++) await onChunk(seq, await api.chunk(track, seq, signal));
      } finally {
        active--;
      }
    },
  };
}
