package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/ztream/ztream/internal/natstest"
)

// recorder is a Node that records what the cluster tells it.
type recorder struct {
	mu     sync.Mutex
	holds  map[string][]string // peer → tracks held
	left   []string
	down   []string
	asks   []Message
	answer bool
	got    []Message
}

func newRecorder() *recorder { return &recorder{holds: make(map[string][]string), answer: true} }

func (r *recorder) RemoteHold(peer string, _ int, track string, _ int, _ []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.holds[peer], track) {
		r.holds[peer] = append(r.holds[peer], track)
	}
}

func (r *recorder) RemoteUnhold(peer, track string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holds[peer] = slices.DeleteFunc(r.holds[peer], func(t string) bool { return t == track })
}

func (r *recorder) RemoteLeave(peer string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.holds, peer)
	r.left = append(r.left, peer)
}

func (r *recorder) HubDown(hub string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = append(r.down, hub)
}

func (r *recorder) Ask(m Message, reply func(bool)) {
	r.mu.Lock()
	r.asks = append(r.asks, m)
	ok := r.answer
	r.mu.Unlock()
	reply(ok)
}

func (r *recorder) Pair(m Message) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, m)
	return true
}

func (r *recorder) Deliver(m Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, m)
}

func (r *recorder) holding(peer string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.holds[peer])
}

func (r *recorder) wasDown(hub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.down, hub)
}

func (r *recorder) received() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// testLogger writes the cluster's warnings and errors to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

var _ io.Writer = testWriter{}

// crash stops c as a killed process would: its loops stop and its
// connection drops, without a bye and without deleting anything.
func crash(c *Cluster) {
	c.cancel()
	c.wg.Wait()
	c.nc.Close()
}

// join starts a hub's membership with short timeouts; the cleanup closes it.
func join(t *testing.T, urls, id string) (*Cluster, *recorder) {
	t.Helper()
	c, err := New(Config{URLs: urls, HubID: id, Heartbeat: 200 * time.Millisecond, HubTimeout: time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder()
	if err := c.Start(r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	waitFor(t, 10*time.Second, id+" to sync", func() bool { return c.State().Synced })
	return c, r
}

const (
	peerA  = "p-00000000000000a1"
	peerB  = "p-00000000000000b1"
	trackX = "0123456789abcdef0123456789abcdef"
	trackY = "fedcba9876543210fedcba9876543210"
)

// TestHoldingsReachOtherHubs: what a hub's peers hold reaches the other
// hubs, partial holdings too; a peer that leaves is forgotten at once, and a
// hub that leaves takes its peers with it.
func TestHoldingsReachOtherHubs(t *testing.T) {
	srv := natstest.Start(t)
	a, _ := join(t, srv.URL, "hub-a")
	b, rb := join(t, srv.URL, "hub-b")
	waitFor(t, 5*time.Second, "hub-b to see hub-a", func() bool { return slices.Contains(b.State().Hubs, "hub-a") })
	a.Hold(peerA, 4, trackX, 0, nil)
	a.Hold(peerA, 4, trackY, 10, []byte{0xff, 0xc0})
	a.Hold(peerB, 0, trackX, 0, nil) // a peer that never seeds is not published
	waitFor(t, 5*time.Second, "hub-b to see peer A's holdings", func() bool { return len(rb.holding(peerA)) == 2 })
	if hub, ok := b.HubOf(peerA); !ok || hub != "hub-a" {
		t.Fatalf("HubOf(peer A) = %q, %v", hub, ok)
	}
	if _, ok := b.HubOf(peerB); ok {
		t.Fatal("a peer with upload cap 0 was published")
	}
	a.Unhold(peerA, trackY)
	waitFor(t, 5*time.Second, "the unhold", func() bool { return slices.Equal(rb.holding(peerA), []string{trackX}) })
	a.Leave(peerA)
	d := waitFor(t, 5*time.Second, "peer A forgotten", func() bool {
		_, ok := b.HubOf(peerA)
		return !ok
	})
	t.Logf("a departed peer forgotten by the other hub after %v", d)
	a.Hold(peerB, 2, trackX, 0, nil)
	waitFor(t, 5*time.Second, "peer B's holding", func() bool { return len(rb.holding(peerB)) == 1 })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, 5*time.Second, "hub-a's departure", func() bool { return rb.wasDown("hub-a") && len(rb.holding(peerB)) == 0 })
	t.Logf("a hub that left forgotten after %v", d)
}

// TestDeadHubForgotten: a hub that stops without leaving (its NATS
// connection cut, as when its process is killed) is dead for the others
// after HubTimeout: its peers are forgotten and its pairs end.
func TestDeadHubForgotten(t *testing.T) {
	srv := natstest.Start(t)
	a, _ := join(t, srv.URL, "hub-a")
	b, rb := join(t, srv.URL, "hub-b")
	a.Hold(peerA, 4, trackX, 0, nil)
	waitFor(t, 5*time.Second, "hub-b to see peer A", func() bool { return len(rb.holding(peerA)) == 1 })
	crash(a)
	d := waitFor(t, 5*time.Second, "hub-a dead", func() bool { return rb.wasDown("hub-a") })
	if _, ok := b.HubOf(peerA); ok {
		t.Fatal("the dead hub's peer is still known")
	}
	if d > 3*time.Second {
		t.Errorf("a dead hub forgotten after %v; HubTimeout is 1 s, heartbeat 200 ms", d)
	}
	t.Logf("a killed hub forgotten after %v (HubTimeout 1 s)", d)
}

// TestMessages: asks, pairings and relayed messages reach the hub named,
// in order; a message from a hub that is not alive, or malformed, is
// dropped; a request to a hub that is gone fails at once.
func TestMessages(t *testing.T) {
	srv := natstest.Start(t)
	a, ra := join(t, srv.URL, "hub-a")
	b, rb := join(t, srv.URL, "hub-b")
	waitFor(t, 5*time.Second, "the hubs to see each other", func() bool {
		return slices.Contains(a.State().Hubs, "hub-b") && slices.Contains(b.State().Hubs, "hub-a")
	})
	ask := Message{Lookup: "l-1", Track: trackX, Seeder: peerB, Requester: peerA}
	if !a.AskUpload("hub-b", ask) {
		t.Fatal("ask: no")
	}
	rb.mu.Lock()
	rb.answer = false
	rb.mu.Unlock()
	if a.AskUpload("hub-b", ask) {
		t.Fatal("ask: yes from a node that says no")
	}
	if !a.PairWith("hub-b", Message{Pair: "x-1", Lookup: "l-1", Track: trackX, Seeder: peerB, Requester: peerA}) {
		t.Fatal("pair refused")
	}
	for i := range 20 {
		a.Send("hub-b", Message{Kind: KindSignal, Pair: "x-1", Peer: peerA, To: peerB,
			Signal: []byte(fmt.Sprintf(`{"type":"signal","to":%q,"pair_id":"x-1","candidate":{"candidate":"c%d"}}`, peerB, i))})
	}
	a.Send("hub-b", Message{Kind: KindUnpair, Pair: "x-1", Peer: peerA, Reason: "requested"})
	waitFor(t, 5*time.Second, "21 messages", func() bool { return len(rb.received()) == 22 })
	got := rb.received()
	for i, m := range got[1:21] {
		if m.Kind != KindSignal || !strings.Contains(string(m.Signal), fmt.Sprintf(`"c%d"`, i)) {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	if got[21].Kind != KindUnpair || got[21].From != "hub-a" {
		t.Fatalf("last: %+v", got[21])
	}

	// Refused: junk, a foreign hub id, an unknown kind, a bad peer id, a
	// signal that is not one.
	nc, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	before := b.State().Dropped
	for _, raw := range []string{
		`junk`,
		`{"kind":"signal","from":"hub-z","pair":"x-1","peer":"` + peerA + `","to":"` + peerB + `","signal":{"type":"signal","to":"` + peerB + `","candidate":{"candidate":"c"}}}`,
		`{"kind":"nope","from":"hub-a"}`,
		`{"kind":"unpair","from":"hub-a","pair":"x-1","peer":"p-1","reason":"requested"}`,
		`{"kind":"signal","from":"hub-a","pair":"x-1","peer":"` + peerA + `","to":"` + peerB + `","signal":{"type":"lookup","track":"` + trackX + `"}}`,
		`{"kind":"signal","from":"hub-a","pair":"x-1","peer":"` + peerA + `","to":"` + peerB + `","signal":"` + strings.Repeat("a", MaxMessageBytes) + `"}`,
	} {
		if err := nc.Publish(subjectPrefix+"hub-b", []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "6 refusals", func() bool { return b.State().Dropped-before == 6 })
	if n := len(rb.received()); n != 22 {
		t.Fatalf("a refused message was delivered: %d messages", n)
	}

	// A hub that is gone: no responders, at once.
	start := time.Now()
	if a.PairWith("hub-gone", Message{Pair: "x-2", Lookup: "l-2", Track: trackX, Seeder: peerB, Requester: peerA}) {
		t.Fatal("a pairing with a hub that does not exist succeeded")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("a request to a missing hub took %v", d)
	}
	_ = ra
}

// TestNATSRestart: while NATS is down each hub goes on alone (its state
// says so and the other hubs are forgotten); when NATS is back the hubs
// find each other and their peers' holdings again.
func TestNATSRestart(t *testing.T) {
	srv := natstest.Start(t)
	a, _ := join(t, srv.URL, "hub-a")
	b, rb := join(t, srv.URL, "hub-b")
	a.Hold(peerA, 4, trackX, 0, nil)
	waitFor(t, 5*time.Second, "hub-b to see peer A", func() bool { return len(rb.holding(peerA)) == 1 })
	srv.Stop()
	waitFor(t, 5*time.Second, "hub-b alone", func() bool {
		s := b.State()
		return !s.Connected && len(s.Hubs) == 0 && s.RemotePeers == 0
	})
	a.Hold(peerB, 4, trackY, 0, nil) // while NATS is away
	srv.Restart()
	d := waitFor(t, 20*time.Second, "the hubs to find each other again", func() bool {
		return len(rb.holding(peerA)) == 1 && len(rb.holding(peerB)) == 1 && slices.Contains(b.State().Hubs, "hub-a")
	})
	t.Logf("rejoined %v after NATS restarted", d)
	if s := a.State(); !s.Connected || !s.Synced {
		t.Fatalf("hub-a state %+v", s)
	}
}

// TestDefaultHubID: a hub id from any host name and port is a valid id.
func TestDefaultHubID(t *testing.T) {
	for _, addr := range []string{":8080", "127.0.0.1:9000", "[::1]:443", "nonsense"} {
		if id := DefaultHubID(addr); !ValidHubID(id) {
			t.Errorf("DefaultHubID(%q) = %q: not a valid hub id", addr, id)
		}
	}
}

// TestHubRestartedWithinTimeout: a hub killed and started again under the
// same id before HubTimeout is a new run: the others end what the previous
// run had (its peers, its pairs) and read the new run's holdings.
func TestHubRestartedWithinTimeout(t *testing.T) {
	srv := natstest.Start(t)
	a, _ := join(t, srv.URL, "hub-a")
	_, rb := join(t, srv.URL, "hub-b")
	a.Hold(peerA, 4, trackX, 0, nil)
	waitFor(t, 5*time.Second, "hub-b to see peer A", func() bool { return len(rb.holding(peerA)) == 1 })
	crash(a)
	a2, _ := join(t, srv.URL, "hub-a")
	a2.Hold(peerB, 4, trackY, 0, nil)
	d := waitFor(t, 5*time.Second, "the old run forgotten, the new one's holding read", func() bool {
		return rb.wasDown("hub-a") && len(rb.holding(peerA)) == 0 && len(rb.holding(peerB)) == 1
	})
	t.Logf("restart seen after %v (HubTimeout 1 s)", d)
}
