package media

import (
	"errors"
	"fmt"
)

// MPEG audio versions as they appear in the frame header's two version bits.
const (
	mpeg25 = 0 // MPEG-2.5 (unofficial extension)
	mpeg2  = 2 // MPEG-2 LSF
	mpeg1  = 3 // MPEG-1
)

// headerSize is the size of an MPEG audio frame header.
const headerSize = 4

// Layer III bitrates in kbit/s by bitrate index; index 0 is free format and 15 is invalid.
var (
	bitratesV1 = [16]int{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, -1}
	bitratesV2 = [16]int{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, -1}
)

// Sample rates by version and sample rate index; index 3 is reserved.
var sampleRates = [4][3]int{
	mpeg25: {11025, 12000, 8000},
	mpeg2:  {22050, 24000, 16000},
	mpeg1:  {44100, 48000, 32000},
}

// Errors of parseHeader. errFreeFormat is distinct so that callers can report it.
var (
	errNoSync       = errors.New("no frame sync")
	errNotLayer3    = errors.New("not MPEG Layer III")
	errBadVersion   = errors.New("reserved MPEG version")
	errFreeFormat   = errors.New("free-format bitrate is not supported")
	errBadBitrate   = errors.New("invalid bitrate index")
	errBadRate      = errors.New("reserved sample rate index")
	errBadEmphasis  = errors.New("reserved emphasis")
	errShortHeader  = errors.New("short frame header")
	errShortSideInf = errors.New("frame too short for its side information")
)

// frameHeader is a decoded MPEG-1/2/2.5 Layer III frame header.
type frameHeader struct {
	version     int  // mpeg1, mpeg2 or mpeg25
	protected   bool // a 16-bit CRC follows the header
	bitrate     int  // kbit/s
	sampleRate  int  // Hz
	padding     bool // one extra byte (slot)
	channelMode int  // 0 stereo, 1 joint stereo, 2 dual channel, 3 mono
	size        int  // whole frame size in bytes, header included
}

// parseHeader decodes the 4-byte frame header at the start of b.
// Only Layer III is accepted; free format is rejected with errFreeFormat.
func parseHeader(b []byte) (frameHeader, error) {
	var h frameHeader
	if len(b) < headerSize {
		return h, errShortHeader
	}
	if b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return h, errNoSync
	}
	h.version = int(b[1]>>3) & 3
	if h.version == 1 {
		return h, errBadVersion
	}
	if (b[1]>>1)&3 != 1 {
		return h, errNotLayer3
	}
	h.protected = b[1]&1 == 0
	bi := int(b[2] >> 4)
	if bi == 0 {
		return h, errFreeFormat
	}
	if bi == 15 {
		return h, errBadBitrate
	}
	si := int(b[2]>>2) & 3
	if si == 3 {
		return h, errBadRate
	}
	if b[3]&3 == 2 {
		return h, errBadEmphasis
	}
	h.padding = (b[2]>>1)&1 == 1
	h.channelMode = int(b[3] >> 6)
	h.sampleRate = sampleRates[h.version][si]
	if h.version == mpeg1 {
		h.bitrate = bitratesV1[bi]
	} else {
		h.bitrate = bitratesV2[bi]
	}
	h.size = frameSize(h.version, h.bitrate, h.sampleRate, h.padding)
	if h.size < headerSize+h.crcSize()+h.sideInfoSize() {
		return h, errShortSideInf
	}
	return h, nil
}

// frameSize is the size in bytes of a Layer III frame.
func frameSize(version, bitrateKbps, sampleRate int, padding bool) int {
	n := 144 * bitrateKbps * 1000 / sampleRate
	if version != mpeg1 {
		n = 72 * bitrateKbps * 1000 / sampleRate
	}
	if padding {
		n++
	}
	return n
}

// maxFrameSize is the largest frame size a stream of this version and sample
// rate can have (highest bitrate, padded).
func maxFrameSize(version, sampleRate int) int {
	if version == mpeg1 {
		return frameSize(version, 320, sampleRate, true)
	}
	return frameSize(version, 160, sampleRate, true)
}

// samplesPerFrame is 1152 for MPEG-1 and 576 for MPEG-2/2.5 Layer III.
func (h frameHeader) samplesPerFrame() int {
	if h.version == mpeg1 {
		return 1152
	}
	return 576
}

// channels is 1 for mono and 2 otherwise.
func (h frameHeader) channels() int {
	if h.channelMode == 3 {
		return 1
	}
	return 2
}

// crcSize is 2 when the header announces a CRC, else 0.
func (h frameHeader) crcSize() int {
	if h.protected {
		return 2
	}
	return 0
}

// sideInfoSize is the Layer III side information size in bytes.
func (h frameHeader) sideInfoSize() int {
	mono := h.channelMode == 3
	switch {
	case h.version == mpeg1 && mono:
		return 17
	case h.version == mpeg1:
		return 32
	case mono:
		return 9
	default:
		return 17
	}
}

// versionString is "1", "2" or "2.5".
func (h frameHeader) versionString() string {
	switch h.version {
	case mpeg1:
		return "1"
	case mpeg2:
		return "2"
	default:
		return "2.5"
	}
}

// consistent reports whether o can follow h in the same stream: same
// version, layer (always III here) and sample rate.
func (h frameHeader) consistent(o frameHeader) bool {
	return h.version == o.version && h.sampleRate == o.sampleRate
}

// mainDataBegin reads main_data_begin from a frame's first bytes: the first
// 9 (MPEG-1) or 8 (MPEG-2/2.5) bits of the side information, which follows
// the header and the CRC when present.
func (h frameHeader) mainDataBegin(frame []byte) (int, error) {
	off := headerSize + h.crcSize()
	if len(frame) < off+2 {
		return 0, fmt.Errorf("main_data_begin: %w", errShortSideInf)
	}
	if h.version == mpeg1 {
		return int(frame[off])<<1 | int(frame[off+1]>>7), nil
	}
	return int(frame[off]), nil
}
