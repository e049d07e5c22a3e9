package media_test

import (
	"fmt"
	"testing"

	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/store"
)

// TestChunkSource checks that Track.Chunk is usable as a store.ChunkSource.
func TestChunkSource(t *testing.T) {
	tr, err := media.OpenFile("testdata/mpeg2_22k.mp3")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var src store.ChunkSource = tr.Chunk
	var n int64
	for seq := range tr.Manifest.Chunks {
		b, err := src(seq)
		if err != nil {
			t.Fatal(err)
		}
		n += int64(len(b))
	}
	if n != tr.Manifest.Size {
		t.Fatalf("read %d bytes, manifest says %d", n, tr.Manifest.Size)
	}
}

func ExampleOpenFile() {
	tr, err := media.OpenFile("testdata/id3v23_44k.mp3")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
	m := tr.Manifest
	fmt.Println(m.Title, "/", m.Artist, "/", m.Album)
	fmt.Println(m.SampleRate, "Hz,", m.FramesPerChunk, "frames per chunk,", len(m.Chunks), "chunks")
	first, _ := tr.Chunk(0)
	fmt.Println(len(first) == m.Chunks[0].Size)
	// Output:
	// Sine Title / Sine Artist / Sine Album
	// 44100 Hz, 38 frames per chunk, 3 chunks
	// true
}
