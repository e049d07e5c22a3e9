package synth

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// WriteWAV writes s as a 16-bit stereo PCM WAV file at SampleRate. Samples
// are rounded to the nearest step and clamped to the 16-bit range.
func WriteWAV(w io.Writer, s *Stereo) error {
	const (
		channels      = 2
		bitsPerSample = 16
		blockAlign    = channels * bitsPerSample / 8
	)
	dataSize := s.Len() * blockAlign
	if dataSize > math.MaxUint32-36 {
		return fmt.Errorf("write wav: %d frames is too long for a WAV file", s.Len())
	}
	header := []any{
		[4]byte{'R', 'I', 'F', 'F'}, uint32(36 + dataSize), [4]byte{'W', 'A', 'V', 'E'},
		[4]byte{'f', 'm', 't', ' '}, uint32(16), uint16(1), uint16(channels),
		uint32(SampleRate), uint32(SampleRate * blockAlign), uint16(blockAlign), uint16(bitsPerSample),
		[4]byte{'d', 'a', 't', 'a'}, uint32(dataSize),
	}
	for _, field := range header {
		if err := binary.Write(w, binary.LittleEndian, field); err != nil {
			return fmt.Errorf("write wav header: %w", err)
		}
	}
	data := make([]byte, dataSize)
	for i := range s.L {
		binary.LittleEndian.PutUint16(data[4*i:], uint16(toInt16(s.L[i])))
		binary.LittleEndian.PutUint16(data[4*i+2:], uint16(toInt16(s.R[i])))
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("write wav data: %w", err)
	}
	return nil
}

// toInt16 converts a sample in [-1, 1] to 16-bit PCM.
func toInt16(x float64) int16 {
	v := math.Round(x * math.MaxInt16)
	return int16(math.Max(math.MinInt16, math.Min(math.MaxInt16, v)))
}
