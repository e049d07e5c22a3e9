// Chunk verification: every chunk received from a peer (or read back from
// the cache) must have the SHA-256 the manifest lists for it.

// A page that is not a secure context (opened by LAN address over plain
// HTTP) has no crypto.subtle: there, SHA-256 is @noble/hashes (vendored,
// unmodified, see vendor/noble-hashes/README.md).
import { sha256 } from './vendor/noble-hashes/sha2.js';

/**
 * Lowercase hex of bytes.
 * @param {Uint8Array} bytes
 */
export function toHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** WebCrypto's SubtleCrypto where the page has it (secure contexts), else undefined. */
export const webSubtle = globalThis.crypto && globalThis.crypto.subtle ? globalThis.crypto.subtle : undefined;

/**
 * SHA-256 of bytes as lowercase hex: with WebCrypto where the page has it,
 * else in JavaScript (@noble/hashes).
 * @param {Uint8Array<ArrayBuffer>} bytes
 * @param {SubtleCrypto} [subtle] undefined: the JavaScript implementation
 */
export async function sha256Hex(bytes, subtle = webSubtle) {
  if (subtle) return toHex(new Uint8Array(await subtle.digest('SHA-256', bytes)));
  return toHex(sha256(bytes));
}

/**
 * Checks that bytes are chunk seq of manifest m: right size and SHA-256.
 * Resolves to null when they are, or to a string saying what is wrong.
 * @param {{chunks: {seq: number, size: number, sha256: string}[]}} m
 * @param {number} seq
 * @param {Uint8Array<ArrayBuffer>} bytes
 * @returns {Promise<string|null>}
 */
export async function verifyChunk(m, seq, bytes) {
  const info = m.chunks[seq];
  if (!info) return `chunk ${seq} is not in the manifest`;
  if (bytes.length !== info.size) return `chunk ${seq}: ${bytes.length} bytes, manifest says ${info.size}`;
  const got = await sha256Hex(bytes);
  if (got !== info.sha256) return `chunk ${seq}: sha256 ${got}, manifest says ${info.sha256}`;
  return null;
}
