package media

import "encoding/binary"

// vbrHeader is what the first frame of a stream may carry instead of audio:
// a Xing/Info header (LAME, ffmpeg, ...), optionally with a LAME extension,
// or a Fraunhofer VBRI header. Such a frame decodes to silence and is not
// counted as an audio frame.
type vbrHeader struct {
	kind    string // "Xing", "Info" or "VBRI"
	frames  int    // frame count announced by the header, -1 when absent
	lame    bool   // a LAME extension with delay and padding was found
	delay   int    // encoder delay in samples (LAME extension)
	padding int    // encoder padding in samples (LAME extension)
}

// parseVBRHeader looks for a Xing/Info or VBRI header in frame, whose
// decoded header is h. The Xing tag sits right after the side information.
// In a CRC-protected frame LAME 3.100 (lame -p) places it as if there were
// no CRC (see the crc_44k fixture); the position after the CRC is tried
// first, for encoders that count it. VBRI sits 32 bytes after the header.
func parseVBRHeader(h frameHeader, frame []byte) (vbrHeader, bool) {
	offs := []int{headerSize + h.crcSize() + h.sideInfoSize()}
	if h.protected {
		offs = append(offs, headerSize+h.sideInfoSize())
	}
	for _, off := range offs {
		if v, ok := parseXing(frame, off); ok {
			return v, true
		}
	}
	if off := headerSize + 32; len(frame) >= off+18 && string(frame[off:off+4]) == "VBRI" {
		return vbrHeader{kind: "VBRI", frames: int(binary.BigEndian.Uint32(frame[off+14 : off+18]))}, true
	}
	return vbrHeader{}, false
}

// parseXing parses a Xing/Info header at frame[off:] and its LAME extension:
// 9 bytes of encoder version ("LAME3.100", or "Lavf"/"Lavc" for ffmpeg),
// then at +21 two 12-bit values, encoder delay and padding.
func parseXing(frame []byte, off int) (vbrHeader, bool) {
	if len(frame) < off+8 {
		return vbrHeader{}, false
	}
	kind := string(frame[off : off+4])
	if kind != "Xing" && kind != "Info" {
		return vbrHeader{}, false
	}
	v := vbrHeader{kind: kind, frames: -1}
	flags := binary.BigEndian.Uint32(frame[off+4 : off+8])
	p := off + 8
	if flags&1 != 0 {
		if len(frame) < p+4 {
			return v, true
		}
		v.frames = int(binary.BigEndian.Uint32(frame[p : p+4]))
		p += 4
	}
	if flags&2 != 0 { // byte count
		p += 4
	}
	if flags&4 != 0 { // seek table
		p += 100
	}
	if flags&8 != 0 { // quality
		p += 4
	}
	if len(frame) < p+24 {
		return v, true
	}
	enc := string(frame[p : p+4])
	if enc == "LAME" || enc == "Lavf" || enc == "Lavc" {
		d := frame[p+21 : p+24]
		v.lame = true
		v.delay = int(d[0])<<4 | int(d[1])>>4
		v.padding = int(d[1]&0x0F)<<8 | int(d[2])
	}
	return v, true
}
