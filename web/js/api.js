// HTTP catalog API client: the track list, manifests (memoized) and the
// HTTP chunk endpoint, the fallback path when WebRTC is unavailable.

export class CatalogAPI {
  /** @param {string} [base] URL prefix of the API */
  constructor(base = '/api') {
    this.base = base;
    /** @type {Map<string, Promise<object>>} */
    this.manifests = new Map();
  }

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

  /** @returns {Promise<{id: string, title: string, artist: string, album: string, duration_ms: number}[]>} */
  tracks(signal) {
    return this.json('/tracks', signal);
  }

  /** The manifest of track id (fetched once, then memoized; a failure is not memoized). */
  manifest(id) {
    let p = this.manifests.get(id);
    if (!p) {
      p = this.json(`/tracks/${encodeURIComponent(id)}`);
      this.manifests.set(id, p);
      p.catch(() => this.manifests.delete(id));
    }
    return p;
  }

  /** The bytes of chunk seq of track id from the HTTP chunk endpoint. */
  async chunk(id, seq, signal) {
    const res = await fetch(`${this.base}/tracks/${encodeURIComponent(id)}/chunks/${seq}`, { signal });
    if (!res.ok) throw new Error(`GET chunk ${seq} of ${id}: ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
}
