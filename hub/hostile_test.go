package hub_test

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/internal/clientip"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/signaling"
)

// rawClient is a WebSocket-only peer: it never answers the hub's offer (the
// hub's ConnectTimeout, 20 s by default, outlasts these tests), which keeps
// hostile tests free of PeerConnections.
type rawClient struct {
	t      *testing.T
	ctx    context.Context
	ws     *websocket.Conn
	id     string
	msgs   chan signaling.Message
	closed chan error
	// pong makes the reader answer pings.
	pong  bool
	pings atomic.Int32
}

// dialRawOpts opens a WebSocket with opts; it returns the handshake
// response and error instead of failing the test.
func dialRawOpts(t *testing.T, url string, opts *websocket.DialOptions) (*rawClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	ws, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &rawClient{t: t, ctx: ctx, ws: ws, msgs: make(chan signaling.Message, 4096), closed: make(chan error, 1)}, resp, nil
}

func dialRaw(t *testing.T, url string) *rawClient {
	t.Helper()
	r, _, err := dialRawOpts(t, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// hello says hello, reads welcome and starts the reader.
func (r *rawClient) hello(h signaling.Hello) {
	r.t.Helper()
	h.Version = signaling.Version
	r.send(h)
	_, data, err := r.ws.Read(r.ctx)
	if err != nil {
		r.t.Fatalf("read welcome: %v", err)
	}
	m, err := signaling.Decode(data)
	w, ok := m.(signaling.Welcome)
	if err != nil || !ok {
		r.t.Fatalf("first message %s (%v), want welcome", data, err)
	}
	r.id = w.PeerID
	go r.read()
}

func (r *rawClient) read() {
	for {
		_, data, err := r.ws.Read(r.ctx)
		if err != nil {
			r.closed <- err
			close(r.msgs)
			return
		}
		m, err := signaling.Decode(data)
		if err != nil {
			r.t.Errorf("decode %s: %v", data, err)
			continue
		}
		switch m := m.(type) {
		case signaling.Ping:
			r.pings.Add(1)
			if r.pong {
				_ = r.write(signaling.Pong{})
			}
			continue
		case signaling.Signal:
			if m.From == signaling.HubID {
				continue
			}
		}
		select {
		case r.msgs <- m:
		default:
			r.t.Errorf("%s: inbox full", r.id)
		}
	}
}

func (r *rawClient) write(m signaling.Message) error {
	b, err := signaling.Encode(m)
	if err != nil {
		return err
	}
	return r.ws.Write(r.ctx, websocket.MessageText, b)
}

func (r *rawClient) send(m signaling.Message) {
	r.t.Helper()
	if err := r.write(m); err != nil {
		r.t.Fatal(err)
	}
}

// waitRaw returns the next message of type T, dropping the others.
func waitRaw[T signaling.Message](r *rawClient) T {
	r.t.Helper()
	var zero T
	for {
		select {
		case m, ok := <-r.msgs:
			if !ok {
				r.t.Fatalf("%s: closed while waiting for %s", r.id, zero.MessageType())
			}
			if v, ok := m.(T); ok {
				return v
			}
		case <-r.ctx.Done():
			r.t.Fatalf("%s: no %s in time", r.id, zero.MessageType())
		}
	}
}

// closeStatus waits until the hub closes the connection.
func (r *rawClient) closeStatus() websocket.StatusCode {
	r.t.Helper()
	select {
	case err := <-r.closed:
		return websocket.CloseStatus(err)
	case <-r.ctx.Done():
		r.t.Fatalf("%s: not closed in time", r.id)
	}
	return 0
}

func rejected(spy *hubtest.Spy, reason string) int64 {
	return int64(spy.Counts().Rejected[reason])
}

// TestHugeFrameRefused sends a frame of exactly 4 MiB before and after
// hello: the hub reads no more than its limit, closes with 1009 and counts it.
func TestHugeFrameRefused(t *testing.T) {
	t.Parallel()
	spy := hubtest.NewSpy()
	srv := hubtest.New(t, hub.Config{Metrics: spy})
	h, url := srv.Hub, srv.WSURL
	huge := make([]byte, 4<<20)
	for i := range huge {
		huge[i] = 'a'
	}
	for _, afterHello := range []bool{false, true} {
		r := dialRaw(t, url)
		if afterHello {
			r.hello(signaling.Hello{})
		} else {
			go r.read()
		}
		// The hub stops reading at its limit: the write may fail.
		go func() { _ = r.ws.Write(r.ctx, websocket.MessageText, huge) }()
		if s := r.closeStatus(); s != websocket.StatusMessageTooBig {
			t.Fatalf("after hello %v: close status %v, want 1009", afterHello, s)
		}
	}
	if n := rejected(spy, "too_large"); n != 2 {
		t.Fatalf("too_large counted %d times, want 2", n)
	}
	hubtest.WaitFor(t, testTimeout, "peers to leave", func() bool { return h.Peers() == 0 })
}

// TestJunkRejectedAndCounted: broken JSON, unknown types and hub→peer types
// get bad_message and the connection lives on; a binary frame of noise
// closes it with 1003. Every refusal is counted.
func TestJunkRejectedAndCounted(t *testing.T) {
	t.Parallel()
	spy := hubtest.NewSpy()
	srv := hubtest.New(t, hub.Config{Metrics: spy})
	h, url := srv.Hub, srv.WSURL
	r := dialRaw(t, url)
	r.hello(signaling.Hello{})
	for _, junk := range []string{`{"type":"hello","version":`, `["type"]`, `{"type":"nope"}`, `{"type":"welcome","peer_id":"p-x"}`, "\xff\xfe", ``} {
		if err := r.ws.Write(r.ctx, websocket.MessageText, []byte(junk)); err != nil {
			t.Fatal(err)
		}
		if e := waitRaw[signaling.Error](r); e.Code != signaling.CodeBadMessage {
			t.Fatalf("%q: got %+v", junk, e)
		}
	}
	if n := rejected(spy, signaling.CodeBadMessage); n != 6 {
		t.Fatalf("bad_message counted %d, want 6", n)
	}
	noise := make([]byte, 1000)
	_, _ = rand.Read(noise)
	if err := r.ws.Write(r.ctx, websocket.MessageBinary, noise); err != nil {
		t.Fatal(err)
	}
	if s := r.closeStatus(); s != websocket.StatusUnsupportedData {
		t.Fatalf("binary frame: close status %v, want 1003", s)
	}
	// Binary noise instead of hello, too.
	r = dialRaw(t, url)
	go r.read()
	if err := r.ws.Write(r.ctx, websocket.MessageBinary, noise); err != nil {
		t.Fatal(err)
	}
	if s := r.closeStatus(); s != websocket.StatusUnsupportedData {
		t.Fatalf("binary hello: close status %v, want 1003", s)
	}
	if n := rejected(spy, "binary"); n != 2 {
		t.Fatalf("binary counted %d, want 2", n)
	}
	hubtest.WaitFor(t, testTimeout, "peers to leave", func() bool { return h.Peers() == 0 })
}

// TestMessageRateLimit: beyond the burst, messages are refused with
// rate_limited; a connection that keeps flooding is closed with 1008.
func TestMessageRateLimit(t *testing.T) {
	t.Parallel()
	spy := hubtest.NewSpy()
	const burst = 12 // strike bucket: burst/4 = 3
	url := hubtest.New(t, hub.Config{Metrics: spy, MessageRate: 0.01, MessageBurst: burst}).WSURL

	r := dialRaw(t, url)
	r.hello(signaling.Hello{})
	// Within the burst: pongs are accepted silently; the bad message
	// after them proves they were handled (its reply is bad_message).
	for range burst - 1 {
		r.send(signaling.Pong{})
	}
	r.send(signaling.Unpair{PairID: "x-none"})
	if e := waitRaw[signaling.Error](r); e.Code != signaling.CodeUnknownPair {
		t.Fatalf("within the burst: %+v", e)
	}
	// The bucket is empty now (refill: one token per 100 s).
	r.send(signaling.Pong{})
	if e := waitRaw[signaling.Error](r); e.Code != signaling.CodeRateLimited {
		t.Fatalf("over the burst: %+v", e)
	}
	// Keep flooding: the hub hangs up.
	for range 50 {
		if r.write(signaling.Pong{}) != nil {
			break
		}
	}
	if s := r.closeStatus(); s != websocket.StatusPolicyViolation {
		t.Fatalf("flood: close status %v, want 1008", s)
	}
	if n := rejected(spy, signaling.CodeRateLimited); n < 2 {
		t.Fatalf("rate_limited counted %d times", n)
	}
}

// TestPerIPCap: the third connection from one address is refused with 429
// until one of the first two ends.
func TestPerIPCap(t *testing.T) {
	t.Parallel()
	spy := hubtest.NewSpy()
	url := hubtest.New(t, hub.Config{Metrics: spy, MaxPeersPerIP: 2}).WSURL
	a := dialRaw(t, url)
	a.hello(signaling.Hello{})
	b := dialRaw(t, url) // before hello counts too
	_, resp, err := dialRawOpts(t, url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection: %v, %+v; want 429", err, resp)
	}
	if n := rejected(spy, "too_many_connections"); n != 1 {
		t.Fatalf("too_many_connections counted %d", n)
	}
	_ = b.ws.CloseNow()
	hubtest.WaitFor(t, testTimeout, "a slot to free up", func() bool {
		c, _, err := dialRawOpts(t, url, nil)
		if err != nil {
			return false
		}
		c.hello(signaling.Hello{})
		return true
	})
}

// TestOriginCheck: a foreign Origin is refused with 403 (counted); the same
// origin and allowed patterns are accepted.
func TestOriginCheck(t *testing.T) {
	t.Parallel()
	spy := hubtest.NewSpy()
	srv := hubtest.New(t, hub.Config{Metrics: spy, OriginPatterns: []string{"app.example.com"}})
	url, host := srv.WSURL, srv.Addr
	for origin, want := range map[string]int{
		"http://evil.example.com": http.StatusForbidden,
		"http://app.example.com":  http.StatusSwitchingProtocols,
		"http://" + host:          http.StatusSwitchingProtocols,
	} {
		r, resp, err := dialRawOpts(t, url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
		if resp == nil || resp.StatusCode != want {
			t.Fatalf("origin %s: %v %+v, want %d", origin, err, resp, want)
		}
		if r != nil {
			r.hello(signaling.Hello{})
		}
	}
	if n := rejected(spy, "bad_handshake"); n != 1 {
		t.Fatalf("bad_handshake counted %d, want 1", n)
	}
}

// TestIdleTimeout: a silent peer gets pings, then is closed with 1008; a
// peer that answers them stays.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	spy := hubtest.NewSpy()
	const idle, ping = time.Second, 100 * time.Millisecond
	srv := hubtest.New(t, hub.Config{Metrics: spy, PingInterval: ping, IdleTimeout: idle})
	h, url := srv.Hub, srv.WSURL
	alive := dialRaw(t, url)
	alive.pong = true
	alive.hello(signaling.Hello{})
	silent := dialRaw(t, url)
	silent.hello(signaling.Hello{})
	if s := silent.closeStatus(); s != websocket.StatusPolicyViolation {
		t.Fatalf("silent peer: close status %v, want 1008", s)
	}
	if silent.pings.Load() == 0 {
		t.Fatal("the silent peer was never pinged")
	}
	if n := rejected(spy, "idle_timeout"); n < 1 {
		t.Fatal("idle_timeout not counted")
	}
	// The silent peer lived at least `idle`; the answering one has lived as
	// long and lives on: it answers the pings of another idle period.
	pinged := alive.pings.Load()
	hubtest.WaitFor(t, testTimeout, "another idle period of pings", func() bool {
		return alive.pings.Load() >= pinged+int32(idle/ping)
	})
	alive.send(signaling.Unpair{PairID: "x-none"})
	if e := waitRaw[signaling.Error](alive); e.Code != signaling.CodeUnknownPair {
		t.Fatalf("answering peer: %+v", e)
	}
	if alive.pings.Load() < 2 {
		t.Fatalf("answering peer got %d pings", alive.pings.Load())
	}
	if n := rejected(spy, "idle_timeout"); n != 1 {
		t.Fatalf("idle_timeout counted %d, want 1", n)
	}
	hubtest.WaitFor(t, testTimeout, "the silent peer to leave", func() bool { return h.Peers() == 1 })
}

// smallReadBuffer dials TCP with a tiny receive buffer, so that a client
// that stops reading stalls the hub's writes after a few MiB at most.
func smallReadBuffer() *websocket.DialOptions {
	d := &net.Dialer{}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if tc, ok := c.(*net.TCPConn); ok {
				if err := tc.SetReadBuffer(16 << 10); err != nil {
					_ = c.Close()
					return nil, err
				}
			}
			return c, nil
		},
	}}}
}

// smallWriteBuffer gives accepted connections a small send buffer.
type smallWriteBuffer struct{ net.Listener }

func (l smallWriteBuffer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		if err := tc.SetWriteBuffer(16 << 10); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	return c, err
}

// TestSlowWebSocketReaderDropped: a seeder stops reading its WebSocket
// while its paired leecher floods it with 60 KiB relayed signals. The hub
// queues at most SendQueue messages for it, drops it (slow_consumer), and
// the leecher learns that the pair ended.
func TestSlowWebSocketReaderDropped(t *testing.T) {
	t.Parallel()
	tr := testtrack.New(40, 2, testtrack.Size(100))
	spy := hubtest.NewSpy()
	const queue = 8
	// The default WriteTimeout (10 s) outlasts the flood: the queue fills first.
	hs := hubtest.New(t, hub.Config{Metrics: spy, SendQueue: queue, MessageRate: 1e6, MessageBurst: 1e6}, hubtest.WithTracks(tr))
	h, url := hs.Hub, hs.WSURL
	// A second server on the same hub whose sockets have a small send
	// buffer, so that little data fills the pipe to the seeder.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(smallWriteBuffer{ln}) }()
	t.Cleanup(func() { _ = srv.Close() })
	slowURL := "ws://" + ln.Addr().String() + "/ws"

	seeder, _, err := dialRawOpts(t, slowURL, smallReadBuffer())
	if err != nil {
		t.Fatal(err)
	}
	seeder.send(signaling.Hello{Version: signaling.Version, Cached: []string{tr.ID()}})
	// The seeder reads by hand: its welcome (the tracker knows its cache
	// then), and after the leecher's lookup until paired, then never again.
	readSeeder := func() signaling.Message {
		_, data, err := seeder.ws.Read(seeder.ctx)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := signaling.Decode(data)
		return m
	}
	for seeder.id == "" {
		if m, ok := readSeeder().(signaling.Welcome); ok {
			seeder.id = m.PeerID
		}
	}
	leecher := dialRaw(t, url)
	leecher.hello(signaling.Hello{})
	leecher.send(signaling.Lookup{Track: tr.ID()})
	for paired := false; !paired; {
		switch m := readSeeder().(type) {
		case signaling.CanUpload:
			seeder.send(signaling.UploadReply{LookupID: m.LookupID, OK: true})
		case signaling.Paired:
			paired = true
		}
	}
	res := waitRaw[signaling.LookupResult](leecher)
	if res.PairID == "" {
		t.Fatalf("lookup failed: %+v", res)
	}
	sdp := &webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: strings.Repeat("a", 60<<10)}
	sent := 0
	for ; sent < signaling.MaxPairSignals && rejected(spy, "slow_consumer") == 0; sent++ {
		leecher.send(signaling.Signal{To: seeder.id, PairID: res.PairID, SDP: sdp})
	}
	if rejected(spy, "slow_consumer") == 0 {
		hubtest.WaitFor(t, testTimeout, "the slow reader to be dropped", func() bool { return rejected(spy, "slow_consumer") > 0 })
	}
	t.Logf("dropped after %d relayed signals (%d KiB)", sent, sent*60)
	if u := waitRaw[signaling.Unpair](leecher); u.PairID != res.PairID || u.Reason != signaling.ReasonPeerLeft {
		t.Fatalf("leecher got %+v", u)
	}
	hubtest.WaitFor(t, testTimeout, "the slow reader to leave", func() bool { return h.Peers() == 1 })
	// Its connection is gone: reading now ends with an error.
	go seeder.read()
	select {
	case err := <-seeder.closed:
		t.Logf("slow reader's connection ended: %v", err)
	case <-seeder.ctx.Done():
		t.Fatal("slow reader's connection still open")
	}
	leecher.send(signaling.Signal{To: seeder.id, PairID: res.PairID, SDP: sdp})
	if e := waitRaw[signaling.Error](leecher); e.Code != signaling.CodeNotPaired {
		t.Fatalf("relay after the drop: %+v", e)
	}
}

// TestHelloTimeout: a connection that never says hello is closed and counted.
func TestHelloTimeout(t *testing.T) {
	t.Parallel()
	spy := hubtest.NewSpy()
	srv := hubtest.New(t, hub.Config{Metrics: spy, HelloTimeout: 200 * time.Millisecond})
	h, url := srv.Hub, srv.WSURL
	r := dialRaw(t, url)
	go r.read()
	if s := r.closeStatus(); s != websocket.StatusPolicyViolation {
		t.Fatalf("close status %v, want 1008", s)
	}
	if n := rejected(spy, "hello_timeout"); n != 1 {
		t.Fatalf("hello_timeout counted %d times", n)
	}
	hubtest.WaitFor(t, testTimeout, "the hub to drop the connection", func() bool {
		conns, _, open := h.Tracked()
		return conns == 0 && open == 0
	})
}

// TestDataChannelHostileMessages: on the hub's DataChannel a binary message
// is answered bad_request, and a message larger than any the chunk protocol
// allows drops the peer (its WebSocket closes with a policy violation).
func TestDataChannelHostileMessages(t *testing.T) {
	t.Parallel()
	tr := testtrack.New(90, 4, testtrack.Size(500))
	spy := hubtest.NewSpy()
	url := hubtest.New(t, hub.Config{Metrics: spy}, hubtest.WithTracks(tr)).WSURL
	c := connect(t, url, clientAPI(), signaling.Hello{})

	if err := c.dc.Send([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if m, ok := c.nextText().(chunkproto.Error); !ok || m.Code != chunkproto.CodeBadRequest {
		t.Fatalf("binary message answered %#v, want error bad_request", m)
	}
	// The channel still works.
	c.dcSend(chunkproto.Request{ID: 1, Track: tr.ID(), From: 0, To: 4})
	c.receiveRange(tr, 1, 0, 4)

	if err := c.dc.SendText(strings.Repeat(" ", chunkproto.MaxTextSize+1)); err != nil {
		t.Fatal(err)
	}
	if s := c.closeStatus(); s != websocket.StatusPolicyViolation {
		t.Fatalf("close status %v, want policy violation", s)
	}
	if n := spy.Counts().Rejected["too_large"]; n != 1 {
		t.Errorf("too_large counted %d times, want 1", n)
	}
}

// TestPerIPCapBehindProxy: behind a trusted reverse proxy (loopback here)
// the per-address cap counts the clients X-Forwarded-For names; the same
// header from an untrusted address changes nothing.
func TestPerIPCapBehindProxy(t *testing.T) {
	t.Parallel()
	from := func(ip string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"X-Forwarded-For": {ip}}}
	}
	trusted, err := clientip.Parse("127.0.0.0/8,::1")
	if err != nil {
		t.Fatal(err)
	}
	url := hubtest.New(t, hub.Config{Metrics: hubtest.NewSpy(), MaxPeersPerIP: 1, ClientIP: trusted}).WSURL
	if _, _, err := dialRawOpts(t, url, from("198.51.100.1")); err != nil {
		t.Fatalf("first client: %v", err)
	}
	if _, _, err := dialRawOpts(t, url, from("198.51.100.2")); err != nil {
		t.Fatalf("another client behind the same proxy: %v", err)
	}
	if _, resp, err := dialRawOpts(t, url, from("198.51.100.1")); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second connection of the first client: %v; want 429", err)
	}

	untrusted := hubtest.New(t, hub.Config{Metrics: hubtest.NewSpy(), MaxPeersPerIP: 1}).WSURL
	if _, _, err := dialRawOpts(t, untrusted, from("198.51.100.1")); err != nil {
		t.Fatalf("first client: %v", err)
	}
	if _, resp, err := dialRawOpts(t, untrusted, from("198.51.100.2")); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a forged X-Forwarded-For without a trusted proxy: %v; want 429 (one address)", err)
	}
}
