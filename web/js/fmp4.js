// Fragmented MP4 wrapping of raw MP3 chunks, for browsers whose Media Source
// has no 'audio/mpeg' byte stream (Firefox): one init segment (ftyp+moov
// with an 'mp4a' sample entry whose esds says objectTypeIndication 0x6B,
// MPEG-1/2 Layer III), then one moof+mdat fragment per chunk with one sample
// per MP3 frame, appended to a SourceBuffer of type MP4_MIME. Peers exchange
// the raw chunk bytes in every browser; only this client-side wrapping differs.

import { splitFrames } from './mp3.js';

/** The SourceBuffer type for the fragments built here. */
export const MP4_MIME = 'audio/mp4; codecs="mp3"';

/** Track id of the single audio track. */
const TRACK_ID = 1;

const enc = new TextEncoder();

/**
 * Returns a box: 32-bit size, 4-character type, then the payload parts.
 * @param {string} type
 * @param {...Uint8Array} parts
 */
export function box(type, ...parts) {
  let size = 8;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  new DataView(out.buffer).setUint32(0, size);
  out.set(enc.encode(type), 4);
  let off = 8;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Returns a full box: a box whose payload starts with version and 24-bit flags.
 * @param {string} type
 * @param {number} version
 * @param {number} flags
 * @param {...Uint8Array} parts
 */
function fullBox(type, version, flags, ...parts) {
  const vf = u32((version << 24) | (flags & 0xffffff));
  return box(type, vf, ...parts);
}

/** @param {number} v */
function u8(v) {
  return Uint8Array.of(v & 0xff);
}
/** @param {number} v */
function u16(v) {
  return Uint8Array.of((v >> 8) & 0xff, v & 0xff);
}
/** @param {number} v */
function u32(v) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0);
  return b;
}
/** @param {number} v */
function u64(v) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v));
  return b;
}
/** @param {number} n */
function zeros(n) {
  return new Uint8Array(n);
}
/** @param {Uint8Array[]} parts */
function concat(parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The unity transformation matrix of mvhd and tkhd. */
const MATRIX = concat([u32(0x10000), u32(0), u32(0), u32(0), u32(0x10000), u32(0), u32(0), u32(0), u32(0x40000000)]);

/**
 * An MPEG-4 descriptor (ISO 14496-1 §7.2.2.1) with a one-byte length (< 128).
 * @param {number} tag
 * @param {...Uint8Array} parts
 */
function descriptor(tag, ...parts) {
  const body = concat(parts);
  if (body.length > 127) throw new Error('fmp4: descriptor too long');
  return concat([u8(tag), u8(body.length), body]);
}

/**
 * esds box for MP3: ES_Descriptor { DecoderConfigDescriptor { objectTypeIndication 0x6B,
 * streamType audio }, SLConfigDescriptor { predefined 2 } }.
 * @param {number} bitrate bit/s
 */
function esds(bitrate) {
  const decoderConfig = descriptor(
    0x04,
    u8(0x6b), // MPEG-1 audio (Layer III: MP3)
    u8((0x05 << 2) | 1), // streamType 5 (audio), upStream 0, reserved 1
    zeros(3), // bufferSizeDB
    u32(bitrate), // maxBitrate
    u32(bitrate), // avgBitrate
  );
  const sl = descriptor(0x06, u8(0x02));
  const es = descriptor(0x03, u16(TRACK_ID), u8(0), decoderConfig, sl);
  return fullBox('esds', 0, 0, es);
}

/**
 * Builds the init segment (ftyp+moov) for a track.
 * @param {{sampleRate: number, channels: number, bitrate?: number}} p bitrate in kbit/s
 * @returns {Uint8Array<ArrayBuffer>}
 */
export function initSegment({ sampleRate, channels, bitrate = 0 }) {
  if (!(sampleRate > 0 && sampleRate < 65536)) throw new Error(`fmp4: sample rate ${sampleRate}`);
  const ftyp = box('ftyp', enc.encode('isom'), u32(0x200), enc.encode('isom'), enc.encode('iso6'), enc.encode('mp41'));
  const mvhd = fullBox('mvhd', 0, 0,
    u32(0), u32(0), // creation, modification time
    u32(sampleRate), u32(0), // timescale, duration (unknown: fragmented)
    u32(0x00010000), u16(0x0100), zeros(10), // rate 1.0, volume 1.0, reserved
    MATRIX, zeros(24), // matrix, pre_defined
    u32(TRACK_ID + 1)); // next_track_ID
  const tkhd = fullBox('tkhd', 0, 0x000003, // enabled, in movie
    u32(0), u32(0), u32(TRACK_ID), u32(0), u32(0), // times, track_ID, reserved, duration
    zeros(8), u16(0), u16(0), u16(0x0100), u16(0), // reserved, layer, alternate_group, volume, reserved
    MATRIX, u32(0), u32(0)); // matrix, width, height
  const mdhd = fullBox('mdhd', 0, 0, u32(0), u32(0), u32(sampleRate), u32(0), u16(0x55c4), u16(0)); // 'und'
  const hdlr = fullBox('hdlr', 0, 0, u32(0), enc.encode('soun'), zeros(12), enc.encode('SoundHandler\0'));
  const smhd = fullBox('smhd', 0, 0, u16(0), u16(0));
  const dinf = box('dinf', fullBox('dref', 0, 0, u32(1), fullBox('url ', 0, 1)));
  const mp4a = box('mp4a',
    zeros(6), u16(1), // reserved, data_reference_index
    zeros(8), // reserved (version, revision, vendor)
    u16(channels), u16(16), u16(0), u16(0), // channelcount, samplesize, pre_defined, reserved
    u32(sampleRate * 65536), // samplerate 16.16
    esds(bitrate * 1000));
  const stbl = box('stbl',
    fullBox('stsd', 0, 0, u32(1), mp4a),
    fullBox('stts', 0, 0, u32(0)),
    fullBox('stsc', 0, 0, u32(0)),
    fullBox('stsz', 0, 0, u32(0), u32(0)),
    fullBox('stco', 0, 0, u32(0)));
  const minf = box('minf', smhd, dinf, stbl);
  const trak = box('trak', tkhd, box('mdia', mdhd, hdlr, minf));
  const trex = fullBox('trex', 0, 0, u32(TRACK_ID), u32(1), u32(0), u32(0), u32(0));
  const moov = box('moov', mvhd, trak, box('mvex', trex));
  return concat([ftyp, moov]);
}

/**
 * Wraps one chunk of raw MP3 frames into a moof+mdat fragment whose decode
 * time is baseMediaDecodeTime = seq × framesPerChunk × samplesPerFrame, in a
 * timescale equal to the sample rate (the init segment's).
 * @param {{seq: number, bytes: Uint8Array, framesPerChunk: number, samplesPerFrame: number}} p
 * @returns {Uint8Array<ArrayBuffer>}
 */
export function fragment({ seq, bytes, framesPerChunk, samplesPerFrame }) {
  const frames = splitFrames(bytes);
  if (frames.length === 0) throw new Error('fmp4: empty chunk');
  const baseMediaDecodeTime = seq * framesPerChunk * samplesPerFrame;
  const mfhd = fullBox('mfhd', 0, 0, u32(seq + 1));
  // default-base-is-moof | default-sample-duration-present
  const tfhd = fullBox('tfhd', 0, 0x020008, u32(TRACK_ID), u32(samplesPerFrame));
  const tfdt = fullBox('tfdt', 1, 0, u64(baseMediaDecodeTime));
  const sizes = frames.map((f) => u32(f.size));
  // data-offset-present | sample-size-present; data_offset is patched below.
  const trun = fullBox('trun', 0, 0x000201, u32(frames.length), u32(0), ...sizes);
  const traf = box('traf', tfhd, tfdt, trun);
  const moof = box('moof', mfhd, traf);
  // data_offset: from the start of moof to the first sample byte in mdat.
  const trunOffsetInMoof = 8 + mfhd.length + 8 + tfhd.length + tfdt.length;
  new DataView(moof.buffer).setUint32(trunOffsetInMoof + 16, moof.length + 8);
  const mdat = box('mdat', bytes);
  return concat([moof, mdat]);
}

/**
 * Parses a sequence of boxes (for tests and debugging).
 * @param {Uint8Array} bytes
 * @param {number} [start]
 * @param {number} [end]
 * @returns {{type: string, offset: number, size: number, body: Uint8Array}[]}
 */
export function readBoxes(bytes, start = 0, end = bytes.length) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = [];
  let off = start;
  while (off < end) {
    if (off + 8 > end) throw new Error(`fmp4: truncated box header at ${off}`);
    const size = dv.getUint32(off);
    const type = String.fromCharCode(bytes[off + 4], bytes[off + 5], bytes[off + 6], bytes[off + 7]);
    if (size < 8 || off + size > end) throw new Error(`fmp4: bad size ${size} of box ${type} at ${off}`);
    out.push({ type, offset: off, size, body: bytes.subarray(off + 8, off + size) });
    off += size;
  }
  return out;
}
