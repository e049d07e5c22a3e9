package testtool

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that a process, a logger or a server goroutine
// may write while the test reads it. With Max > 0 it keeps at most about Max
// bytes: writes once it holds Max are dropped (a bounded log).
type Buffer struct {
	Max int

	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p (or drops it, past Max).
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Max > 0 && b.buf.Len() > b.Max {
		return len(p), nil
	}
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
