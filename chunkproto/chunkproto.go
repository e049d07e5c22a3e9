// Package chunkproto is the chunk protocol spoken on every "chunks"
// DataChannel, hub↔peer and peer↔peer alike: JSON text messages to request,
// cancel and finish chunk ranges and to ask whether a peer holds a track, and
// binary messages carrying one chunk each behind a fixed 21-byte header.
// docs/PROTOCOL.md is the normative description.
package chunkproto

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// Binary chunk message layout (all integers big-endian):
//
//	offset 0  kind   1 byte  KindChunk
//	offset 1  track 16 bytes raw track id (the 32 hex chars of media.Manifest.ID, decoded)
//	offset 17 seq    4 bytes uint32 chunk sequence number
//	offset 21 payload        the chunk bytes (1..MaxPayload)
const (
	// KindChunk is the first byte of a binary chunk message.
	KindChunk byte = 0x01
	// TrackIDLen is the length in bytes of a raw track id.
	TrackIDLen = 16
	// HeaderSize is the size of the binary chunk header.
	HeaderSize = 1 + TrackIDLen + 4
	// MaxPayload is the largest chunk payload a message may carry (64 KiB).
	MaxPayload = 64 << 10
	// MaxMessageSize is the largest message on a chunks DataChannel.
	MaxMessageSize = HeaderSize + MaxPayload
	// MaxTextSize is the largest JSON text message on a chunks DataChannel.
	MaxTextSize = 4 << 10
	// DataChannelLabel is the label of the DataChannel carrying this protocol.
	DataChannelLabel = "chunks"
)

// ErrMalformed is returned (wrapped) for a message that does not follow the protocol.
var ErrMalformed = errors.New("chunkproto: malformed message")

// ValidTrackID reports whether s has track id syntax: exactly 32 lowercase hex characters.
func ValidTrackID(s string) bool {
	if len(s) != 2*TrackIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Chunk is one decoded binary chunk message.
type Chunk struct {
	// Track is the track id as 32 lowercase hex characters.
	Track string
	// Seq is the chunk sequence number (media.ChunkInfo.Seq).
	Seq int
	// Data is the chunk payload. DecodeChunk makes it alias the message.
	Data []byte
}

// AppendChunk appends the binary chunk message for (track, seq, payload) to dst.
func AppendChunk(dst []byte, track string, seq int, payload []byte) ([]byte, error) {
	if !ValidTrackID(track) {
		return dst, fmt.Errorf("encode chunk: track id %q: %w", track, ErrMalformed)
	}
	if seq < 0 || uint64(seq) > 0xFFFFFFFF {
		return dst, fmt.Errorf("encode chunk: seq %d out of range: %w", seq, ErrMalformed)
	}
	if len(payload) == 0 || len(payload) > MaxPayload {
		return dst, fmt.Errorf("encode chunk: payload of %d bytes (want 1..%d): %w", len(payload), MaxPayload, ErrMalformed)
	}
	var raw [TrackIDLen]byte
	if _, err := hex.Decode(raw[:], []byte(track)); err != nil {
		return dst, fmt.Errorf("encode chunk: track id: %w", ErrMalformed)
	}
	dst = append(dst, KindChunk)
	dst = append(dst, raw[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(seq))
	return append(dst, payload...), nil
}

// EncodeChunk returns the binary chunk message for (track, seq, payload).
func EncodeChunk(track string, seq int, payload []byte) ([]byte, error) {
	return AppendChunk(make([]byte, 0, HeaderSize+len(payload)), track, seq, payload)
}

// DecodeChunk parses a binary chunk message. The returned Data aliases msg.
func DecodeChunk(msg []byte) (Chunk, error) {
	if len(msg) <= HeaderSize {
		return Chunk{}, fmt.Errorf("decode chunk: %d bytes, need more than %d: %w", len(msg), HeaderSize, ErrMalformed)
	}
	if msg[0] != KindChunk {
		return Chunk{}, fmt.Errorf("decode chunk: unknown kind 0x%02x: %w", msg[0], ErrMalformed)
	}
	if len(msg)-HeaderSize > MaxPayload {
		return Chunk{}, fmt.Errorf("decode chunk: payload of %d bytes exceeds %d: %w", len(msg)-HeaderSize, MaxPayload, ErrMalformed)
	}
	seq := binary.BigEndian.Uint32(msg[1+TrackIDLen : HeaderSize])
	if uint64(seq) > uint64(maxInt) {
		return Chunk{}, fmt.Errorf("decode chunk: seq %d: %w", seq, ErrMalformed)
	}
	return Chunk{
		Track: hex.EncodeToString(msg[1 : 1+TrackIDLen]),
		Seq:   int(seq),
		Data:  msg[HeaderSize:],
	}, nil
}

const maxInt = int(^uint(0) >> 1)
