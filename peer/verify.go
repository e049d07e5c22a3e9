package peer

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/ztream/ztream/media"
)

// VerifyChunk reports whether data is chunk seq of m: right size and SHA-256.
func VerifyChunk(m *media.Manifest, seq int, data []byte) bool {
	if seq < 0 || seq >= len(m.Chunks) || len(data) != m.Chunks[seq].Size {
		return false
	}
	sum := sha256.Sum256(data)
	want := m.Chunks[seq].SHA256
	if len(want) != 2*sha256.Size {
		return false
	}
	var w [sha256.Size]byte
	if _, err := hex.Decode(w[:], []byte(want)); err != nil {
		return false
	}
	return sum == w
}
