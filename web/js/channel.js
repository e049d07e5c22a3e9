// One "chunks" DataChannel speaking the chunk protocol (docs/PROTOCOL.md §4),
// in both roles: as requester (ranges of chunks delivered in order, then
// done; `first_copy` requests to the hub) and as sender (serving every
// verified chunk held, of complete and partial tracks, with bufferedAmount
// flow control and an upload counter). It answers `have` (ok, or the bitfield
// of a partial track), remembers which tracks the other side asked about
// (at most MAX_INTEREST) so that `holding` updates go to it (pushHolding), and
// accepts at most INBOUND_RATE `have`/`holding`/`request` messages per second.

import { encodeChunk, decodeChunk, encodeText, decodeText, validTrackId, MAX_REQUESTS, KIND_CHUNK } from './wire.js';

/** Sender window: send while bufferedAmount is at most this (bytes). */
export const SEND_WINDOW = 512 * 1024;
/** Most tracks the other side may subscribe to (by asking `have`) on one channel. */
export const MAX_INTEREST = 32;
/** `have`/`holding`/`request` messages accepted per second from the other side (and the burst); more are dropped (a request gets error rate_limited). */
export const INBOUND_RATE = 50;

/**
 * A token bucket: rate tokens per second, at most burst of them.
 */
export class TokenBucket {
  /**
   * @param {number} rate
   * @param {number} burst
   * @param {() => number} [now] milliseconds
   */
  constructor(rate, burst, now = () => performance.now()) {
    this.rate = rate;
    this.burst = burst;
    this.now = now;
    this.tokens = burst;
    this.last = now();
  }

  /** Takes a token; false when there is none. */
  take() {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.rate) / 1000);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

/**
 * What a `have` is answered (docs/PROTOCOL.md §4.1): ok, the whole track; a
 * bitfield (chunks, have) of a partial track; neither: nothing to serve.
 * @typedef {{ok: boolean, chunks?: number, have?: string}} HaveAnswer
 */
/**
 * The chunk serving hooks of a side that may upload (peer↔peer channels).
 * @typedef {object} ServeHooks
 * @property {(track: string) => boolean} canServe holds at least one verified chunk of track
 * @property {(track: string) => number} chunkCount
 * @property {(track: string, seq: number) => (Uint8Array|undefined|Promise<Uint8Array|undefined>)} getChunk
 *   undefined: not held (a partial holder skips it)
 * @property {(n: number) => void} uploaded told of the bytes of every chunk sent
 * @property {(track: string) => boolean} [isComplete] holds every chunk of track
 * @property {(track: string, seq: number) => void} [sent] told of every chunk sent
 * @property {(track: string) => Promise<void>} [prepare] awaited before a request is served
 *   (e.g. loads the track from the persistent cache)
 * @property {(track: string) => HaveAnswer} [haveReply] the answer to `have` (default: ok when canServe)
 * @property {(track: string) => boolean} [admit] a request may be served (an upload slot is free); else not_found
 * @property {(track: string, from: number, to: number) => void} [finished] a range was sent whole (done)
 */
/** @typedef {import('./wire.js').TextMessage} TextMessage */
/**
 * A range requested by this side, in flight.
 * @typedef {{track: string, from: number, to: number, onChunk: (seq: number, bytes: Uint8Array<ArrayBuffer>) => unknown,
 *   resolve: () => void, reject: (err: unknown) => void}} PendingRange
 */
/** @typedef {{track: string, cancelled: boolean}} ServedRange a range this side is sending */

export class ChunkChannel extends EventTarget {
  /**
   * @param {RTCDataChannel} dc an open or opening "chunks" channel
   * @param {{name?: string, serve?: ServeHooks|null, log?: (msg: string) => void, window?: number}} opts
   *   serve: present when this side may upload (peer↔peer channels); sent(track, seq) is told of every chunk sent
   *   Ranges rejected by the other side reject with an Error whose `code` is the chunk protocol error code.
   *   A message breaking the protocol is dropped and dispatched as a 'bad_message' event (see badMessage).
   */
  constructor(dc, { name = 'channel', serve = null, log = () => {}, window = SEND_WINDOW } = {}) {
    super();
    this.dc = dc;
    this.name = name;
    this.serve = serve;
    this.log = log;
    this.window = window;
    this.nextId = 1;
    /** id → requester state of a range in flight @type {Map<number, PendingRange>} */
    this.pending = new Map();
    /** id → sender state of a range being served @type {Map<number, ServedRange>} */
    this.serving = new Map();
    this.closed = false;
    this.lastActivity = Date.now();
    /** Messages from the other side that broke the protocol (see badMessage). */
    this.badMessages = 0;
    /** Tracks the other side asked `have` about: it gets our `holding` updates of them. @type {Set<string>} */
    this.interest = new Set();
    /** `have`/`holding`/`request` messages accepted from the other side. */
    this.inbound = new TokenBucket(INBOUND_RATE, INBOUND_RATE);
    /** `have`/`holding`/`request` messages dropped over INBOUND_RATE. */
    this.droppedInbound = 0;
    dc.binaryType = 'arraybuffer';
    dc.bufferedAmountLowThreshold = window / 2;
    dc.addEventListener('message', (e) => this.onMessage(e.data));
    dc.addEventListener('close', () => this.onClose());
    dc.addEventListener('error', () => this.onClose());
  }

  get open() {
    return !this.closed && this.dc.readyState === 'open';
  }

  /**
   * Resolves when the channel is open (rejects if it closes first).
   * @returns {Promise<void>}
   */
  ready() {
    if (this.dc.readyState === 'open') return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.dc.addEventListener('open', () => resolve(), { once: true });
      this.addEventListener('close', () => reject(new Error(`${this.name}: closed before opening`)), { once: true });
    });
  }

  /** Number of ranges this side has in flight as requester. */
  get inFlight() {
    return this.pending.size;
  }

  /**
   * Whether a range of track is in flight (a new one would replace it at the sender).
   * @param {string} track
   */
  busyWith(track) {
    for (const p of this.pending.values()) if (p.track === track) return true;
    return false;
  }

  /**
   * Requests chunks [from, to) of track. onChunk(seq, bytes) is called for
   * each; resolves on done, rejects on error, close or abort (abort sends
   * cancel). A new request for the same track replaces this one (it
   * rejects). firstCopy (to the hub only) asks for first copies (§8.4).
   * @param {string} track
   * @param {number} from
   * @param {number} to
   * @param {(seq: number, bytes: Uint8Array<ArrayBuffer>) => unknown} onChunk
   * @param {AbortSignal} [signal]
   * @param {{firstCopy?: boolean}} [opts]
   * @returns {Promise<void>}
   */
  request(track, from, to, onChunk, signal, { firstCopy = false } = {}) {
    if (!this.open) return Promise.reject(new Error(`${this.name}: not open`));
    if (this.pending.size >= MAX_REQUESTS) return Promise.reject(new Error(`${this.name}: ${MAX_REQUESTS} ranges in flight`));
    for (const [id, p] of this.pending) {
      if (p.track === track) {
        // The sender replaces a track's range with a new request: settle the old one here too.
        this.pending.delete(id);
        p.reject(new Error('replaced by a newer request'));
      }
    }
    const id = this.nextId++;
    if (this.nextId > 0xffffffff) this.nextId = 1;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        if (this.pending.delete(id)) {
          this.sendText('cancel', { id });
          reject(new DOMException('aborted', 'AbortError'));
        }
      };
      const cleanup = () => signal && signal.removeEventListener('abort', onAbort);
      this.pending.set(id, {
        track, from, to, onChunk,
        resolve: () => { cleanup(); resolve(); },
        reject: (e) => { cleanup(); reject(e); },
      });
      if (signal) {
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort);
      }
      this.sendText('request', firstCopy ? { id, track, from, to, first_copy: true } : { id, track, from, to });
    });
  }

  /**
   * @param {string} type
   * @param {object} fields
   */
  sendText(type, fields) {
    if (this.dc.readyState !== 'open') return;
    try {
      this.dc.send(encodeText(type, fields));
    } catch (err) {
      this.log(`${this.name}: send ${type}: ${err.message}`);
    }
  }

  /** @param {string|ArrayBuffer} data a message of the DataChannel (binaryType arraybuffer) */
  onMessage(data) {
    this.lastActivity = Date.now();
    if (typeof data === 'string') {
      const m = decodeText(data);
      if (!m) this.badMessage(`malformed text message (${data.length} chars)`);
      this.onText(m);
      return;
    }
    const bytes = new Uint8Array(data);
    const c = decodeChunk(bytes);
    if (!c) {
      // Unknown kinds are reserved and dropped; a chunk message that is
      // truncated or larger than the protocol allows is a violation.
      if (bytes.length > 0 && bytes[0] === KIND_CHUNK) this.badMessage(`malformed chunk message (${bytes.length} bytes)`);
      return;
    }
    for (const p of this.pending.values()) {
      if (p.track === c.track && c.seq >= p.from && c.seq < p.to) {
        p.onChunk(c.seq, c.data);
        return;
      }
    }
  }

  /**
   * The other side broke the protocol (unparsable or oversize text, a
   * truncated or oversize chunk message): the message is dropped and a
   * 'bad_message' event (detail: {message}) lets the owner abandon the peer.
   * @param {string} message
   */
  badMessage(message) {
    this.badMessages++;
    this.log(`${this.name}: ${message}`);
    this.dispatchEvent(new CustomEvent('bad_message', { detail: { message } }));
  }

  /** @param {TextMessage|null} m */
  onText(m) {
    if (!m) return;
    switch (m.type) {
      case 'done': {
        const p = this.pending.get(m.id);
        if (p) {
          this.pending.delete(m.id);
          p.resolve();
        }
        break;
      }
      case 'error': {
        const p = this.pending.get(m.id);
        if (p) {
          this.pending.delete(m.id);
          p.reject(Object.assign(new Error(`${this.name}: ${m.code}${m.message ? ': ' + m.message : ''}`), { code: m.code }));
        } else if (m.id) {
          this.log(`${this.name}: error for unknown range ${m.id}: ${m.code}`);
        }
        break;
      }
      case 'have_reply':
        if (validTrackId(m.track)) this.dispatchEvent(new CustomEvent('have_reply', { detail: m }));
        break;
      case 'holding':
        if (!validTrackId(m.track)) break;
        if (!this.inbound.take()) {
          this.droppedInbound++;
          break;
        }
        this.dispatchEvent(new CustomEvent('holding', { detail: m }));
        break;
      case 'request':
        if (this.serve && !this.inbound.take()) {
          this.droppedInbound++;
          this.sendText('error', { id: Number.isInteger(m.id) && m.id >= 0 ? m.id : 0, code: 'rate_limited', message: 'too many messages' });
          break;
        }
        this.onRequest(m);
        break;
      case 'cancel': {
        const s = this.serving.get(m.id);
        if (s) s.cancelled = true;
        this.serving.delete(m.id);
        break;
      }
      case 'have':
        if (!validTrackId(m.track)) break;
        if (!this.inbound.take()) {
          this.droppedInbound++;
          break;
        }
        this.sendText('have_reply', { track: m.track, ...this.haveAnswer(m.track) });
        if (this.serve && this.interest.size < MAX_INTEREST) this.interest.add(m.track);
        this.dispatchEvent(new CustomEvent('have', { detail: m }));
        break;
      default: // unknown types are ignored
    }
  }

  /**
   * What this side answers to `have` for track.
   * @param {string} track
   * @returns {HaveAnswer}
   */
  haveAnswer(track) {
    if (!this.serve) return { ok: false };
    if (this.serve.haveReply) return this.serve.haveReply(track);
    return { ok: this.serve.canServe(track) };
  }

  /**
   * Sends `holding` (the chunks of track this side holds) if the other side
   * asked `have` about track on this channel. The caller paces it.
   * @param {string} track
   * @param {{chunks: number, have: string}} bits
   * @returns {boolean} whether it was sent
   */
  pushHolding(track, { chunks, have }) {
    if (!this.open || !this.interest.has(track)) return false;
    this.sendText('holding', { track, chunks, have });
    return true;
  }

  /**
   * Sender side: validates a request and starts sending its chunks.
   * @param {TextMessage} m
   */
  async onRequest(m) {
    const id = Number.isInteger(m.id) && m.id >= 0 ? m.id : 0;
    /**
     * @param {string} code
     * @param {string} message
     */
    const fail = (code, message) => this.sendText('error', { id, code, message });
    if (!this.serve) return fail('not_found', 'this peer does not upload');
    if (!validTrackId(m.track) || !Number.isInteger(m.from) || !Number.isInteger(m.to)) return fail('bad_request', 'malformed request');
    if (this.serve.prepare) {
      try {
        await this.serve.prepare(m.track); // e.g. load the track from the persistent cache
      } catch (err) {
        this.log(`${this.name}: preparing ${m.track}: ${err.message}`);
      }
    }
    if (!this.serve.canServe(m.track)) return fail('not_found', 'track not held');
    const n = this.serve.chunkCount(m.track);
    if (m.from < 0 || m.to <= m.from || m.to > n) return fail('invalid_range', `range [${m.from},${m.to}) outside 0..${n}`);
    if (this.serving.has(id)) return fail('duplicate_id', `range ${id} in flight`);
    for (const [oid, s] of this.serving) {
      if (s.track === m.track) {
        s.cancelled = true; // a new request for a track replaces its range
        this.serving.delete(oid);
      }
    }
    if (this.serving.size >= MAX_REQUESTS) return fail('too_many_requests', `${MAX_REQUESTS} ranges in flight`);
    if (this.serve.admit && !this.serve.admit(m.track)) return fail('not_found', 'upload cap reached');
    const s = { track: m.track, cancelled: false };
    this.serving.set(id, s);
    const serve = this.serve;
    this.sendRange(id, s, m.from, m.to).then((whole) => {
      if (this.serving.get(id) === s) this.serving.delete(id);
      if (whole && serve.finished) serve.finished(m.track, m.from, m.to);
    }, (err) => {
      if (this.serving.get(id) === s) this.serving.delete(id);
      this.log(`${this.name}: serving range ${id}: ${err.message}`);
      if (!s.cancelled) fail('internal', err.message);
    });
  }

  /**
   * Sends the chunks of [from, to) of s.track this side holds, skipping the
   * others (a partial holder), then done (onRequest checked the range).
   * Resolves to whether the range was sent whole (done).
   * @param {number} id
   * @param {ServedRange} s
   * @param {number} from
   * @param {number} to
   * @returns {Promise<boolean>}
   */
  async sendRange(id, s, from, to) {
    const serve = /** @type {ServeHooks} */ (this.serve); // onRequest serves only when set
    for (let seq = from; seq < to; seq++) {
      await this.drain();
      if (s.cancelled || !this.open) return false;
      const bytes = await serve.getChunk(s.track, seq);
      if (!bytes) continue; // not held (yet): the requester knows from our bitfield
      if (s.cancelled || !this.open) return false;
      this.dc.send(encodeChunk(s.track, seq, bytes));
      serve.uploaded(bytes.length);
      if (serve.sent) serve.sent(s.track, seq);
    }
    if (s.cancelled || !this.open) return false;
    this.sendText('done', { id });
    return true;
  }

  /**
   * Waits until bufferedAmount is within the window.
   * @returns {Promise<void>}
   */
  drain() {
    if (this.dc.bufferedAmount <= this.window || !this.open) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.dc.removeEventListener('bufferedamountlow', done);
        this.removeEventListener('close', done);
        resolve();
      };
      this.dc.addEventListener('bufferedamountlow', done);
      this.addEventListener('close', done);
    });
  }

  onClose() {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new Error(`${this.name}: closed`));
    this.pending.clear();
    for (const s of this.serving.values()) s.cancelled = true;
    this.serving.clear();
    this.dispatchEvent(new Event('close'));
  }

  close() {
    try {
      this.dc.close();
    } catch { /* already closed */ }
    this.onClose();
  }
}
