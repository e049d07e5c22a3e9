package hub_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/mongostore"
	"github.com/ztream/ztream/signaling"
	"github.com/ztream/ztream/store"
)

// gatedStore holds the next range read opened while armed before its
// chunk gateAt, until release is closed; reached is closed when it waits.
type gatedStore struct {
	store.Store
	armed   atomic.Bool
	gateAt  int
	reached chan struct{}
	release chan struct{}
}

func (s *gatedStore) ReadChunks(ctx context.Context, id string, from, to int) (store.ChunkIterator, error) {
	it, err := s.Store.ReadChunks(ctx, id, from, to)
	if err != nil || !s.armed.CompareAndSwap(true, false) {
		return it, err
	}
	return &gatedIter{ChunkIterator: it, s: s}, nil
}

type gatedIter struct {
	store.ChunkIterator
	s *gatedStore
	n int
}

func (it *gatedIter) Next() bool {
	if it.n == it.s.gateAt {
		close(it.s.reached)
		<-it.s.release
	}
	it.n++
	return it.ChunkIterator.Next()
}

// ferret is an embedded FerretDB that can be stopped and started again on
// the same port and data directory, like a database server restarting.
type ferret struct {
	t    *testing.T
	dir  string
	addr string
	stop func()
}

func newFerret(t *testing.T) *ferret {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f := &ferret{t: t, dir: t.TempDir(), addr: addr}
	f.start()
	t.Cleanup(func() {
		if f.stop != nil {
			f.stop()
		}
	})
	return f
}

func (f *ferret) start() {
	f.t.Helper()
	db, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: f.addr},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler:   "sqlite",
		SQLiteURL: "file:" + filepath.ToSlash(f.dir) + "/",
	})
	if err != nil {
		f.t.Fatalf("FerretDB: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- db.Run(ctx) }()
	_ = db.MongoDBURI() // blocks until the listener is bound
	f.stop = func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("FerretDB run: %v", err)
		}
		f.stop = nil
	}
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// nextTextOrChunks skips chunks until a text message arrives.
func (c *client) nextTextSkippingChunks() (chunkproto.Message, int) {
	c.t.Helper()
	skipped := 0
	for {
		select {
		case m := <-c.text:
			return m, skipped
		case <-c.chunks:
			skipped++
		case <-c.ctx.Done():
			c.t.Fatal("no text message on the data channel in time")
		}
	}
}

// TestStoreOutage: MongoDB (FerretDB) goes away while the hub streams and
// comes back. During the outage, requests and the range in flight fail
// fast with DataChannel error unavailable, the HTTP API and /healthz answer
// 503; afterwards everything works again without restarting the hub.
func TestStoreOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts FerretDB")
	}
	db := newFerret(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ms, err := mongostore.Open(ctx, fmt.Sprintf("mongodb://%s/ztream_outage", db.addr),
		mongostore.WithPingTimeout(time.Second), mongostore.WithOpTimeout(2*time.Second), mongostore.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ms.Close() })
	tr := testtrack.New(50, 40, testtrack.Size(4<<10))
	if err := ms.PutTrack(ctx, tr.Manifest, tr.Source()); err != nil {
		t.Fatal(err)
	}
	// The range read in flight stops before chunk 12, past the first
	// cursor batch (8) and before the third.
	gs := &gatedStore{Store: ms, gateAt: 12, reached: make(chan struct{}), release: make(chan struct{})}
	// The hub and the HTTP API (manifests, /healthz) on the same store.
	srv := hubtest.New(t, hub.Config{StoreTimeout: 2 * time.Second}, hubtest.WithStore(gs))
	url, web := srv.WSURL, srv.HTTP
	manifestURL := web.URL + "/api/tracks/" + tr.ID()

	c := connect(t, url, clientAPI(), signaling.Hello{})
	// Before: streaming works.
	c.dcSend(chunkproto.Request{ID: 1, Track: tr.ID(), From: 0, To: 20})
	c.receiveRange(tr, 1, 0, 20)
	if s := httpStatus(t, web.URL+"/healthz"); s != http.StatusOK {
		t.Fatalf("healthz before: %d", s)
	}

	// A range in flight when the database goes away.
	gs.armed.Store(true)
	c.dcSend(chunkproto.Request{ID: 2, Track: tr.ID(), From: 0, To: tr.Len()})
	select {
	case <-gs.reached:
	case <-c.ctx.Done():
		t.Fatal("the range did not start")
	}
	db.stop()
	start := time.Now()
	close(gs.release)
	m, got := c.nextTextSkippingChunks()
	if e, ok := m.(chunkproto.Error); !ok || e.ID != 2 || e.Code != chunkproto.CodeUnavailable {
		t.Fatalf("range in flight during the outage: %#v", m)
	}
	t.Logf("range in flight failed after %d chunks, %v after the outage", got, time.Since(start).Round(time.Millisecond))
	if got >= tr.Len() {
		t.Fatal("the whole range arrived: the outage did not hit it")
	}
	// New requests fail fast too (a track the hub has not cached).
	start = time.Now()
	c.dcSend(chunkproto.Request{ID: 3, Track: tr.ID(), From: 5, To: 6})
	if e, ok := c.nextText().(chunkproto.Error); !ok || e.ID != 3 || e.Code != chunkproto.CodeUnavailable {
		t.Fatalf("request during the outage: %#v", e)
	}
	t.Logf("request during the outage failed in %v", time.Since(start).Round(time.Millisecond))
	if s := httpStatus(t, manifestURL); s != http.StatusServiceUnavailable {
		t.Fatalf("manifest during the outage: %d, want 503", s)
	}
	if s := httpStatus(t, web.URL+"/healthz"); s != http.StatusServiceUnavailable {
		t.Fatalf("healthz during the outage: %d, want 503", s)
	}

	// After: the same server comes back; the hub streams again.
	db.start()
	id := uint32(10)
	hubtest.WaitFor(t, testTimeout, "the hub to stream again", func() bool {
		id++
		c.dcSend(chunkproto.Request{ID: id, Track: tr.ID(), From: 0, To: 1})
		m, _ := c.nextTextSkippingChunks()
		if m == (chunkproto.Done{ID: id}) {
			return true
		}
		if e, ok := m.(chunkproto.Error); !ok || e.Code != chunkproto.CodeUnavailable {
			t.Fatalf("after the restart: %#v", m)
		}
		return false
	})
	c.dcSend(chunkproto.Request{ID: 100, Track: tr.ID(), From: 0, To: tr.Len()})
	c.receiveRange(tr, 100, 0, tr.Len())
	if s := httpStatus(t, manifestURL); s != http.StatusOK {
		t.Fatalf("manifest after the restart: %d", s)
	}
	if s := httpStatus(t, web.URL+"/healthz"); s != http.StatusOK {
		t.Fatalf("healthz after the restart: %d", s)
	}
}
