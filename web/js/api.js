// HTTP catalog API client: the track list, manifests (memoized), the peer
// algorithm's constants (GET /api/config) and the HTTP chunk endpoint, the
// fallback path when WebRTC is unavailable.

import { withAlgorithmDefaults } from './swarm.js';

/**
 * One chunk of a track manifest (media.ChunkInfo): a verbatim run of whole MP3 frames.
 * @typedef {object} ChunkInfo
 * @property {number} seq
 * @property {number} start_ms
 * @property {number} duration_ms
 * @property {number} frames
 * @property {number} size bytes
 * @property {string} sha256 lowercase hex SHA-256 of the chunk bytes
 * @property {boolean} reservoir its first frame needs the previous frame (bit reservoir)
 */

/**
 * A track manifest (media.Manifest), as served by GET /api/tracks/{id}.
 * @typedef {object} Manifest
 * @property {string} id
 * @property {string} title
 * @property {string} artist
 * @property {string} album
 * @property {string} [album_artist]
 * @property {number} [year]
 * @property {number} [track_no]
 * @property {number} [disc_no]
 * @property {CoverRef} [cover] the track's cover art, when its file had one
 * @property {number} duration_ms
 * @property {number} bitrate average, kbit/s
 * @property {number} sample_rate
 * @property {number} channels
 * @property {string} mime
 * @property {string} mpeg_version
 * @property {number} samples_per_frame
 * @property {number} frames_per_chunk
 * @property {number} total_frames
 * @property {number} encoder_delay samples trimmed at the start
 * @property {number} encoder_padding samples trimmed at the end
 * @property {number} total_samples
 * @property {number} size
 * @property {ChunkInfo[]} chunks
 * @property {string} [origin] the tag of the music folder that added the track (serve --music)
 */

/**
 * A track's cover art (media.CoverRef): its picture's SHA-256, content type and size.
 * @typedef {{sha256: string, mime: string, size: number}} CoverRef
 */

/**
 * A catalog entry (media.Summary), as listed by GET /api/tracks. cover is
 * the SHA-256 of the track's cover art, absent without.
 * @typedef {{id: string, title: string, artist: string, album: string, album_artist?: string, year?: number,
 *   track_no?: number, disc_no?: number, cover?: string, duration_ms: number}} TrackSummary
 */

/**
 * The URL of a track's cover art, or '' without one. The picture's SHA-256
 * is in the URL, so the browser may cache it for good.
 * @param {string} id
 * @param {string|undefined} sha256
 * @param {string} [base] URL prefix of the API
 */
export function coverURL(id, sha256, base = '/api') {
  return sha256 ? `${base}/tracks/${encodeURIComponent(id)}/cover?v=${encodeURIComponent(sha256)}` : '';
}

export class CatalogAPI {
  /** @param {string} [base] URL prefix of the API */
  constructor(base = '/api') {
    this.base = base;
    /** @type {Map<string, Promise<Manifest>>} */
    this.manifests = new Map();
  }

  /**
   * The URL of track id's whole MP3, for a plain <audio src> (GET
   * /tracks/{id}/stream, with Range support; every byte from the server).
   * @param {string} id
   */
  streamURL(id) {
    return `${this.base}/tracks/${encodeURIComponent(id)}/stream`;
  }

  /**
   * GETs base+path and decodes its JSON body; throws on an HTTP error.
   * @param {string} path
   * @param {AbortSignal} [signal]
   * @returns {Promise<any>}
   */
  async json(path, signal) {
    const res = await fetch(this.base + path, { signal, headers: { Accept: 'application/json' } });
    if (!res.ok) {
      let msg = res.statusText;
      try {
        msg = (await res.json()).error || msg;
      } catch { /* not JSON */ }
      throw new Error(`GET ${this.base}${path}: ${res.status} ${msg}`);
    }
    return res.json();
  }

  /**
   * @param {AbortSignal} [signal]
   * @returns {Promise<TrackSummary[]>}
   */
  tracks(signal) {
    return this.json('/tracks', signal);
  }

  /**
   * The constants of the peer algorithm (docs/PROTOCOL.md §8) the hub serves
   * at GET /api/config, completed with the built-in defaults of swarm.js
   * (which are the whole answer when the request fails: never rejects).
   * @param {{signal?: AbortSignal, log?: (msg: string) => void}} [opts]
   * @returns {Promise<import('./swarm.js').Algorithm>}
   */
  async config({ signal, log = () => {} } = {}) {
    try {
      return withAlgorithmDefaults(await this.json('/config', signal));
    } catch (err) {
      log(`peer algorithm: built-in defaults (${err && err.message ? err.message : err})`);
      return withAlgorithmDefaults();
    }
  }

  /**
   * The manifest of track id (fetched once, then memoized; a failure is not memoized).
   * @param {string} id
   * @returns {Promise<Manifest>}
   */
  manifest(id) {
    let p = this.manifests.get(id);
    if (!p) {
      p = this.json(`/tracks/${encodeURIComponent(id)}`);
      this.manifests.set(id, p);
      p.catch(() => this.manifests.delete(id));
    }
    return p;
  }

  /**
   * The bytes of chunk seq of track id from the HTTP chunk endpoint.
   * @param {string} id
   * @param {number} seq
   * @param {AbortSignal} [signal]
   */
  async chunk(id, seq, signal) {
    const res = await fetch(`${this.base}/tracks/${encodeURIComponent(id)}/chunks/${seq}`, { signal });
    if (!res.ok) throw new Error(`GET chunk ${seq} of ${id}: ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
}
