package media

import (
	"errors"
	"fmt"
	"io"
)

// windowSize is the read-ahead buffer of a window: every read of the
// analyzer goes through it, so the memory used by Analyze does not depend on
// the file size.
const windowSize = 256 << 10

// errPastEnd is returned by window.at when the requested bytes extend past
// the end of the input.
var errPastEnd = errors.New("past end of input")

// window is a forward-moving read buffer over an io.ReaderAt.
type window struct {
	r    io.ReaderAt
	size int64
	buf  []byte
	off  int64 // input offset of buf[0]
	n    int   // valid bytes in buf
}

func newWindow(r io.ReaderAt, size int64) *window {
	n := windowSize
	if size < int64(n) {
		n = max(int(size), headerSize)
	}
	return &window{r: r, size: size, buf: make([]byte, n)}
}

// at returns n bytes at offset off, valid until the next call. It fails with
// errPastEnd when [off, off+n) is not inside the input or n exceeds the
// window (windowSize, or the input size when smaller).
func (w *window) at(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || n > len(w.buf) || off > w.size || int64(n) > w.size-off {
		return nil, errPastEnd
	}
	if off >= w.off && off+int64(n) <= w.off+int64(w.n) {
		s := int(off - w.off)
		return w.buf[s : s+n], nil
	}
	want := len(w.buf)
	if rest := w.size - off; rest < int64(want) {
		want = int(rest)
	}
	got, err := w.r.ReadAt(w.buf[:want], off)
	if got < n {
		w.n = 0
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read %d bytes at offset %d: %w", n, off, err)
	}
	w.off, w.n = off, got
	return w.buf[:n], nil
}

// avail returns the bytes from off to the end of the buffered window (at
// least one byte, filling the window if needed), for fast scanning.
func (w *window) avail(off int64) ([]byte, error) {
	if _, err := w.at(off, 1); err != nil {
		return nil, err
	}
	return w.buf[off-w.off : w.n], nil
}
