package media

import (
	"bytes"
	"encoding/binary"
	"time"
)

// EstimateDuration tells the duration of an audio file from its first bytes
// (head) and its whole size, without the rest: an MP3's from the frame count
// of its Xing/Info/VBRI header, else from its first frame's bitrate (exact
// for constant bitrate); a FLAC's from the sample count of its STREAMINFO.
// ok is false when the head does not tell (another format, no frame found).
// The catalog of an HTTP origin shows it until a track's first play.
func EstimateDuration(head []byte, size int64) (d time.Duration, ok bool) {
	defer func() {
		if recover() != nil {
			d, ok = 0, false // a head the parsers did not expect
		}
	}()
	if len(head) >= 42 && string(head[:4]) == "fLaC" {
		return flacDuration(head)
	}
	a := analyzer{w: newWindow(bytes.NewReader(head), int64(len(head))), name: "head"}
	a.audioStart = skipLeadingTags(a.w, 0)
	a.audioEnd = int64(len(head))
	off, h, found, err := a.find(a.audioStart, maxSyncSearch, nil)
	if err != nil || !found || h.sampleRate <= 0 {
		return 0, false
	}
	spf := int64(h.samplesPerFrame())
	if off+int64(h.size) <= int64(len(head)) {
		if v, isVBR := parseVBRHeader(h, head[off:off+int64(h.size)]); isVBR && v.frames > 0 {
			samples := int64(v.frames)*spf - int64(v.delay) - int64(v.padding)
			return seconds(float64(samples) / float64(h.sampleRate))
		}
	}
	if h.bitrate <= 0 || size <= off {
		return 0, false
	}
	return seconds(float64(size-off) * 8 / float64(h.bitrate*1000))
}

// maxEstimate bounds a duration told by a header: anything longer is a
// broken or hostile header.
const maxEstimate = 100 * time.Hour

// seconds converts s to a Duration, ok when 0 < s <= maxEstimate.
func seconds(s float64) (time.Duration, bool) {
	d := time.Duration(s * float64(time.Second))
	if s <= 0 || s > maxEstimate.Seconds() {
		return 0, false
	}
	return d, true
}

// flacDuration reads STREAMINFO, the first metadata block of a FLAC: its
// 20-bit sample rate and 36-bit total samples (0: unknown).
func flacDuration(b []byte) (time.Duration, bool) {
	if b[4]&0x7f != 0 { // block type 0 is STREAMINFO
		return 0, false
	}
	si := b[8:42]
	rate := int64(binary.BigEndian.Uint32(si[10:14]) >> 12)
	total := int64(si[13]&0x0f)<<32 | int64(binary.BigEndian.Uint32(si[14:18]))
	if rate <= 0 || total <= 0 {
		return 0, false
	}
	return seconds(float64(total) / float64(rate))
}
