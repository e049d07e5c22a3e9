// Shared helpers of the unit tests: synthetic MP3 frames and manifests.

import { createHash } from 'node:crypto';

/**
 * A Layer III frame with a valid header and a zero body.
 * @param {{mpeg?: '1'|'2'|'2.5', bitrateIndex?: number, srIndex?: number, padding?: boolean, mono?: boolean, fill?: number}} [o]
 */
export function makeFrame({ mpeg = '1', bitrateIndex = 9, srIndex = 0, padding = false, mono = false, fill = 0 } = {}) {
  const versionBits = { 1: 3, 2: 2, 2.5: 0 }[mpeg];
  const bitrates = mpeg === '1' ? [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
    : [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
  const rates = { 3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000] }[versionBits];
  const size = Math.floor(((mpeg === '1' ? 144 : 72) * bitrates[bitrateIndex] * 1000) / rates[srIndex]) + (padding ? 1 : 0);
  const f = new Uint8Array(size).fill(fill);
  f[0] = 0xff;
  f[1] = 0xe0 | (versionBits << 3) | (1 << 1) | 1; // Layer III, no CRC
  f[2] = (bitrateIndex << 4) | (srIndex << 2) | (padding ? 2 : 0);
  f[3] = mono ? 0xc0 : 0x00;
  return f;
}

export function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * A manifest of n chunks (MPEG-1, 44.1 kHz, 38 frames of 1152 samples), the
 * last one `lastFrames` frames long, with chunk bytes from makeChunk.
 */
export function makeManifest({ n = 10, lastFrames = 38, delay = 576, padding = 1080, reservoir = () => false } = {}) {
  const F = 38, S = 1152, sr = 44100;
  const chunks = [];
  const data = [];
  for (let seq = 0; seq < n; seq++) {
    const frames = seq === n - 1 ? lastFrames : F;
    const bytes = concat(Array.from({ length: frames }, (_, i) => makeFrame({ padding: i % 2 === 1, fill: (seq * 7 + i) & 0xff })));
    data.push(bytes);
    chunks.push({
      seq, start_ms: (seq * F * S * 1000) / sr, duration_ms: (frames * S * 1000) / sr, frames,
      size: bytes.length, sha256: sha256(bytes), reservoir: reservoir(seq),
    });
  }
  const totalFrames = (n - 1) * F + lastFrames;
  return {
    manifest: {
      id: '0123456789abcdef0123456789abcdef', title: 'T', artist: 'A', album: 'B',
      duration_ms: Math.round(((totalFrames * S - delay - padding) * 1000) / sr),
      bitrate: 128, sample_rate: sr, channels: 2, mime: 'audio/mpeg', mpeg_version: '1',
      samples_per_frame: S, frames_per_chunk: F, total_frames: totalFrames,
      encoder_delay: delay, encoder_padding: padding, total_samples: totalFrames * S - delay - padding,
      size: data.reduce((s, b) => s + b.length, 0), chunks,
    },
    data,
  };
}

/** A pair of connected fake RTCDataChannels (async delivery, bufferedAmount counted until delivered). */
export function dcPair() {
  class FakeDC extends EventTarget {
    constructor() {
      super();
      this.readyState = 'open';
      this.bufferedAmount = 0;
      this.bufferedAmountLowThreshold = 0;
      this.sent = [];
    }
    send(data) {
      if (this.readyState !== 'open') throw new Error('closed');
      const copy = typeof data === 'string' ? data : new Uint8Array(data).slice().buffer;
      const size = typeof data === 'string' ? data.length : copy.byteLength;
      this.sent.push(copy);
      this.bufferedAmount += size;
      setTimeout(() => {
        this.bufferedAmount -= size;
        if (this.bufferedAmount <= this.bufferedAmountLowThreshold) this.dispatchEvent(new Event('bufferedamountlow'));
        if (this.peer.readyState === 'open') this.peer.dispatchEvent(Object.assign(new Event('message'), { data: copy }));
      }, 0);
    }
    close() {
      for (const d of [this, this.peer]) {
        if (d.readyState === 'closed') continue;
        d.readyState = 'closed';
        setTimeout(() => d.dispatchEvent(new Event('close')), 0);
      }
    }
  }
  const a = new FakeDC();
  const b = new FakeDC();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** A fake WebSocket recording what the page sends (parsed); receive(m) delivers a hub message. */
export class FakeWS extends EventTarget {
  static OPEN = 1;
  static instances = [];
  constructor(url) {
    super();
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    /** Told of every message sent (tests answer lookups with it). */
    this.onSend = null;
    FakeWS.instances.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.dispatchEvent(new Event('open'));
    }, 0);
  }
  send(s) {
    const m = JSON.parse(s);
    this.sent.push(m);
    if (this.onSend) this.onSend(m);
  }
  receive(m) {
    this.dispatchEvent(Object.assign(new Event('message'), { data: JSON.stringify(m) }));
  }
  close(code = 1006) {
    this.readyState = 3;
    this.dispatchEvent(Object.assign(new Event('close'), { code, reason: '' }));
  }
}

/** A fake RTCPeerConnection: records its instances; tests dispatch 'datachannel' on it. */
export class FakePC extends EventTarget {
  static instances = [];
  /** When set, a leecher's channel is open and its far end is handed to onRemote(dc). */
  static onRemote = null;
  constructor() {
    super();
    this.connectionState = 'new';
    this.remoteDescription = null;
    FakePC.instances.push(this);
  }
  createDataChannel() {
    const [dc, far] = dcPair();
    if (FakePC.onRemote) {
      FakePC.onRemote(far);
      return dc;
    }
    dc.readyState = 'connecting'; // never connects here
    return dc;
  }
  async createOffer() {
    return { type: 'offer', sdp: 'v=0' };
  }
  async createAnswer() {
    return { type: 'answer', sdp: 'v=0' };
  }
  async setLocalDescription(d) {
    this.localDescription = d;
  }
  async setRemoteDescription(d) {
    this.remoteDescription = d;
  }
  async addIceCandidate() {}
  close() {
    this.connectionState = 'closed';
  }
}

/** Installs FakeWS and FakePC as the globals WebSocket and RTCPeerConnection, with no instances yet. */
export function installFakes() {
  globalThis.WebSocket = FakeWS;
  globalThis.RTCPeerConnection = FakePC;
  FakeWS.instances = [];
  FakePC.instances = [];
  FakePC.onRemote = null;
}

export const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

/** Resolves once cond() holds; rejects after ms. */
export async function until(cond, ms = 8000, what = cond.toString()) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met in ${ms} ms: ${what}`);
    await tick(3);
  }
}
