package chunkproto

import (
	"encoding/base64"
	"fmt"
)

// MaxChunks bounds a track's chunk count in a bitfield (media's manifest
// limit: 2^17 chunks of about one second).
const MaxChunks = 1 << 17

// EncodeBitfield returns the standard base64 of the bitfield of present:
// bit i is byte i/8, most significant bit first; the unused bits of the last
// byte are zero.
func EncodeBitfield(present []bool) string {
	b := make([]byte, (len(present)+7)/8)
	for i, ok := range present {
		if ok {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeBitfield decodes the bitfield s of n chunks (as EncodeBitfield writes
// it): its length must be (n+7)/8 bytes and its unused bits zero. Errors wrap
// ErrMalformed.
func DecodeBitfield(s string, n int) ([]byte, error) {
	if n <= 0 || n > MaxChunks {
		return nil, fmt.Errorf("bitfield: %d chunks outside 1..%d: %w", n, MaxChunks, ErrMalformed)
	}
	if base64.StdEncoding.DecodedLen(len(s)) > (n+7)/8+2 {
		return nil, fmt.Errorf("bitfield: %d characters for %d chunks: %w", len(s), n, ErrMalformed)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bitfield: not base64: %w", ErrMalformed)
	}
	if len(b) != (n+7)/8 {
		return nil, fmt.Errorf("bitfield: %d bytes for %d chunks: %w", len(b), n, ErrMalformed)
	}
	if tail := n % 8; tail != 0 && b[len(b)-1]&(0xff>>tail) != 0 {
		return nil, fmt.Errorf("bitfield: bits set past chunk %d: %w", n, ErrMalformed)
	}
	return b, nil
}

// BitfieldFlags expands a decoded bitfield of n chunks into one flag per chunk.
func BitfieldFlags(b []byte, n int) []bool {
	f := make([]bool, n)
	for i := range f {
		f[i] = b[i/8]&(0x80>>(i%8)) != 0
	}
	return f
}

// Holding says which chunks of Track the sender holds and may serve, as a
// bitfield of Chunks bits (EncodeBitfield). A peer sends it to the hub (on
// the WebSocket) and to the peers that asked it have for Track (on their
// DataChannel) as its chunks arrive, at most every HoldingIntervalMS per
// track and destination.
type Holding struct {
	Track  string `json:"track"`
	Chunks int    `json:"chunks"`
	Have   string `json:"have"`
}

// HoldingIntervalMS is the shortest time (real milliseconds) between two
// holding messages of one track to one destination.
const HoldingIntervalMS = 100

// NewHolding encodes the chunks present of track.
func NewHolding(track string, present []bool) Holding {
	return Holding{Track: track, Chunks: len(present), Have: EncodeBitfield(present)}
}

// MessageType implements Message.
func (Holding) MessageType() string { return TypeHolding }

// Validate checks the track id and the bitfield against Chunks.
func (h Holding) Validate() error {
	_, err := h.Bits()
	return err
}

// Bits checks and decodes the bitfield of h.
func (h Holding) Bits() ([]byte, error) {
	if !ValidTrackID(h.Track) {
		return nil, fmt.Errorf("holding: track id %.70q: %w", h.Track, ErrMalformed)
	}
	b, err := DecodeBitfield(h.Have, h.Chunks)
	if err != nil {
		return nil, fmt.Errorf("holding of %s: %w", h.Track, err)
	}
	return b, nil
}
