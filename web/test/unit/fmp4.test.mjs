import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initSegment, fragment, readBoxes, box, MP4_MIME } from '../../js/fmp4.js';
import { makeFrame, concat } from './helpers.mjs';

const dv = (b) => new DataView(b.buffer, b.byteOffset, b.byteLength);
/** Finds the child box of the given type path, e.g. ['moov', 'trak']. */
function find(bytes, path) {
  let boxes = readBoxes(bytes);
  let found = null;
  for (const [i, type] of path.entries()) {
    found = boxes.find((b) => b.type === type);
    assert.ok(found, `box ${path.slice(0, i + 1).join('/')} missing`);
    if (i < path.length - 1) {
      // stsd and dref are full boxes with an entry count; mp4a has a 28-byte sample entry header.
      const skip = { stsd: 8, dref: 8, mp4a: 28 }[type] || 0;
      boxes = readBoxes(found.body, skip);
    }
  }
  return found.body;
}

test('MP4_MIME is the type Firefox accepts for MP3 in MP4', () => {
  assert.equal(MP4_MIME, 'audio/mp4; codecs="mp3"');
});

test('box writes size and type', () => {
  const b = box('free', Uint8Array.of(1, 2, 3));
  assert.equal(dv(b).getUint32(0), 11);
  assert.equal(String.fromCharCode(...b.subarray(4, 8)), 'free');
  assert.deepEqual([...b.subarray(8)], [1, 2, 3]);
});

test('initSegment: ftyp + moov with an mp4a sample entry and esds for MP3 (0x6B)', () => {
  const init = initSegment({ sampleRate: 44100, channels: 2, bitrate: 128 });
  const top = readBoxes(init);
  assert.deepEqual(top.map((b) => b.type), ['ftyp', 'moov']);
  assert.equal(top[1].offset + top[1].size, init.length);
  assert.deepEqual(readBoxes(top[1].body).map((b) => b.type), ['mvhd', 'trak', 'mvex']);
  assert.equal(dv(find(init, ['moov', 'mvhd'])).getUint32(12), 44100, 'mvhd timescale');
  assert.equal(dv(find(init, ['moov', 'trak', 'mdia', 'mdhd'])).getUint32(12), 44100, 'mdhd timescale');
  assert.equal(String.fromCharCode(...find(init, ['moov', 'trak', 'mdia', 'hdlr']).subarray(8, 12)), 'soun');
  assert.equal(dv(find(init, ['moov', 'trak', 'tkhd'])).getUint32(12), 1, 'track_ID');
  assert.equal(dv(find(init, ['moov', 'mvex', 'trex'])).getUint32(4), 1, 'trex track_ID');
  const mp4a = find(init, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stsd', 'mp4a']);
  assert.equal(dv(mp4a).getUint16(6), 1, 'data_reference_index');
  assert.equal(dv(mp4a).getUint16(16), 2, 'channelcount');
  assert.equal(dv(mp4a).getUint16(18), 16, 'samplesize');
  assert.equal(dv(mp4a).getUint32(24), 44100 * 65536, 'samplerate 16.16');
  const esds = find(init, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stsd', 'mp4a', 'esds']);
  // version/flags, ES_Descriptor(tag 3, len, ES_ID, flags), DecoderConfigDescriptor(tag 4, len, OTI, streamType...)
  assert.equal(esds[4], 0x03);
  assert.equal(esds[5], esds.length - 6, 'ES_Descriptor length');
  assert.equal(esds[9], 0x04);
  assert.equal(esds[10], 13, 'DecoderConfigDescriptor length');
  assert.equal(esds[11], 0x6b, 'objectTypeIndication MPEG-1 audio');
  assert.equal(esds[12] >> 2, 0x05, 'streamType audio');
  assert.equal(dv(esds).getUint32(16), 128000, 'maxBitrate');
  assert.deepEqual([...esds.subarray(esds.length - 3)], [0x06, 1, 0x02], 'SLConfigDescriptor predefined 2');
  assert.throws(() => initSegment({ sampleRate: 0, channels: 2 }));
});

test('fragment: moof+mdat with one sample per MP3 frame and tfdt = seq·F·S', () => {
  const frames = [makeFrame(), makeFrame({ padding: true }), makeFrame(), makeFrame({ bitrateIndex: 11 })];
  const bytes = concat(frames);
  const seq = 7;
  const frag = fragment({ seq, bytes, framesPerChunk: 38, samplesPerFrame: 1152 });
  const top = readBoxes(frag);
  assert.deepEqual(top.map((b) => b.type), ['moof', 'mdat']);
  const [moof, mdat] = top;
  assert.deepEqual(readBoxes(moof.body).map((b) => b.type), ['mfhd', 'traf']);
  assert.equal(dv(find(frag, ['moof', 'mfhd'])).getUint32(4), seq + 1, 'sequence_number');
  const traf = find(frag, ['moof', 'traf']);
  assert.deepEqual(readBoxes(traf).map((b) => b.type), ['tfhd', 'tfdt', 'trun']);
  const tfhd = find(frag, ['moof', 'traf', 'tfhd']);
  assert.equal(dv(tfhd).getUint32(0) & 0xffffff, 0x020008, 'default-base-is-moof | default-sample-duration');
  assert.equal(dv(tfhd).getUint32(4), 1, 'track_ID');
  assert.equal(dv(tfhd).getUint32(8), 1152, 'default_sample_duration');
  const tfdt = find(frag, ['moof', 'traf', 'tfdt']);
  assert.equal(tfdt[0], 1, 'tfdt version 1');
  assert.equal(dv(tfdt).getBigUint64(4), BigInt(seq * 38 * 1152), 'baseMediaDecodeTime');
  const trun = find(frag, ['moof', 'traf', 'trun']);
  const tv = dv(trun);
  assert.equal(tv.getUint32(0) & 0xffffff, 0x000201, 'data-offset | sample-size');
  assert.equal(tv.getUint32(4), frames.length, 'sample_count');
  const dataOffset = tv.getUint32(8);
  assert.equal(moof.offset + dataOffset, mdat.offset + 8, 'data_offset points at the first mdat byte');
  const sizes = frames.map((_, i) => tv.getUint32(12 + 4 * i));
  assert.deepEqual(sizes, frames.map((f) => f.length));
  assert.deepEqual(mdat.body, bytes, 'mdat carries the chunk verbatim');
});

test('fragment: decode times of consecutive chunks are contiguous', () => {
  const bytes = concat(Array.from({ length: 38 }, () => makeFrame()));
  for (const [F, S] of [[38, 1152], [42, 1152], [38, 576]]) {
    const t = (seq) => dv(find(fragment({ seq, bytes, framesPerChunk: F, samplesPerFrame: S }), ['moof', 'traf', 'tfdt'])).getBigUint64(4);
    assert.equal(t(0), 0n);
    assert.equal(t(1) - t(0), BigInt(F * S));
    assert.equal(t(1000), BigInt(1000 * F * S));
  }
});

test('fragment rejects bytes that are not whole frames', () => {
  assert.throws(() => fragment({ seq: 0, bytes: new Uint8Array(0), framesPerChunk: 38, samplesPerFrame: 1152 }), /empty/);
  assert.throws(() => fragment({ seq: 0, bytes: Uint8Array.of(1, 2, 3, 4), framesPerChunk: 38, samplesPerFrame: 1152 }));
});
