package hub_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/signaling"
	"github.com/ztream/ztream/store"
)

// countingStore counts the chunk iterators that are open.
type countingStore struct {
	store.Store
	open atomic.Int64
}

func (s *countingStore) ReadChunks(ctx context.Context, id string, from, to int) (store.ChunkIterator, error) {
	it, err := s.Store.ReadChunks(ctx, id, from, to)
	if err != nil {
		return nil, err
	}
	s.open.Add(1)
	return &countingIter{ChunkIterator: it, s: s}, nil
}

type countingIter struct {
	store.ChunkIterator
	s    *countingStore
	once sync.Once
}

func (it *countingIter) Close() error {
	it.once.Do(func() { it.s.open.Add(-1) })
	return it.ChunkIterator.Close()
}

// settle waits until the goroutine count is at most limit.
func settle(t *testing.T, what string, limit int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > limit {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%s: %d goroutines, want at most %d\n%s", what, runtime.NumGoroutine(), limit, buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDisconnectMidRange: a peer that vanishes in the middle of a long
// range leaves nothing behind: its sender goroutine ends, the store
// iterator is closed, the hub forgets it.
func TestDisconnectMidRange(t *testing.T) {
	tr := testtrack.New(30, 1000, testtrack.Size(16<<10)) // 16 MiB
	st := &countingStore{Store: hubtest.OpenStore(t, tr)}
	spy := hubtest.NewSpy()
	srv := hubtest.New(t, hub.Config{Metrics: spy}, hubtest.WithStore(st))
	h, url := srv.Hub, srv.WSURL
	api := clientAPI()
	base := runtime.NumGoroutine()

	c := connect(t, url, api, signaling.Hello{})
	c.dcSend(chunkproto.Request{ID: 1, Track: tr.ID(), From: 0, To: tr.Len()})
	for range 10 {
		c.nextChunk()
	}
	if st.open.Load() != 1 {
		t.Fatalf("%d iterators open, want 1", st.open.Load())
	}
	_ = c.pc.Close()
	_ = c.ws.CloseNow()

	hubtest.WaitFor(t, testTimeout, "the hub to forget the peer", func() bool {
		return h.Peers() == 0 && spy.Counts().Connected == 0
	})
	if n := st.open.Load(); n != 0 {
		t.Fatalf("%d store iterators left open", n)
	}
	if n := h.ActiveRanges(); n != 0 {
		t.Fatalf("%d ranges still counted", n)
	}
	if sent := spy.Counts().Chunks; sent >= tr.Len() {
		t.Fatalf("the range finished (%d chunks): the test did not disconnect mid-range", sent)
	}
	settle(t, "after the disconnect", base+3)
}

// stormConn is one short-lived connection: WebSocket and hello, and with
// withPC the hub PeerConnection up to an open DataChannel. abrupt drops the
// TCP connection instead of closing the WebSocket.
func stormConn(ctx context.Context, url string, api *webrtc.API, withPC, abrupt bool) error {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer func() {
		if abrupt {
			_ = ws.CloseNow()
		} else {
			_ = ws.Close(websocket.StatusNormalClosure, "")
		}
	}()
	write := func(m signaling.Message) error {
		b, err := signaling.Encode(m)
		if err != nil {
			return err
		}
		return ws.Write(ctx, websocket.MessageText, b)
	}
	if err := write(signaling.Hello{Version: signaling.Version}); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	_, data, err := ws.Read(ctx)
	if err != nil {
		return fmt.Errorf("read welcome: %w", err)
	}
	if m, err := signaling.Decode(data); err != nil || m.MessageType() != signaling.TypeWelcome {
		return fmt.Errorf("first message %s (%v)", data, err)
	}
	if !withPC {
		return nil
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	defer func() { _ = pc.Close() }()
	opened := make(chan struct{})
	var once sync.Once
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			init := c.ToJSON()
			_ = write(signaling.Signal{To: signaling.HubID, Candidate: &init})
		}
	})
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnOpen(func() { once.Do(func() { close(opened) }) })
	})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readErr := make(chan error, 1)
	go func() {
		for {
			_, data, err := ws.Read(rctx)
			if err != nil {
				readErr <- err
				return
			}
			m, err := signaling.Decode(data)
			if err != nil {
				continue
			}
			s, ok := m.(signaling.Signal)
			switch {
			case !ok:
			case s.Candidate != nil:
				_ = pc.AddICECandidate(*s.Candidate)
			case s.SDP != nil && s.SDP.Type == webrtc.SDPTypeOffer:
				if err := pc.SetRemoteDescription(*s.SDP); err != nil {
					readErr <- err
					return
				}
				answer, err := pc.CreateAnswer(nil)
				if err == nil {
					err = pc.SetLocalDescription(answer)
				}
				if err == nil {
					err = write(signaling.Signal{To: signaling.HubID, SDP: &answer})
				}
				if err != nil {
					readErr <- err
					return
				}
			}
		}
	}()
	select {
	case <-opened:
		return nil
	case err := <-readErr:
		return fmt.Errorf("before the data channel opened: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("data channel: %w", ctx.Err())
	}
}

// quiescent waits until the goroutine count stops changing (the same for
// 100 ms of polls) and returns it: the baseline of a leak check.
func quiescent(t *testing.T) int {
	t.Helper()
	n, since := runtime.NumGoroutine(), time.Now()
	hubtest.WaitFor(t, testTimeout, "the goroutine count to settle", func() bool {
		if m := runtime.NumGoroutine(); m != n {
			n, since = m, time.Now()
		}
		return time.Since(since) >= 100*time.Millisecond
	})
	return n
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestConnectionStorm: 300 short-lived connections, half of them with a
// PeerConnection, in waves; afterwards the hub has no peer, its goroutines
// and heap are back near idle, and a new peer streams normally.
func TestConnectionStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("storm test skipped in -short mode")
	}
	tr := testtrack.New(31, 30, testtrack.Sizes(varied))
	st := &countingStore{Store: hubtest.OpenStore(t, tr)}
	spy := hubtest.NewSpy()
	srv := hubtest.New(t, hub.Config{Metrics: spy, MaxPeersPerIP: 64}, hubtest.WithStore(st))
	h, url := srv.Hub, srv.WSURL
	api := clientAPI()

	// Warm up (first PeerConnection, store caches), then take the baseline.
	warm := connect(t, url, api, signaling.Hello{})
	warm.dcSend(chunkproto.Request{ID: 1, Track: tr.ID(), From: 0, To: tr.Len()})
	warm.receiveRange(tr, 1, 0, tr.Len())
	_ = warm.pc.Close()
	_ = warm.ws.CloseNow()
	hubtest.WaitFor(t, testTimeout, "the warm-up peer to leave", func() bool { return h.Peers() == 0 })
	baseG := quiescent(t)
	baseHeap := heapInuse()

	const total, wave = 300, 20
	start := time.Now()
	var failed atomic.Int64
	var firstErr atomic.Value
	for w := 0; w < total; w += wave {
		var wg sync.WaitGroup
		for i := w; i < w+wave; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				if err := stormConn(ctx, url, api, i%2 == 0, (i/2)%2 == 0); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}()
		}
		wg.Wait()
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d storm connections failed, first: %v", n, total, firstErr.Load())
	}
	t.Logf("storm of %d connections took %v", total, time.Since(start).Round(time.Millisecond))

	hubtest.WaitFor(t, testTimeout, "every storm peer to leave", func() bool {
		return h.Peers() == 0 && spy.Counts().Connected == 0
	})
	if conns, perIP, _ := h.Tracked(); conns != 0 || perIP != 0 {
		t.Fatalf("hub still tracks %d connections, %d addresses", conns, perIP)
	}
	settle(t, "after the storm", baseG+10)
	heap := heapInuse()
	t.Logf("heap in use: %d KiB before, %d KiB after; goroutines %d before, %d after",
		baseHeap>>10, heap>>10, baseG, runtime.NumGoroutine())
	if heap > baseHeap+20<<20 {
		t.Fatalf("heap in use grew from %d to %d bytes", baseHeap, heap)
	}

	c := connect(t, url, api, signaling.Hello{})
	c.dcSend(chunkproto.Request{ID: 2, Track: tr.ID(), From: 0, To: tr.Len()})
	c.receiveRange(tr, 2, 0, tr.Len())
	if st.open.Load() != 0 {
		t.Fatalf("%d iterators open", st.open.Load())
	}
}

// TestShutdownDrainsRanges: Shutdown refuses new connections and requests,
// lets the range in flight finish (done arrives), then closes with 1001;
// with a deadline too short it cuts the range and says so.
func TestShutdownDrainsRanges(t *testing.T) {
	t.Parallel()
	tr := bigTrack(32)
	st := hubtest.OpenStore(t, tr)
	spy := hubtest.NewSpy()
	const window = 128 << 10
	srv := hubtest.New(t, hub.Config{Metrics: spy, SendWindow: window}, hubtest.WithStore(st))
	h, url := srv.Hub, srv.WSURL
	api := clientAPI()
	c := connect(t, url, api, signaling.Hello{})
	other := connect(t, url, api, signaling.Hello{})

	c.pause.Lock() // the range cannot finish while c does not read
	c.dcSend(chunkproto.Request{ID: 1, Track: tr.ID(), From: 0, To: tr.Len()})
	hubtest.WaitFor(t, testTimeout, "the range to fill the window", func() bool {
		return spy.Counts().Buffered >= window
	})
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		done <- h.Shutdown(ctx)
	}()
	hubtest.WaitFor(t, testTimeout, "draining to start", h.Draining)

	if _, resp, err := dialRawOpts(t, url, nil); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("new connection while draining: %v %+v, want 503", err, resp)
	}
	other.dcSend(chunkproto.Request{ID: 5, Track: tr.ID(), From: 0, To: 2})
	if e, ok := other.nextText().(chunkproto.Error); !ok || e.ID != 5 || e.Code != chunkproto.CodeUnavailable {
		t.Fatalf("request while draining: %#v", e)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a range in flight", err)
	default:
	}
	c.pause.Unlock()
	c.receiveRange(tr, 1, 0, tr.Len())
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if s := c.closeStatus(); s != websocket.StatusGoingAway {
		t.Fatalf("close status %v, want 1001", s)
	}

	// A deadline too short for the range: it is cut, Shutdown says so.
	srv2 := hubtest.New(t, hub.Config{Metrics: hubtest.NewSpy(), SendWindow: window}, hubtest.WithStore(st))
	h2, url2 := srv2.Hub, srv2.WSURL
	c2 := connect(t, url2, api, signaling.Hello{})
	c2.pause.Lock()
	c2.dcSend(chunkproto.Request{ID: 1, Track: tr.ID(), From: 0, To: tr.Len()})
	hubtest.WaitFor(t, testTimeout, "the range to start", func() bool { return h2.ActiveRanges() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := h2.Shutdown(ctx)
	c2.pause.Unlock()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a short deadline: %v", err)
	}
	if s := c2.closeStatus(); s != websocket.StatusGoingAway {
		t.Fatalf("close status %v, want 1001", s)
	}
	if h2.Peers() != 0 || h2.ActiveRanges() != 0 {
		t.Fatalf("after shutdown: %d peers, %d ranges", h2.Peers(), h2.ActiveRanges())
	}
}
