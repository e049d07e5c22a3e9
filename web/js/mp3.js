// MPEG audio Layer III frame header parsing: enough to split a Ztream chunk
// (a verbatim run of whole MP3 frames) into its frames, e.g. to wrap them
// into fMP4 samples for browsers without 'audio/mpeg' Media Source support.

const BITRATES_V1_L3 = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const BITRATES_V2_L3 = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
// Indexed by the 2-bit version field: 0 = MPEG-2.5, 1 = reserved, 2 = MPEG-2, 3 = MPEG-1.
const SAMPLE_RATES = [[11025, 12000, 8000], null, [22050, 24000, 16000], [44100, 48000, 32000]];

/** Size in bytes of an MPEG audio frame header. */
export const HEADER_SIZE = 4;

/**
 * Parses the 4-byte Layer III frame header at offset off of bytes.
 * Returns null when the bytes there are not a valid Layer III header
 * (no sync, reserved version/sample rate, free-format or bad bitrate).
 * @param {Uint8Array} bytes
 * @param {number} off
 * @returns {null | {version: string, sampleRate: number, bitrate: number, padding: boolean,
 *   channels: number, samplesPerFrame: number, frameSize: number, crc: boolean}}
 */
export function parseFrameHeader(bytes, off = 0) {
  if (off < 0 || off + HEADER_SIZE > bytes.length) return null;
  const b0 = bytes[off], b1 = bytes[off + 1], b2 = bytes[off + 2], b3 = bytes[off + 3];
  if (b0 !== 0xff || (b1 & 0xe0) !== 0xe0) return null;
  const versionBits = (b1 >> 3) & 3;
  const layerBits = (b1 >> 1) & 3;
  const rates = SAMPLE_RATES[versionBits];
  if (rates === null || layerBits !== 1) return null; // reserved version (1), or not Layer III
  const bitrateIndex = b2 >> 4;
  const srIndex = (b2 >> 2) & 3;
  if (bitrateIndex === 0 || bitrateIndex === 15 || srIndex === 3) return null;
  const mpeg1 = versionBits === 3;
  const bitrate = (mpeg1 ? BITRATES_V1_L3 : BITRATES_V2_L3)[bitrateIndex];
  const sampleRate = rates[srIndex];
  const padding = ((b2 >> 1) & 1) === 1;
  const channelMode = b3 >> 6;
  const coef = mpeg1 ? 144 : 72;
  return {
    version: mpeg1 ? '1' : versionBits === 2 ? '2' : '2.5',
    sampleRate,
    bitrate,
    padding,
    channels: channelMode === 3 ? 1 : 2,
    samplesPerFrame: mpeg1 ? 1152 : 576,
    frameSize: Math.floor((coef * bitrate * 1000) / sampleRate) + (padding ? 1 : 0),
    crc: (b1 & 1) === 0,
  };
}

/**
 * Splits bytes, which must be a concatenation of whole Layer III frames, into
 * frames. Throws when a frame header is invalid or the last frame is cut.
 * @param {Uint8Array} bytes
 * @returns {{offset: number, size: number}[]}
 */
export function splitFrames(bytes) {
  const frames = [];
  let off = 0;
  while (off < bytes.length) {
    const h = parseFrameHeader(bytes, off);
    if (h === null) throw new Error(`mp3: no valid Layer III frame header at byte ${off}`);
    if (off + h.frameSize > bytes.length) {
      throw new Error(`mp3: frame at byte ${off} needs ${h.frameSize} bytes, ${bytes.length - off} left`);
    }
    frames.push({ offset: off, size: h.frameSize });
    off += h.frameSize;
  }
  return frames;
}
