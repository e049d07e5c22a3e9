package hub

import (
	"testing"

	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/signaling"
)

// BenchmarkRange streams a 3.2 MiB range (200 chunks of 16 KiB) from the hub
// to one peer over loopback, both Pion stacks in this process.
func BenchmarkRange(b *testing.B) {
	tr := bigTrack(60)
	st := openStore(b, tr)
	_, url := testHub(b, Config{}, st)
	c := connect(b, url, clientAPI(), signaling.Hello{})
	b.SetBytes(tr.m.Size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.dcSend(chunkproto.Request{ID: uint32(i), Track: tr.id(), From: 0, To: len(tr.chunks)})
		for range tr.chunks {
			c.nextChunk()
		}
		if m := c.nextText(); m != (chunkproto.Done{ID: uint32(i)}) {
			b.Fatalf("got %#v", m)
		}
	}
}
