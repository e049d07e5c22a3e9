// The chunk protocol's wire format (docs/PROTOCOL.md §4, Go package
// chunkproto): JSON text messages, and binary chunk messages made of a
// 21-byte header — kind 0x01, the 16 raw bytes of the track id, the seq as a
// big-endian uint32 — followed by the chunk bytes.

/** First byte of a binary chunk message. */
export const KIND_CHUNK = 0x01;
/** Bytes in the binary chunk header. */
export const HEADER_SIZE = 21;
/** Largest chunk payload. */
export const MAX_PAYLOAD = 64 * 1024;
/** Largest JSON text message on a chunks DataChannel. */
export const MAX_TEXT = 4 * 1024;
/** Label of the DataChannel carrying the chunk protocol. */
export const CHANNEL_LABEL = 'chunks';
/** Ranges a requester may have in flight at one sender. */
export const MAX_REQUESTS = 4;

const TRACK_RE = /^[0-9a-f]{32}$/;

/**
 * Whether s has track id syntax: 32 lowercase hex characters.
 * @param {unknown} s
 * @returns {boolean}
 */
export function validTrackId(s) {
  return typeof s === 'string' && TRACK_RE.test(s);
}

/**
 * Encodes the binary chunk message for (track, seq, payload).
 * @param {string} track
 * @param {number} seq
 * @param {Uint8Array} payload
 * @returns {Uint8Array<ArrayBuffer>}
 */
export function encodeChunk(track, seq, payload) {
  if (!validTrackId(track)) throw new Error(`wire: bad track id ${track}`);
  if (!Number.isInteger(seq) || seq < 0 || seq > 0xffffffff) throw new Error(`wire: bad seq ${seq}`);
  if (payload.length === 0 || payload.length > MAX_PAYLOAD) throw new Error(`wire: payload of ${payload.length} bytes`);
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  out[0] = KIND_CHUNK;
  for (let i = 0; i < 16; i++) out[1 + i] = parseInt(track.slice(2 * i, 2 * i + 2), 16);
  new DataView(out.buffer).setUint32(17, seq);
  out.set(payload, HEADER_SIZE);
  return out;
}

/**
 * Decodes a binary chunk message; the returned data aliases msg.
 * Returns null for a message that is not a valid chunk message.
 * @param {Uint8Array<ArrayBuffer>} msg
 * @returns {{track: string, seq: number, data: Uint8Array<ArrayBuffer>} | null}
 */
export function decodeChunk(msg) {
  if (msg.length <= HEADER_SIZE || msg[0] !== KIND_CHUNK || msg.length - HEADER_SIZE > MAX_PAYLOAD) return null;
  let track = '';
  for (let i = 1; i <= 16; i++) track += msg[i].toString(16).padStart(2, '0');
  const seq = new DataView(msg.buffer, msg.byteOffset, msg.byteLength).getUint32(17);
  return { track, seq, data: msg.subarray(HEADER_SIZE) };
}

/**
 * A decoded JSON text message: its type, and fields not validated yet.
 * @typedef {{type: string, [field: string]: any}} TextMessage
 */

/**
 * Encodes a JSON text message with its type first.
 * @param {string} type
 * @param {object} [fields]
 */
export function encodeText(type, fields = {}) {
  return JSON.stringify({ type, ...fields });
}

/**
 * Parses a JSON text message; returns null when it is not an object with a
 * string type or is too large.
 * @param {unknown} text
 * @returns {TextMessage | null}
 */
export function decodeText(text) {
  if (typeof text !== 'string' || text.length > MAX_TEXT) return null;
  try {
    const m = JSON.parse(text);
    return m && typeof m === 'object' && typeof m.type === 'string' ? m : null;
  } catch {
    return null;
  }
}

/** Most chunks a bitfield may describe (chunkproto.MaxChunks). */
export const MAX_BITFIELD_CHUNKS = 1 << 17;

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The bitfield of the chunks present, as `have` and `holding` carry it
 * (docs/PROTOCOL.md §2.3): bit i is byte i/8, most significant bit first,
 * the unused bits of the last byte zero, in standard base64 (padded).
 * @param {ArrayLike<boolean>} present
 * @returns {string}
 */
export function encodeBitfield(present) {
  const b = new Uint8Array((present.length + 7) >> 3);
  for (let i = 0; i < present.length; i++) if (present[i]) b[i >> 3] |= 0x80 >> (i & 7);
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

/**
 * Decodes the bitfield s of n chunks (as encodeBitfield writes it) into one
 * flag per chunk; null when it does not match: n outside 1..MAX_BITFIELD_CHUNKS,
 * not standard padded base64, not (n+7)/8 bytes, or a bit set past chunk n.
 * @param {unknown} s
 * @param {unknown} n
 * @returns {boolean[] | null}
 */
export function decodeBitfield(s, n) {
  if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0 || n > MAX_BITFIELD_CHUNKS) return null;
  const bytes = (n + 7) >> 3;
  if (typeof s !== 'string' || s.length !== 4 * Math.ceil(bytes / 3) || !BASE64_RE.test(s)) return null;
  let bin;
  try {
    bin = atob(s);
  } catch {
    return null;
  }
  if (bin.length !== bytes) return null;
  const tail = n & 7;
  if (tail !== 0 && (bin.charCodeAt(bytes - 1) & (0xff >> tail)) !== 0) return null;
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = (bin.charCodeAt(i >> 3) & (0x80 >> (i & 7))) !== 0;
  return out;
}
