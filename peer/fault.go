package peer

import (
	"fmt"
	"strings"
)

// FaultMode makes a seeding peer misbehave, to test that leechers detect,
// abandon and report it. The zero value is FaultNone.
type FaultMode int

// Fault modes.
const (
	// FaultNone serves chunks correctly.
	FaultNone FaultMode = iota
	// FaultBadBytes flips a byte in the middle of every chunk served.
	FaultBadBytes
	// FaultWrongSeq serves the bytes of chunk seq+1 (seq-1 for the last
	// chunk) labelled seq.
	FaultWrongSeq
	// FaultOversize serves every chunk as a binary message whose payload is
	// the chunk padded beyond the 64 KiB protocol limit (so also larger
	// than the chunk).
	FaultOversize
	// FaultSilent accepts pairings and requests (and says yes to have) but
	// never sends a chunk, nor done.
	FaultSilent
	// FaultLiar claims the whole track (have answers ok) but sends only the
	// even chunks of a range, then done: a holder lying about its chunks.
	FaultLiar
)

// FaultModes lists the modes that misbehave, in the order a load run
// rotates through them.
var FaultModes = []FaultMode{FaultBadBytes, FaultWrongSeq, FaultOversize, FaultSilent, FaultLiar}

var faultNames = [...]string{"none", "bad_bytes", "wrong_seq", "oversize", "silent", "liar"}

// String returns the mode's name: none, bad_bytes, wrong_seq, oversize,
// silent or liar.
func (f FaultMode) String() string {
	if f < 0 || int(f) >= len(faultNames) {
		return fmt.Sprintf("FaultMode(%d)", int(f))
	}
	return faultNames[f]
}

// ParseFaultMode parses a mode name as returned by String.
func ParseFaultMode(s string) (FaultMode, error) {
	for i, n := range faultNames {
		if strings.EqualFold(s, n) {
			return FaultMode(i), nil
		}
	}
	return FaultNone, fmt.Errorf("unknown fault mode %q (want one of %s)", s, strings.Join(faultNames[:], ", "))
}

// oversizePayload is the payload length of a FaultOversize chunk message.
const oversizePayload = 64<<10 + 1024

// faultyPayload returns what a seeder in mode f sends for chunk seq of ct,
// or nil for FaultSilent. The second result reports whether it is wrong.
func faultyPayload(f FaultMode, ct chunkSource, seq int) ([]byte, bool) {
	payload, _ := ct.Chunk(seq)
	switch f {
	case FaultBadBytes:
		payload = append([]byte(nil), payload...)
		payload[len(payload)/2] ^= 0xff
		return payload, true
	case FaultWrongSeq:
		other := seq + 1
		if other >= ct.Len() {
			other = seq - 1
		}
		wrong, held := ct.Chunk(other)
		if !held {
			// A one-chunk track, or the neighbour is not held: corrupt
			// the bytes instead.
			return faultyPayload(FaultBadBytes, ct, seq)
		}
		return wrong, true
	case FaultOversize:
		big := make([]byte, oversizePayload)
		copy(big, payload)
		return big, true
	case FaultSilent:
		return nil, true
	}
	return payload, false
}
