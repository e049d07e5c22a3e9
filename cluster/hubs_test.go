package cluster_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ztream/ztream/cluster"
	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/internal/natstest"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/peer"
)

type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// testHub is one hub of a test cluster.
type testHub struct {
	id  string
	srv *hubtest.Server
	spy *hubtest.Spy
	c   *cluster.Cluster
}

// startHubs starts n hubs joined through NATS at urls, each with its own
// store of the same tracks (track ids are content hashes: they agree).
func startHubs(t *testing.T, urls string, n int, tracks []*testtrack.Track) []*testHub {
	t.Helper()
	out := make([]*testHub, n)
	for i := range n {
		id := string(rune('a'+i)) + "-hub"
		c, err := cluster.New(cluster.Config{URLs: urls, HubID: id, Heartbeat: 250 * time.Millisecond, HubTimeout: 1500 * time.Millisecond, Logger: logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		spy := hubtest.NewSpy()
		srv := hubtest.New(t, hub.Config{Cluster: c, Metrics: spy, Logger: logger(t)}, hubtest.WithTracks(tracks...))
		out[i] = &testHub{id: id, srv: srv, spy: spy, c: c}
	}
	for _, h := range out {
		hubtest.WaitFor(t, 10*time.Second, h.id+" to see the other hubs", func() bool {
			s := h.c.State()
			return s.Synced && len(s.Hubs) == n-1
		})
	}
	return out
}

// dial connects a Go peer to the hubs at urls (it moves to the next when
// its hub goes away).
func dial(t *testing.T, st peer.ManifestSource, speed float64, urls ...string) *peer.Peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p, err := peer.Dial(ctx, peer.Config{HubURL: urls[0], HubURLs: urls, Manifests: st, Speed: speed, ICELoopback: true,
		Logger: logger(t), StatsInterval: -1, ReconnectMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func play(t *testing.T, p *peer.Peer, id string) peer.PlaybackResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := p.Play(ctx, id)
	if err != nil {
		t.Fatalf("Play: %v", err)
	}
	t.Logf("%s: %+v", p.ID(), res)
	return res
}

// TestCrossHubTransfer: a leecher on hub B gets a track from a seeder on
// hub A: hub B's tracker finds the seeder through the cluster, hub A asks
// it and pairs it, the two peers' signals cross the hubs, and the track
// comes whole, mostly from the peer.
func TestCrossHubTransfer(t *testing.T) {
	srv := natstest.Start(t)
	tracks := testtrack.List(1, 40)
	hubs := startHubs(t, srv.URL, 2, tracks)
	m := testtrack.Manifests(tracks...)[0]
	a := dial(t, hubs[0].srv.Store, 20, hubs[0].srv.URL)
	if res := play(t, a, m.ID); !res.Complete {
		t.Fatalf("seeder's playback: %+v", res)
	}
	hubtest.WaitFor(t, 5*time.Second, "hub B to know the seeder", func() bool { return hubs[1].c.State().RemotePeers == 1 })
	b := dial(t, hubs[1].srv.Store, 20, hubs[1].srv.URL)
	res := play(t, b, m.ID)
	if !res.Complete || res.Stalls != 0 || res.CorruptAccepted != 0 {
		t.Fatalf("leecher's playback: %+v", res)
	}
	if res.P2PBytes <= res.ServerBytes {
		t.Errorf("p2p %d bytes <= server %d bytes: the cross-hub seeder did not serve", res.P2PBytes, res.ServerBytes)
	}
	if n := hubs[1].spy.Counts().CrossHub; n == 0 {
		t.Error("hub B counted no cross-hub pair")
	}
	if up := a.Stats().UploadedBytes; up < res.P2PBytes {
		t.Errorf("seeder uploaded %d bytes, leecher got %d", up, res.P2PBytes)
	}
}

// TestHubKilledMidPlayback: the seeder's hub goes away while a leecher on
// another hub streams from it: the peers of the dead hub reconnect to the
// others, the pairs with them end cleanly, and the leecher's playback
// completes without a stall (from its buffer, the hub and peers).
func TestHubKilledMidPlayback(t *testing.T) {
	srv := natstest.Start(t)
	tracks := testtrack.List(1, 80)
	hubs := startHubs(t, srv.URL, 2, tracks)
	m := testtrack.Manifests(tracks...)[0]
	a := dial(t, hubs[0].srv.Store, 40, hubs[0].srv.URL, hubs[1].srv.URL)
	if res := play(t, a, m.ID); !res.Complete {
		t.Fatalf("seeder's playback: %+v", res)
	}
	hubtest.WaitFor(t, 5*time.Second, "hub B to know the seeder", func() bool { return hubs[1].c.State().RemotePeers == 1 })
	b := dial(t, hubs[1].srv.Store, 4, hubs[1].srv.URL)
	out := make(chan peer.PlaybackResult, 1)
	go func() { out <- play(t, b, m.ID) }()
	hubtest.WaitFor(t, 20*time.Second, "the leecher to stream from the seeder", func() bool { return b.Stats().P2PBytes > 4*4000 })
	hubs[0].srv.Close()
	res := <-out
	if !res.Complete || res.Stalls != 0 {
		t.Fatalf("leecher's playback across the hub's loss: %+v", res)
	}
	// The seeder moved to the hub left.
	hubtest.WaitFor(t, 10*time.Second, "the seeder on hub B", func() bool { return hubs[1].srv.Hub.Peers() == 2 })
	if st := a.Stats(); st.Failovers != 1 {
		t.Errorf("seeder failovers %d, want 1", st.Failovers)
	}
}

// TestNATSNodeLoss: with a 3-node NATS cluster, killing the node two hubs
// use changes nothing visible: they reconnect to another node and a
// leecher on one still gets the track from a seeder on the other.
func TestNATSNodeLoss(t *testing.T) {
	nodes := natstest.Cluster(t, 3)
	tracks := testtrack.List(2, 40)
	hubs := startHubs(t, natstest.URLs(nodes), 2, tracks)
	ms := testtrack.Manifests(tracks...)
	a := dial(t, hubs[0].srv.Store, 20, hubs[0].srv.URL)
	for _, m := range ms {
		if res := play(t, a, m.ID); !res.Complete {
			t.Fatalf("seeder's playback: %+v", res)
		}
	}
	hubtest.WaitFor(t, 5*time.Second, "hub B to know the seeder's two tracks", func() bool { return hubs[1].c.State().RemoteHoldings == 2 })
	// Kill the node hub A is connected to.
	used := hubs[0].c.State().Server
	for _, n := range nodes {
		if n.URL == used {
			n.Stop()
		}
	}
	hubtest.WaitFor(t, 10*time.Second, "hub A on another node", func() bool {
		s := hubs[0].c.State()
		return s.Connected && s.Server != used
	})
	// Hub B still knows the seeder, and a leecher there gets the track
	// from it.
	if s := hubs[1].c.State(); s.RemoteHoldings != 2 || len(s.Hubs) != 1 {
		t.Fatalf("hub B's view after the node died: %+v", s)
	}
	b := dial(t, hubs[1].srv.Store, 20, hubs[1].srv.URL)
	for _, m := range ms {
		res := play(t, b, m.ID)
		if !res.Complete || res.Stalls != 0 || res.P2PBytes <= res.ServerBytes {
			t.Fatalf("leecher's playback after a NATS node died: %+v; hub B lookups %v, view %+v; hub A view %+v",
				res, hubs[1].spy.Counts().Lookups, hubs[1].c.State(), hubs[0].c.State())
		}
	}
}
