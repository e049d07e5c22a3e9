// Package demo bundles three generated demo tracks, so that a fresh Ztream
// hub has music to stream before anyone uploads any. The tracks are MP3,
// 44.1 kHz stereo, 128 kbit/s CBR, encoded without the bit reservoir
// (LAME --nores) so every chunk of whole frames decodes on its own, with
// ID3v2 tags (title, artist, album, track number, year).
//
// They are synthesized by demo/generate; see README.md to regenerate them.
package demo

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed tracks/*.mp3
var tracks embed.FS

// tracksDir is the directory of the MP3 files inside the embedded tree.
const tracksDir = "tracks"

// Tracks returns a read-only file system holding the demo MP3 files at its
// root, named as listed by Names.
func Tracks() fs.FS {
	sub, err := fs.Sub(tracks, tracksDir)
	if err != nil {
		// fs.Sub fails only for an invalid path; tracksDir is a valid constant.
		panic(fmt.Sprintf("demo: sub %q: %v", tracksDir, err))
	}
	return sub
}

// Names returns the file names of the demo tracks in Tracks, in album order.
// The returned slice is new on every call.
func Names() []string {
	return []string{
		"01-handshake-at-dawn.mp3",
		"02-lanterns-on-the-mesh.mp3",
		"03-chunk-runner.mp3",
	}
}
