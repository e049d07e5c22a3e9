// One "chunks" DataChannel speaking the chunk protocol (docs/PROTOCOL.md §4),
// in both roles: as requester (ranges of chunks delivered in order, then
// done) and as sender (serving complete tracks from the chunk store to a
// peer, with bufferedAmount flow control and an upload counter).

import { encodeChunk, decodeChunk, encodeText, decodeText, validTrackId, MAX_REQUESTS, KIND_CHUNK } from './wire.js';

/** Sender window: send while bufferedAmount is at most this (bytes). */
export const SEND_WINDOW = 512 * 1024;

/**
 * The chunk serving hooks of a side that may upload (peer↔peer channels).
 * @typedef {object} ServeHooks
 * @property {(track: string) => boolean} canServe
 * @property {(track: string) => number} chunkCount
 * @property {(track: string, seq: number) => (Uint8Array|undefined|Promise<Uint8Array|undefined>)} getChunk
 * @property {(n: number) => void} uploaded told of the bytes of every chunk sent
 * @property {(track: string, seq: number) => void} [sent] told of every chunk sent
 * @property {(track: string) => Promise<void>} [prepare] awaited before a request is served
 *   (e.g. loads the track from the persistent cache)
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
   * each; resolves on done, rejects on error, close or abort (abort sends cancel).
   * @param {string} track
   * @param {number} from
   * @param {number} to
   * @param {(seq: number, bytes: Uint8Array<ArrayBuffer>) => unknown} onChunk
   * @param {AbortSignal} [signal]
   * @returns {Promise<void>}
   */
  request(track, from, to, onChunk, signal) {
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
      this.sendText('request', { id, track, from, to });
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
        this.dispatchEvent(new CustomEvent('have_reply', { detail: m }));
        break;
      case 'request':
        this.onRequest(m);
        break;
      case 'cancel': {
        const s = this.serving.get(m.id);
        if (s) s.cancelled = true;
        this.serving.delete(m.id);
        break;
      }
      case 'have':
        if (validTrackId(m.track)) this.sendText('have_reply', { track: m.track, ok: !!(this.serve && this.serve.canServe(m.track)) });
        break;
      default: // unknown types are ignored
    }
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
    const s = { track: m.track, cancelled: false };
    this.serving.set(id, s);
    this.sendRange(id, s, m.from, m.to).catch((err) => {
      this.log(`${this.name}: serving range ${id}: ${err.message}`);
      if (!s.cancelled) fail('internal', err.message);
    }).finally(() => {
      if (this.serving.get(id) === s) this.serving.delete(id);
    });
  }

  /**
   * Sends chunks [from, to) of s.track, then done (onRequest checked the range).
   * @param {number} id
   * @param {ServedRange} s
   * @param {number} from
   * @param {number} to
   */
  async sendRange(id, s, from, to) {
    const serve = /** @type {ServeHooks} */ (this.serve); // onRequest serves only when set
    for (let seq = from; seq < to; seq++) {
      await this.drain();
      if (s.cancelled || !this.open) return;
      const bytes = await serve.getChunk(s.track, seq);
      if (!bytes) throw new Error(`chunk ${seq} not held`);
      if (s.cancelled || !this.open) return;
      this.dc.send(encodeChunk(s.track, seq, bytes));
      serve.uploaded(bytes.length);
      if (serve.sent) serve.sent(s.track, seq);
    }
    this.sendText('done', { id });
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

/**
 * A loader source over one ChunkChannel (the hub's, or a peer's).
 * @param {string} name
 * @param {import('./stats.js').SourceName} statsName
 * @param {() => (ChunkChannel|null)} getChannel
 * @param {{maxRun?: number}} [opts]
 * @returns {import('./loader.js').Source}
 */
export function channelSource(name, statsName, getChannel, { maxRun = 16 } = {}) {
  return {
    name,
    statsName,
    maxRun,
    available: () => {
      const ch = getChannel();
      return !!ch && ch.open;
    },
    slots: (track) => {
      const ch = getChannel();
      return ch && ch.open && !ch.busyWith(track) && ch.inFlight < MAX_REQUESTS ? 1 : 0;
    },
    request(track, from, to, onChunk, signal) {
      const ch = getChannel();
      if (!ch) return Promise.reject(new Error(`${name}: no channel`));
      return ch.request(track, from, to, onChunk, signal);
    },
  };
}
