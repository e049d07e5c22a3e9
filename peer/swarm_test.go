package peer

import (
	"testing"
	"time"

	"github.com/ztream/ztream/hub/hubtest"
)

// TestPartialHolderServes: a peer serves the chunks of a track it is still
// downloading: a second listener gets chunks from it before it holds the
// whole track (PROTOCOL.md §8.1).
func TestPartialHolderServes(t *testing.T) {
	t.Parallel()
	env := newTestEnvWith(t, 1, 80, nil)
	m := env.tracks[0]
	// A asks the hub only 8 s ahead of its playhead: it is still downloading
	// (for about 20 s) when B starts, however fast the hub and the machine are.
	a := env.peer(func(c *Config) { c.Speed = 4; c.Sched.FirstCopyAheadMS = 8000 })
	outA := playAsync(a, m.ID)
	hubtest.WaitFor(t, 10*time.Second, "A to hold a few chunks", func() bool { return a.Stats().ServerBytes > 8*4000 })
	b := env.peer(func(c *Config) { c.Speed = 4 })
	outB := playAsync(b, m.ID)
	hubtest.WaitFor(t, 20*time.Second, "B to get chunks from A", func() bool { return b.Stats().P2PBytes > 0 })
	if _, complete := a.Cache().Peek(m.ID); complete {
		t.Fatal("A completed the track before B got a chunk from it: the test proves nothing")
	}
	for _, out := range []<-chan playOut{outA, outB} {
		r := <-out
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.res.Stalls != 0 || !r.res.Complete {
			t.Errorf("%+v", r.res)
		}
	}
	if up := a.Stats().UploadedBytes; up == 0 {
		t.Error("A uploaded nothing")
	}
}

// TestFlashCrowdSharesFirstCopies: peers starting one cold track together
// take most of it from each other: the hub sends each chunk to about one of
// them (first copies), and playbacks use several sources. Without the swarm
// the hub would send 4 copies; the bound leaves room for a loaded machine
// (emergency fetches while links connect), not for a broken swarm.
func TestFlashCrowdSharesFirstCopies(t *testing.T) {
	t.Parallel()
	env := newTestEnvWith(t, 1, 60, nil)
	m := env.tracks[0]
	const n = 4
	peers := make([]*Peer, n)
	for i := range peers {
		peers[i] = env.peer(func(c *Config) { c.Speed = 4 })
	}
	outs := make([]<-chan playOut, n)
	for i, p := range peers {
		outs[i] = playAsync(p, m.ID)
	}
	var server, sources int64
	maxSources := 0
	for _, out := range outs {
		r := <-out
		if r.err != nil {
			t.Fatal(r.err)
		}
		if !r.res.Complete || r.res.Stalls != 0 || r.res.CorruptAccepted != 0 {
			t.Errorf("%+v", r.res)
		}
		server += r.res.ServerBytes
		sources += int64(r.res.Sources)
		maxSources = max(maxSources, r.res.Sources)
		t.Logf("server %d p2p %d sources %d start from peer %v", r.res.ServerBytes, r.res.P2PBytes, r.res.Sources, r.res.StartFromPeer)
	}
	copies := float64(server) / float64(m.Size)
	t.Logf("server copies %.2f, sources per playback %.1f", copies, float64(sources)/n)
	if copies >= 2.5 {
		t.Errorf("the hub sent %.2f copies of the track to %d peers starting together", copies, n)
	}
	if maxSources < 2 {
		t.Errorf("no playback used several sources (max %d)", maxSources)
	}
}
