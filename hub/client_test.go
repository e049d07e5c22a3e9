package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/ztream/ztream/boltstore"
	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/signaling"
	"github.com/ztream/ztream/store"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 20 * time.Second

func loopbackOnly(ip net.IP) bool { return ip.IsLoopback() }

// clientAPI is the Pion API of the test peers: own ephemeral sockets,
// loopback only, no mDNS.
func clientAPI() *webrtc.API {
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(loopbackOnly)
	se.SetSCTPMaxMessageSize(chunkproto.MaxMessageSize)
	return webrtc.NewAPI(webrtc.WithSettingEngine(se),
		webrtc.WithMediaEngine(&webrtc.MediaEngine{}),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
}

// testTrack is a synthetic track stored in the test store.
type testTrack struct {
	m      *media.Manifest
	chunks [][]byte
}

func makeTrack(seed byte, n int, size func(seq int) int) *testTrack {
	tr := &testTrack{m: &media.Manifest{Title: fmt.Sprintf("track %d", seed), MIME: media.MIMEType}}
	h := sha256.New()
	for seq := 0; seq < n; seq++ {
		data := make([]byte, size(seq))
		for i := range data {
			data[i] = byte(i*7+seq*13) ^ seed
		}
		sum := sha256.Sum256(data)
		h.Write(sum[:])
		tr.chunks = append(tr.chunks, data)
		tr.m.Chunks = append(tr.m.Chunks, media.ChunkInfo{Seq: seq, Size: len(data), SHA256: hex.EncodeToString(sum[:]), Frames: 1})
		tr.m.Size += int64(len(data))
	}
	tr.m.ID = hex.EncodeToString(h.Sum(nil)[:16])
	return tr
}

func (tr *testTrack) id() string { return tr.m.ID }

func openStore(t testing.TB, tracks ...*testTrack) store.Store {
	t.Helper()
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, tr := range tracks {
		if err := st.PutTrack(context.Background(), tr.m, func(seq int) ([]byte, error) { return tr.chunks[seq], nil }); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// spyMetrics records the hub's metric events.
type spyMetrics struct {
	mu         sync.Mutex
	buffered   int64
	peak       int64
	chunks     int
	rejected   map[string]int
	lookups    map[string]int
	brokered   int
	connected  int
	reports    []signaling.Stats
	grantsUp   int64
	grantsDown int64
	reported   map[string]int // reason/accepted → count
	downBy     map[string]int64
	upBy       map[string]int64
	dropped    int64
}

func newSpy() *spyMetrics {
	return &spyMetrics{rejected: map[string]int{}, lookups: map[string]int{}, reported: map[string]int{},
		downBy: map[string]int64{}, upBy: map[string]int64{}}
}

func (s *spyMetrics) PeerConnected()    { s.mu.Lock(); s.connected++; s.mu.Unlock() }
func (s *spyMetrics) PeerDisconnected() { s.mu.Lock(); s.connected--; s.mu.Unlock() }
func (s *spyMetrics) ChunkSent(int)     { s.mu.Lock(); s.chunks++; s.mu.Unlock() }
func (s *spyMetrics) PairBrokered()     { s.mu.Lock(); s.brokered++; s.mu.Unlock() }
func (s *spyMetrics) PairFailed()       {}
func (s *spyMetrics) SeederLookup(o string, _ time.Duration) {
	s.mu.Lock()
	s.lookups[o]++
	s.mu.Unlock()
}
func (s *spyMetrics) AddBufferedBytes(d int64) {
	s.mu.Lock()
	s.buffered += d
	s.peak = max(s.peak, s.buffered)
	s.mu.Unlock()
}
func (s *spyMetrics) SignalingRejected(r string)     { s.mu.Lock(); s.rejected[r]++; s.mu.Unlock() }
func (s *spyMetrics) OpenPeer(id string) PeerMetrics { return spyPeer{s, id} }
func (s *spyMetrics) SeederReported(reason string, accepted bool) {
	s.mu.Lock()
	s.reported[reason+"/"+strconv.FormatBool(accepted)]++
	s.mu.Unlock()
}
func (s *spyMetrics) SeederDropped() { s.mu.Lock(); s.dropped++; s.mu.Unlock() }

func (s *spyMetrics) get(f func(s *spyMetrics) int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f(s)
}

type spyPeer struct {
	s  *spyMetrics
	id string
}

func (p spyPeer) GrantDownload(n int64) {
	p.s.mu.Lock()
	p.s.grantsDown += n
	p.s.downBy[p.id] += n
	p.s.mu.Unlock()
}
func (p spyPeer) GrantUpload(n int64) {
	p.s.mu.Lock()
	p.s.grantsUp += n
	p.s.upBy[p.id] += n
	p.s.mu.Unlock()
}
func (p spyPeer) Report(r signaling.Stats) {
	p.s.mu.Lock()
	p.s.reports = append(p.s.reports, r)
	p.s.mu.Unlock()
}
func (p spyPeer) Close() {}

// eventually polls cond until it holds or the test timeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testHub starts a hub on an httptest server. cfg gets loopback settings.
func testHub(t testing.TB, cfg Config, st store.Store) (*Hub, string) {
	t.Helper()
	cfg.IncludeLoopback = true
	cfg.IPFilter = loopbackOnly
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if os.Getenv("HUB_TEST_LOG") != "" {
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}
	h, err := New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("hub close: %v", err)
		}
		srv.Close()
	})
	return h, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// client is a minimal Go peer: WebSocket, PeerConnection with the hub
// (answering its offer) and the "chunks" DataChannel.
type client struct {
	t   testing.TB
	ctx context.Context
	ws  *websocket.Conn
	api *webrtc.API
	pc  *webrtc.PeerConnection
	id  string

	welcome signaling.Welcome
	inbox   chan signaling.Message
	backlog []signaling.Message
	closed  chan error // the WebSocket read error that ended the reader

	dcOpen chan *webrtc.DataChannel
	dc     *webrtc.DataChannel
	text   chan chunkproto.Message
	chunks chan chunkproto.Chunk
	pause  sync.RWMutex // the DataChannel handler holds a read lock per message
	pings  atomic.Int32 // pings received (and answered) by readLoop
}

// dial connects and sends hello, but does not wait for anything.
func dial(t testing.TB, url string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	ws, _, err := websocket.Dial(ctx, url+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &client{t: t, ctx: ctx, ws: ws, inbox: make(chan signaling.Message, 1024), closed: make(chan error, 1),
		dcOpen: make(chan *webrtc.DataChannel, 1), text: make(chan chunkproto.Message, 1024), chunks: make(chan chunkproto.Chunk, 4096)}
}

// connect dials, says hello, reads welcome and waits for the DataChannel.
func connect(t testing.TB, url string, api *webrtc.API, hello signaling.Hello) *client {
	t.Helper()
	c := dial(t, url)
	c.api = api
	if hello.Version == 0 {
		hello.Version = signaling.Version
	}
	c.send(hello)
	m := c.readRaw()
	w, ok := m.(signaling.Welcome)
	if !ok {
		t.Fatalf("first message %#v, want welcome", m)
	}
	c.welcome, c.id = w, w.PeerID
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c.pc = pc
	t.Cleanup(func() { _ = pc.Close() })
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand != nil {
			init := cand.ToJSON()
			c.sendQuiet(signaling.Signal{To: signaling.HubID, Candidate: &init})
		}
	})
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnOpen(func() { c.dcOpen <- dc })
		dc.OnMessage(func(msg webrtc.DataChannelMessage) {
			c.pause.RLock()
			defer c.pause.RUnlock()
			if msg.IsString {
				m, err := chunkproto.DecodeMessage(msg.Data)
				if err != nil {
					t.Errorf("bad text from hub: %s: %v", msg.Data, err)
					return
				}
				c.text <- m
				return
			}
			ch, err := chunkproto.DecodeChunk(msg.Data)
			if err != nil {
				t.Errorf("bad chunk from hub: %v", err)
				return
			}
			c.chunks <- ch
		})
	})
	go c.readLoop()
	select {
	case c.dc = <-c.dcOpen:
	case <-c.ctx.Done():
		t.Fatal("hub data channel did not open")
	}
	if c.dc.Label() != chunkproto.DataChannelLabel || !c.dc.Ordered() {
		t.Fatalf("data channel %q ordered=%v", c.dc.Label(), c.dc.Ordered())
	}
	return c
}

func (c *client) send(m signaling.Message) {
	c.t.Helper()
	if err := c.sendErr(m); err != nil {
		c.t.Fatal(err)
	}
}

// sendQuiet is for callbacks that may run after the test ended.
func (c *client) sendQuiet(m signaling.Message) { _ = c.sendErr(m) }

func (c *client) sendErr(m signaling.Message) error {
	b, err := signaling.Encode(m)
	if err != nil {
		return err
	}
	return c.ws.Write(c.ctx, websocket.MessageText, b)
}

func (c *client) readRaw() signaling.Message {
	c.t.Helper()
	_, data, err := c.ws.Read(c.ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	m, err := signaling.Decode(data)
	if err != nil {
		c.t.Fatalf("decode %s: %v", data, err)
	}
	return m
}

// readLoop answers the hub's offer and candidates; everything else goes to inbox.
func (c *client) readLoop() {
	for {
		_, data, err := c.ws.Read(c.ctx)
		if err != nil {
			c.closed <- err
			close(c.inbox)
			return
		}
		m, err := signaling.Decode(data)
		if err != nil {
			c.t.Errorf("decode %s: %v", data, err)
			continue
		}
		if _, ok := m.(signaling.Ping); ok {
			c.pings.Add(1)
			c.sendQuiet(signaling.Pong{})
			continue
		}
		if s, ok := m.(signaling.Signal); ok && s.From == signaling.HubID {
			if err := c.onHubSignal(s); err != nil {
				c.t.Errorf("hub signal: %v", err)
			}
			continue
		}
		c.inbox <- m
	}
}

func (c *client) onHubSignal(s signaling.Signal) error {
	if s.Candidate != nil {
		return c.pc.AddICECandidate(*s.Candidate)
	}
	if s.SDP.Type != webrtc.SDPTypeOffer {
		return fmt.Errorf("hub sent %s", s.SDP.Type)
	}
	if err := c.pc.SetRemoteDescription(*s.SDP); err != nil {
		return err
	}
	answer, err := c.pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := c.pc.SetLocalDescription(answer); err != nil {
		return err
	}
	return c.sendErr(signaling.Signal{To: signaling.HubID, SDP: &answer})
}

// next returns the next WebSocket message (backlog first).
func (c *client) next() signaling.Message {
	c.t.Helper()
	if len(c.backlog) > 0 {
		m := c.backlog[0]
		c.backlog = c.backlog[1:]
		return m
	}
	select {
	case m, ok := <-c.inbox:
		if !ok {
			c.t.Fatalf("%s: connection closed", c.id)
		}
		return m
	case <-c.ctx.Done():
		c.t.Fatalf("%s: no message in time", c.id)
	}
	return nil
}

// waitFor returns the first message of type T, keeping others in the backlog.
func waitFor[T signaling.Message](c *client) T {
	c.t.Helper()
	for i, m := range c.backlog {
		if v, ok := m.(T); ok {
			c.backlog = append(c.backlog[:i:i], c.backlog[i+1:]...)
			return v
		}
	}
	for {
		select {
		case m, ok := <-c.inbox:
			if !ok {
				var zero T
				c.t.Fatalf("%s: connection closed waiting for %s", c.id, zero.MessageType())
			}
			if v, ok := m.(T); ok {
				return v
			}
			c.backlog = append(c.backlog, m)
		case <-c.ctx.Done():
			var zero T
			c.t.Fatalf("%s: no %s in time", c.id, zero.MessageType())
		}
	}
}

// closeStatus waits for the hub to close the WebSocket and returns its status.
func (c *client) closeStatus() websocket.StatusCode {
	c.t.Helper()
	select {
	case err := <-c.closed:
		return websocket.CloseStatus(err)
	case <-c.ctx.Done():
		c.t.Fatalf("%s: connection not closed in time", c.id)
	}
	return 0
}

// dcSend sends a chunk protocol text message to the hub.
func (c *client) dcSend(m chunkproto.Message) {
	c.t.Helper()
	b, err := chunkproto.EncodeMessage(m)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.dc.SendText(string(b)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) nextText() chunkproto.Message {
	c.t.Helper()
	select {
	case m := <-c.text:
		return m
	case <-c.ctx.Done():
		c.t.Fatal("no text message on the data channel in time")
	}
	return nil
}

func (c *client) nextChunk() chunkproto.Chunk {
	c.t.Helper()
	select {
	case ch := <-c.chunks:
		return ch
	case <-c.ctx.Done():
		c.t.Fatal("no chunk in time")
	}
	return chunkproto.Chunk{}
}

// receiveRange reads chunks [from, to) of tr in order, checking their bytes,
// then the done of request id.
func (c *client) receiveRange(tr *testTrack, id uint32, from, to int) {
	c.t.Helper()
	for seq := from; seq < to; seq++ {
		ch := c.nextChunk()
		if ch.Track != tr.id() || ch.Seq != seq {
			c.t.Fatalf("got chunk %s/%d, want %s/%d", ch.Track, ch.Seq, tr.id(), seq)
		}
		if string(ch.Data) != string(tr.chunks[seq]) {
			c.t.Fatalf("chunk %d: bytes differ", seq)
		}
	}
	if m := c.nextText(); m != (chunkproto.Done{ID: id}) {
		c.t.Fatalf("after range: %#v, want done %d", m, id)
	}
}

// readLoopRaw drains the WebSocket without answering anything.
func (c *client) readLoopRaw() {
	for {
		if _, _, err := c.ws.Read(c.ctx); err != nil {
			c.closed <- err
			return
		}
	}
}
