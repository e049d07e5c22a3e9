package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ztream/ztream/cluster"
	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/internal/natstest"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/signaling"
)

// rogueHub is a NATS client that claims to be hub "evil": it heartbeats
// and sends hand-made messages to a real hub.
type rogueHub struct {
	t    *testing.T
	nc   *nats.Conn
	back chan cluster.Message // what the real hub sends "evil"
}

func newRogueHub(t *testing.T, url string) *rogueHub {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r := &rogueHub{t: t, nc: nc, back: make(chan cluster.Message, 64)}
	if _, err := nc.Subscribe("ztream.hub.evil", func(m *nats.Msg) {
		var msg cluster.Message
		if json.Unmarshal(m.Data, &msg) == nil {
			r.back <- msg
		}
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 100 {
			if nc.IsClosed() || nc.Publish("ztream.alive.evil", nil) != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return r
}

// request sends m to hub-h and returns its answer.
func (r *rogueHub) request(m cluster.Message) bool {
	r.t.Helper()
	m.From = "evil"
	data, _ := json.Marshal(m)
	reply, err := r.nc.Request("ztream.hub.hub-h", data, 3*time.Second)
	if err != nil {
		r.t.Fatalf("%s request: %v", m.Kind, err)
	}
	var a struct{ OK bool }
	if err := json.Unmarshal(reply.Data, &a); err != nil {
		r.t.Fatal(err)
	}
	return a.OK
}

func (r *rogueHub) send(m cluster.Message) {
	r.t.Helper()
	m.From = "evil"
	data, _ := json.Marshal(m)
	if err := r.nc.Publish("ztream.hub.hub-h", data); err != nil {
		r.t.Fatal(err)
	}
}

// TestClusterMessagesChecked: another hub (here a hand-driven NATS client)
// cannot make a hub pair a peer that did not say yes to it, pair it with
// another requester than the one asked for, or relay a signal outside a
// pair; a relay to a pair that does not exist ends that pair at the sender.
// A pairing after a yes works, and then signals cross.
func TestClusterMessagesChecked(t *testing.T) {
	srv := natstest.Start(t)
	tr := testtrack.New(70, 4)
	c, err := cluster.New(cluster.Config{URLs: srv.URL, HubID: "hub-h", Heartbeat: 100 * time.Millisecond, HubTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hs := hubtest.New(t, hub.Config{Cluster: c}, hubtest.WithTracks(tr))
	hubtest.WaitFor(t, 10*time.Second, "the cluster to sync", func() bool { return c.State().Synced })
	rogue := newRogueHub(t, srv.URL)
	hubtest.WaitFor(t, 5*time.Second, "hub-h to hear evil", func() bool { return len(c.State().Hubs) == 1 })
	s := connect(t, hs.WSURL, clientAPI(), signaling.Hello{Cached: []string{tr.ID()}})
	const leecher, other = "p-00000000000000e1", "p-00000000000000e2"

	// Never asked: no pair.
	if rogue.request(cluster.Message{Kind: cluster.KindPair, Pair: "x-e-1", Lookup: "l-1", Track: tr.ID(), Seeder: s.id, Requester: leecher}) {
		t.Fatal("a pairing without a yes was accepted")
	}
	// A signal on a pair that does not exist: dropped, and the sender hears
	// that the pair is over.
	rogue.send(cluster.Message{Kind: cluster.KindSignal, Pair: "x-e-1", Peer: leecher, To: s.id,
		Signal: json.RawMessage(`{"type":"signal","to":"` + s.id + `","pair_id":"x-e-1","candidate":{"candidate":"c"}}`)})
	select {
	case m := <-rogue.back:
		if m.Kind != cluster.KindUnpair || m.Pair != "x-e-1" {
			t.Fatalf("back: %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no unpair back for a signal on an unknown pair")
	}

	// Asked: the peer gets can_upload and says yes; the rogue's answer is yes.
	answered := make(chan bool, 1)
	go func() {
		answered <- rogue.request(cluster.Message{Kind: cluster.KindAsk, Lookup: "l-2", Track: tr.ID(), Seeder: s.id, Requester: leecher})
	}()
	ask := waitFor[signaling.CanUpload](s)
	for _, m := range s.backlog {
		switch m := m.(type) {
		case signaling.Paired:
			t.Fatalf("the seeder got %+v before any yes", m)
		case signaling.Signal:
			if m.PairID != "" {
				t.Fatalf("the seeder got a relayed signal outside a pair: %+v", m)
			}
		}
	}
	s.send(signaling.UploadReply{LookupID: ask.LookupID, OK: true})
	if !<-answered {
		t.Fatal("the seeder's yes did not reach the asking hub")
	}
	// The yes was for leecher, not other.
	if rogue.request(cluster.Message{Kind: cluster.KindPair, Pair: "x-e-2", Lookup: "l-2", Track: tr.ID(), Seeder: s.id, Requester: other}) {
		t.Fatal("a pairing with another requester than the one asked for was accepted")
	}
	// A yes is used once: the refused pairing above consumed it.
	if rogue.request(cluster.Message{Kind: cluster.KindPair, Pair: "x-e-2", Lookup: "l-2", Track: tr.ID(), Seeder: s.id, Requester: leecher}) {
		t.Fatal("a yes paired twice")
	}
	go func() {
		answered <- rogue.request(cluster.Message{Kind: cluster.KindAsk, Lookup: "l-3", Track: tr.ID(), Seeder: s.id, Requester: leecher})
	}()
	ask = waitFor[signaling.CanUpload](s)
	s.send(signaling.UploadReply{LookupID: ask.LookupID, OK: true})
	if !<-answered {
		t.Fatal("second yes lost")
	}
	if !rogue.request(cluster.Message{Kind: cluster.KindPair, Pair: "x-e-3", Lookup: "l-3", Track: tr.ID(), Seeder: s.id, Requester: leecher}) {
		t.Fatal("a pairing after a yes was refused")
	}
	if p := waitFor[signaling.Paired](s); p.PairID != "x-e-3" || p.Peer != leecher || p.Role != signaling.RoleSeeder {
		t.Fatalf("paired %+v", p)
	}
	// A signal from another peer on the pair is dropped; the leecher's
	// reaches the seeder, from the leecher.
	rogue.send(cluster.Message{Kind: cluster.KindSignal, Pair: "x-e-3", Peer: other, To: s.id,
		Signal: json.RawMessage(`{"type":"signal","to":"` + s.id + `","pair_id":"x-e-3","candidate":{"candidate":"bad"}}`)})
	rogue.send(cluster.Message{Kind: cluster.KindSignal, Pair: "x-e-3", Peer: leecher, To: s.id,
		Signal: json.RawMessage(`{"type":"signal","to":"` + s.id + `","pair_id":"x-e-3","candidate":{"candidate":"good"}}`)})
	for {
		sig := waitFor[signaling.Signal](s)
		if sig.PairID == "" {
			continue // the hub PeerConnection's own signaling
		}
		if sig.From != leecher || sig.Candidate == nil || sig.Candidate.Candidate != "good" {
			t.Fatalf("relayed %+v", sig)
		}
		break
	}
	// The leecher's hub ends the pair: the seeder hears it.
	rogue.send(cluster.Message{Kind: cluster.KindUnpair, Pair: "x-e-3", Peer: leecher, Reason: signaling.ReasonRequested})
	if u := waitFor[signaling.Unpair](s); u.PairID != "x-e-3" || u.Reason != signaling.ReasonRequested {
		t.Fatalf("unpair %+v", u)
	}

	// Reports against the seeder from the other hub's peers: the seeder's
	// holding leaves the cluster's bucket once two peers that hub paired
	// with it report a hash mismatch; a peer never paired with it does not
	// count (it would have made the first paired report the second).
	kv := holdersKV(t, srv.URL)
	key := "hub-h." + s.id + "." + tr.ID()
	hubtest.WaitFor(t, 5*time.Second, "the seeder's holding in the bucket", func() bool { return kvHas(t, kv, key) })
	report := func(reporter string) {
		rogue.send(cluster.Message{Kind: cluster.KindReport, Peer: reporter, Seeder: s.id, Track: tr.ID(), Reason: signaling.ReportHashMismatch})
	}
	report(other)
	report(leecher)
	time.Sleep(time.Second) // a drop would be flushed within 100 ms
	if !kvHas(t, kv, key) {
		t.Fatal("a report from a peer never paired with the seeder counted")
	}
	go func() {
		answered <- rogue.request(cluster.Message{Kind: cluster.KindAsk, Lookup: "l-4", Track: tr.ID(), Seeder: s.id, Requester: other})
	}()
	ask = waitFor[signaling.CanUpload](s)
	s.send(signaling.UploadReply{LookupID: ask.LookupID, OK: true})
	if !<-answered || !rogue.request(cluster.Message{Kind: cluster.KindPair, Pair: "x-e-4", Lookup: "l-4", Track: tr.ID(), Seeder: s.id, Requester: other}) {
		t.Fatal("second pairing refused")
	}
	report(other)
	hubtest.WaitFor(t, 5*time.Second, "the reported seeder's holding to leave the bucket", func() bool { return !kvHas(t, kv, key) })
}

// holdersKV opens the cluster's holdings bucket as a plain NATS client.
func holdersKV(t *testing.T, url string) jetstream.KeyValue {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), "ztream_holders")
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// kvHas reports whether key is in kv.
func kvHas(t *testing.T, kv jetstream.KeyValue, key string) bool {
	t.Helper()
	_, err := kv.Get(context.Background(), key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}
