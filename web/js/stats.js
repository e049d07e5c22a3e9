// Session counters: where chunk bytes came from, what was uploaded, stalls
// and start latencies. Listeners are told on every change (for the UI), and
// drainDelta() yields the deltas the signaling Stats message reports.

/** Where a chunk's bytes came from. */
export const SOURCES = Object.freeze(['hub', 'peer', 'cache', 'http']);

/** @typedef {'hub'|'peer'|'cache'|'http'} SourceName one of SOURCES */

/**
 * The counters of a signaling Stats message (signaling/messages.go).
 * @typedef {{hub_bytes: number, peer_bytes: number, relay_bytes: number, cache_bytes: number, uploaded_bytes: number,
 *   bad_chunks: number, stalls: number, emergency_fetches: number, startup_ms?: number[]}} StatsDelta
 */

export class SessionStats extends EventTarget {
  constructor() {
    super();
    this.bytes = { hub: 0, peer: 0, cache: 0, http: 0 };
    /** The part of bytes.peer that came through TURN relays. */
    this.relayBytes = 0;
    this.uploaded = 0;
    this.badChunks = 0;
    /** `report` messages sent to the hub about misbehaving seeders. */
    this.reportsSent = 0;
    /** Peer links closed because the seeder misbehaved or was known bad. */
    this.peersAbandoned = 0;
    this.stalls = 0;
    /** Chunks fetched from the hub while peers served the track (too slow). */
    this.emergencyFetches = 0;
    this.peers = 0;
    /** Start latency (ms) of the last play, or null. @type {number|null} */
    this.lastStartupMs = null;
    /** @type {number[]} */
    this.pendingStartups = [];
    this.reported = { hub: 0, peer: 0, relay: 0, cache: 0, uploaded: 0, badChunks: 0, stalls: 0, emergency: 0 };
  }

  /**
   * Counts n of the peer bytes as relayed (a link through a TURN relay).
   * @param {number} n
   */
  relayed(n) {
    this.relayBytes += n;
  }

  /**
   * Counts n chunk bytes received from source (one of SOURCES).
   * @param {SourceName} source
   * @param {number} n
   */
  received(source, n) {
    if (!(source in this.bytes)) throw new Error(`stats: unknown source ${source}`);
    this.bytes[source] += n;
    this.changed();
  }

  /** @param {number} n */
  uploadedBytes(n) {
    this.uploaded += n;
    this.changed();
  }

  badChunk() {
    this.badChunks++;
    this.changed();
  }

  reportSent() {
    this.reportsSent++;
    this.changed();
  }

  peerAbandoned() {
    this.peersAbandoned++;
    this.changed();
  }

  stall() {
    this.stalls++;
    this.changed();
  }

  /** @param {number} n */
  setPeers(n) {
    this.peers = n;
    this.changed();
  }

  /** @param {number} ms */
  startup(ms) {
    this.lastStartupMs = ms;
    if (this.pendingStartups.length < 64) this.pendingStartups.push(ms);
    this.changed();
  }

  /** Bytes from the server: the hub DataChannel plus the HTTP chunk endpoint. */
  get serverBytes() {
    return this.bytes.hub + this.bytes.http;
  }

  /** Share of received bytes that came from peers (0 when nothing arrived). */
  get p2pShare() {
    const total = this.bytes.hub + this.bytes.http + this.bytes.peer;
    return total === 0 ? 0 : this.bytes.peer / total;
  }

  /**
   * The counters accumulated since the previous call, in the shape of the
   * signaling Stats message (HTTP bytes count as hub bytes: both are server bytes).
   * @returns {StatsDelta}
   */
  drainDelta() {
    const cur = {
      hub: this.serverBytes, peer: this.bytes.peer, relay: this.relayBytes, cache: this.bytes.cache,
      uploaded: this.uploaded, badChunks: this.badChunks, stalls: this.stalls, emergency: this.emergencyFetches,
    };
    /** @type {StatsDelta} */
    const d = {
      hub_bytes: cur.hub - this.reported.hub,
      peer_bytes: cur.peer - this.reported.peer,
      relay_bytes: cur.relay - this.reported.relay,
      cache_bytes: cur.cache - this.reported.cache,
      uploaded_bytes: cur.uploaded - this.reported.uploaded,
      bad_chunks: cur.badChunks - this.reported.badChunks,
      stalls: cur.stalls - this.reported.stalls,
      emergency_fetches: cur.emergency - this.reported.emergency,
    };
    const startups = this.pendingStartups;
    if (startups.length > 0) d.startup_ms = startups;
    this.pendingStartups = [];
    this.reported = cur;
    return d;
  }

  changed() {
    this.dispatchEvent(new Event('change'));
  }
}
