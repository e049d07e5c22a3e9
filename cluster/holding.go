package cluster

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/signaling"
)

// A holding is one bucket entry: key "<hub>.<peer>.<track>", value the
// peer's upload cap and which chunks of the track it holds.
type holding struct {
	UploadCap int `json:"cap"`
	// Chunks is the track's chunk count; Bits the bitfield of those held
	// (bit i is byte i/8, most significant bit first). No Bits: all.
	Chunks int    `json:"chunks,omitempty"`
	Bits   []byte `json:"bits,omitempty"`
}

// maxHoldingBytes bounds an entry's value: the largest bitfield in base64
// and the rest.
const maxHoldingBytes = (signaling.MaxChunks/8)*4/3 + 256

// holdingKey returns the bucket key of peer's holding of track.
func holdingKey(hub, peer, track string) string { return hub + "." + peer + "." + track }

// parseHoldingKey splits and checks a bucket key.
func parseHoldingKey(key string) (hub, peer, track string, err error) {
	parts := strings.Split(key, ".")
	if len(parts) != 3 || !ValidHubID(parts[0]) || !ValidPeerID(parts[1]) || !chunkproto.ValidTrackID(parts[2]) {
		return "", "", "", fmt.Errorf("holding key %q: %w", key, errBadMessage)
	}
	return parts[0], parts[1], parts[2], nil
}

// decodeHolding parses and checks an entry's value.
func decodeHolding(data []byte) (holding, error) {
	var h holding
	if len(data) > maxHoldingBytes {
		return h, fmt.Errorf("holding of %d bytes: %w", len(data), errBadMessage)
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return h, fmt.Errorf("holding: %w: %w", errBadMessage, err)
	}
	if h.UploadCap < 1 || h.UploadCap > signaling.MaxUploadCap {
		return h, fmt.Errorf("holding: cap %d: %w", h.UploadCap, errBadMessage)
	}
	if h.Bits != nil && (h.Chunks < 1 || h.Chunks > signaling.MaxChunks || len(h.Bits) != (h.Chunks+7)/8) {
		return h, fmt.Errorf("holding: %d chunks in %d bytes: %w", h.Chunks, len(h.Bits), errBadMessage)
	}
	return h, nil
}
