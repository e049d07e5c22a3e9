package hub_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/signaling"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 20 * time.Second

// clientAPI is the Pion API of the test peers: own ephemeral sockets,
// loopback only, no mDNS.
func clientAPI() *webrtc.API {
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(hubtest.LoopbackOnly)
	se.SetSCTPMaxMessageSize(chunkproto.MaxMessageSize)
	return webrtc.NewAPI(webrtc.WithSettingEngine(se),
		webrtc.WithMediaEngine(&webrtc.MediaEngine{}),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
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

// dial opens a WebSocket to the hub at url (a hubtest.Server's WSURL), but
// sends nothing.
func dial(t testing.TB, url string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	ws, _, err := websocket.Dial(ctx, url, nil)
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
func (c *client) receiveRange(tr *testtrack.Track, id uint32, from, to int) {
	c.t.Helper()
	for seq := from; seq < to; seq++ {
		ch := c.nextChunk()
		if ch.Track != tr.ID() || ch.Seq != seq {
			c.t.Fatalf("got chunk %s/%d, want %s/%d", ch.Track, ch.Seq, tr.ID(), seq)
		}
		if string(ch.Data) != string(tr.Chunk(seq)) {
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
