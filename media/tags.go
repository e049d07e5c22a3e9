package media

import (
	"encoding/binary"
)

// maxTagLoops bounds how many consecutive tags are skipped at either end.
const maxTagLoops = 64

// syncsafe decodes a 4-byte ID3v2 syncsafe integer (7 bits per byte).
func syncsafe(b []byte) (int64, bool) {
	var v int64
	for _, c := range b[:4] {
		if c&0x80 != 0 {
			return 0, false
		}
		v = v<<7 | int64(c)
	}
	return v, true
}

// id3v2Size returns the total size of the ID3v2 tag (v2.2, v2.3 or v2.4)
// whose 10-byte header is b: header + syncsafe size + footer (v2.4 flag 0x10).
// The extended header and unsynchronised data are inside the declared size,
// so they need no special handling to skip the tag.
func id3v2Size(b []byte) (int64, bool) {
	if len(b) < 10 || string(b[:3]) != "ID3" || b[3] < 2 || b[3] > 4 || b[4] == 0xFF {
		return 0, false
	}
	n, ok := syncsafe(b[6:10])
	if !ok {
		return 0, false
	}
	n += 10
	if b[3] == 4 && b[5]&0x10 != 0 {
		n += 10
	}
	return n, true
}

// apeSize returns the size of an APE tag (v1 or v2) given its 32-byte header
// or footer b: the declared size (items + footer) plus 32 when a header is
// present. isHeader reports whether b itself is the header.
func apeSize(b []byte) (total int64, isHeader, ok bool) {
	if len(b) < 32 || string(b[:8]) != "APETAGEX" {
		return 0, false, false
	}
	ver := binary.LittleEndian.Uint32(b[8:12])
	if ver != 1000 && ver != 2000 {
		return 0, false, false
	}
	size := int64(binary.LittleEndian.Uint32(b[12:16]))
	flags := binary.LittleEndian.Uint32(b[20:24])
	if size < 32 {
		return 0, false, false
	}
	isHeader = flags&(1<<29) != 0
	if flags&(1<<31) != 0 || isHeader {
		size += 32
	}
	return size, isHeader, true
}

// skipLeadingTags returns the offset of the first byte after the ID3v2 and
// APE tags that start at off (repeated tags are all skipped). The result is
// at most w.size.
func skipLeadingTags(w *window, off int64) int64 {
	for range maxTagLoops {
		b, err := w.at(off, 10)
		if err != nil {
			return off
		}
		if n, ok := id3v2Size(b); ok {
			off = min(off+n, w.size)
			continue
		}
		if b, err := w.at(off, 32); err == nil {
			if n, isHeader, ok := apeSize(b); ok && isHeader {
				off = min(off+n, w.size)
				continue
			}
		}
		return off
	}
	return off
}

// trimTrailingTags returns the end of the audio region [start, end): end
// moved before any ID3v1 (and TAG+), APE, Lyrics3v2 and appended ID3v2 (with a
// footer) tags found at the end, in any order.
func trimTrailingTags(w *window, start, end int64) int64 {
	has := func(off int64, s string) bool {
		if off < start {
			return false
		}
		b, err := w.at(off, len(s))
		return err == nil && string(b) == s
	}
	for range maxTagLoops {
		switch {
		case has(end-128, "TAG"):
			end -= 128
			if has(end-227, "TAG+") {
				end -= 227
			}
			continue
		case has(end-32, "APETAGEX"):
			b, _ := w.at(end-32, 32)
			if n, isHeader, ok := apeSize(b); ok && !isHeader && n <= end-start {
				end -= n
				continue
			}
		case has(end-9, "LYRICS200"):
			b, _ := w.at(end-15, 6)
			if n, ok := decimal(b); ok && has(end-15-n, "LYRICSBEGIN") {
				end -= 15 + n
				continue
			}
		case has(end-10, "3DI"):
			b, _ := w.at(end-10, 10)
			if n, ok := syncsafe(b[6:10]); ok && b[3] == 4 {
				total := n + 20
				if has(end-total, "ID3") {
					end -= total
					continue
				}
			}
		}
		return end
	}
	return end
}

// decimal parses ASCII digits.
func decimal(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}
