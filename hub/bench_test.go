package hub_test

import (
	"testing"

	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/signaling"
)

// BenchmarkRange streams a 3.2 MiB range (200 chunks of 16 KiB) from the hub
// to one peer over loopback, both Pion stacks in this process.
func BenchmarkRange(b *testing.B) {
	tr := bigTrack(60)
	url := hubtest.New(b, hub.Config{}, hubtest.WithTracks(tr)).WSURL
	c := connect(b, url, clientAPI(), signaling.Hello{})
	b.SetBytes(tr.Manifest.Size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.dcSend(chunkproto.Request{ID: uint32(i), Track: tr.ID(), From: 0, To: tr.Len()})
		for range tr.Len() {
			c.nextChunk()
		}
		if m := c.nextText(); m != (chunkproto.Done{ID: uint32(i)}) {
			b.Fatalf("got %#v", m)
		}
	}
}
