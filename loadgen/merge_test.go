package loadgen

import (
	"slices"
	"testing"
	"time"

	"github.com/ztream/ztream/peer"
)

// TestMerge: the report of a split run equals the one computed from all the
// shards' raw results together.
func TestMerge(t *testing.T) {
	play := func(track string, server, p2p int64, sources int, fromPeer bool) ShardResult {
		return ShardResult{Result: peer.PlaybackResult{Track: track, Complete: true, StartLatency: 10 * time.Millisecond,
			ServerBytes: server, P2PBytes: p2p, Sources: sources, StartFromPeer: fromPeer}}
	}
	a := Report{Tracks: 2, Speed: 1, P2P: true, WallSeconds: 10, Shard: &Shard{
		Results: []ShardResult{play("t1", 100, 0, 0, false), play("t2", 50, 150, 2, true)},
		Totals:  PeerTotals{Uploaded: 150, Reports: 1, Reconnects: 2, Failovers: 1, PairsOpened: 3, PairsFailed: 1, PairFailures: peer.PairFailures{Timeout: 1}}, Sizes: map[string]int64{"t1": 100, "t2": 200},
	}}
	b := Report{Tracks: 2, Speed: 1, P2P: true, WallSeconds: 12, Shard: &Shard{
		Results: []ShardResult{play("t1", 0, 100, 1, true), {Result: peer.PlaybackResult{Track: "t2"}, Err: "boom"}},
		Totals:  PeerTotals{Uploaded: 100, Reconnects: 1, Failovers: 1, PairsOpened: 2, PairsFailed: 2, PairFailures: peer.PairFailures{Timeout: 1, Remote: 1}}, Failed: 1, Sizes: map[string]int64{"t1": 100, "t2": 200},
	}}
	rep, err := Merge(Config{Peers: 4, Server: "http://a,http://b"}, []Report{a, b}, &HubReports{ReportsAccepted: 1, CrossHubPairs: 7})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Playbacks != 4 || rep.PlaybackErrors != 1 || rep.PlaybacksComplete != 3 || rep.PeersFailed != 1 || rep.Procs != 2 {
		t.Errorf("counts %+v", rep)
	}
	if rep.ServerBytes != 150 || rep.P2PBytes != 250 || rep.UploadedBytes != 250 || rep.FaultsDetected.ReportsSent != 1 {
		t.Errorf("bytes %+v", rep)
	}
	if rep.DistinctTracks != 2 || rep.ServerCopies != 150.0/300 || rep.WallSeconds != 12 || rep.FaultsDetected.Hub.ReportsAccepted != 1 {
		t.Errorf("copies %v of %d tracks, wall %v", rep.ServerCopies, rep.DistinctTracks, rep.WallSeconds)
	}
	if rep.Hubs != 2 || rep.CrossHubPairs != 7 || rep.HubFailovers != 2 || rep.FaultsDetected.Reconnects != 3 {
		t.Errorf("hubs %d, cross-hub pairs %d, failovers %d, reconnects %d", rep.Hubs, rep.CrossHubPairs, rep.HubFailovers, rep.FaultsDetected.Reconnects)
	}
	if want := (PairCounts{Opened: 5, Failed: 3, FailedBy: peer.PairFailures{Timeout: 2, Remote: 1}}); rep.Pairs != want {
		t.Errorf("pairs %+v, want %+v", rep.Pairs, want)
	}
	if rep.StartFromPeerShare != 2.0/3 || rep.SourcesPerPlayback.N != 3 || rep.SourcesPerPlayback.Max != 2 {
		t.Errorf("start from peer %v sources %+v", rep.StartFromPeerShare, rep.SourcesPerPlayback)
	}
	if _, err := Merge(Config{}, []Report{{}}, nil); err == nil {
		t.Error("merged a report without raw results")
	}
}

// TestServers: --server takes one hub or several, comma-separated, with
// spaces and trailing slashes cleaned.
func TestServers(t *testing.T) {
	for in, want := range map[string][]string{
		"http://a:1":                         {"http://a:1"},
		"http://a:1/, http://b:2 ,,http://c": {"http://a:1", "http://b:2", "http://c"},
		" , ":                                nil,
	} {
		if got := Servers(in); !slices.Equal(got, want) {
			t.Errorf("Servers(%q) = %q, want %q", in, got, want)
		}
	}
}
