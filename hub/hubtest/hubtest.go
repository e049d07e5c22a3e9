// Package hubtest starts a real hub for tests, in the spirit of
// net/http/httptest: a hub.Hub on loopback, served with Ztream's whole HTTP
// surface (server.NewHandler: the hub at /ws, the catalog API at /api,
// /healthz and, with WithMetrics, /metrics) by an httptest.Server, over a
// store (by default a fresh bolt store in a temporary directory) holding the
// synthetic tracks the test asks for. Everything is closed by t.Cleanup.
//
//	srv := hubtest.New(t, hub.Config{SendWindow: 128 << 10},
//		hubtest.WithTracks(testtrack.New(1, 40)))
//	ws, _, err := websocket.Dial(ctx, srv.WSURL, nil)
//
// The package also holds the helpers tests of the hub and of its clients
// share: Spy, a hub.Metrics that records every event, and WaitFor, a
// bounded poll of a condition.
package hubtest

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztream/ztream/boltstore"
	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/metrics"
	"github.com/ztream/ztream/metrics/hubmetrics"
	"github.com/ztream/ztream/server"
	"github.com/ztream/ztream/store"
)

// Server is a hub served over HTTP on 127.0.0.1.
type Server struct {
	// URL is the base URL of the server, http://127.0.0.1:port.
	URL string
	// WSURL is the hub's WebSocket endpoint, ws://127.0.0.1:port/ws.
	WSURL string
	// Addr is the listening address, 127.0.0.1:port.
	Addr string
	// Hub is the running hub.
	Hub *hub.Hub
	// Store is the store the hub and the API read (instrumented when
	// WithMetrics is given).
	Store store.Store
	// Tracks are the tracks WithTracks stored, in order.
	Tracks []*testtrack.Track
	// Metrics is the registry given to WithMetrics, or nil.
	Metrics *metrics.Metrics
	// HTTP is the underlying httptest server.
	HTTP *httptest.Server

	tb    testing.TB
	close sync.Once
}

// Option changes what New starts.
type Option func(*options)

type options struct {
	store   store.Store
	tracks  []*testtrack.Track
	metrics *metrics.Metrics
	addr    string
	handler func(s *Server) http.Handler
}

// WithStore serves st instead of a fresh bolt store; New does not close it.
func WithStore(st store.Store) Option { return func(o *options) { o.store = st } }

// WithTracks stores tracks before the hub starts.
func WithTracks(tracks ...*testtrack.Track) Option {
	return func(o *options) { o.tracks = append(o.tracks, tracks...) }
}

// WithMetrics records into met as `ztream serve` does: the store is
// instrumented, /metrics is served and, unless the hub.Config given to New
// has Metrics, the hub reports through hubmetrics.
func WithMetrics(met *metrics.Metrics) Option { return func(o *options) { o.metrics = met } }

// WithAddr listens on addr (host:port) instead of an ephemeral port, waiting
// up to 2 s for it to be free: a test restarts a hub on the address of one
// it closed.
func WithAddr(addr string) Option { return func(o *options) { o.addr = addr } }

// WithHandler serves the handler h returns instead of server.NewHandler;
// s.Hub and s.Store are set when it is called.
func WithHandler(h func(s *Server) http.Handler) Option {
	return func(o *options) { o.handler = h }
}

// New starts a hub with cfg and serves it until the test ends. Unless set in
// cfg, the hub gathers loopback ICE candidates only and logs nowhere (to
// stderr at debug level when HUB_TEST_LOG is set).
func New(tb testing.TB, cfg hub.Config, opts ...Option) *Server {
	tb.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	st := o.store
	if st == nil {
		st = OpenStore(tb)
	}
	testtrack.Put(tb, st, o.tracks...)
	s := &Server{Tracks: o.tracks, Metrics: o.metrics, tb: tb}
	if o.metrics != nil {
		st = o.metrics.InstrumentStore(st)
		if cfg.Metrics == nil {
			cfg.Metrics = hubmetrics.New(o.metrics, metrics.Limits{})
		}
	}
	s.Store = st
	cfg.IncludeLoopback = true
	if cfg.IPFilter == nil {
		cfg.IPFilter = LoopbackOnly
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	h, err := hub.New(cfg, st)
	if err != nil {
		tb.Fatalf("starting the hub: %v", err)
	}
	s.Hub = h
	var handler http.Handler
	if o.handler != nil {
		handler = o.handler(s)
	} else {
		handler = server.NewHandler(server.Config{Store: st, Metrics: o.metrics, Logger: cfg.Logger, Signaling: h})
	}
	srv := httptest.NewUnstartedServer(handler)
	if o.addr != "" {
		ln, err := listen(o.addr)
		if err != nil {
			_ = h.Close()
			tb.Fatalf("listening on %s: %v", o.addr, err)
		}
		_ = srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	s.HTTP = srv
	s.URL = srv.URL
	s.Addr = srv.Listener.Addr().String()
	s.WSURL = "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	tb.Cleanup(s.Close)
	return s
}

// Close stops the hub (its peers are told it goes away), then the HTTP
// server. It may be called more than once; the test's cleanup calls it.
func (s *Server) Close() {
	s.close.Do(func() {
		if err := s.Hub.Close(); err != nil {
			s.tb.Errorf("hub close: %v", err)
		}
		s.HTTP.Close()
	})
}

// listen binds addr, retrying while a previous listener's port frees up.
func listen(addr string) (net.Listener, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return ln, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// OpenStore opens a bolt store in a temporary directory, closed when the
// test ends, holding tracks.
func OpenStore(tb testing.TB, tracks ...*testtrack.Track) *boltstore.Store {
	tb.Helper()
	st, err := boltstore.Open(tb.TempDir())
	if err != nil {
		tb.Fatalf("opening a bolt store: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	testtrack.Put(tb, st, tracks...)
	return st
}

// LoopbackOnly is an ICE address filter keeping loopback addresses.
func LoopbackOnly(ip net.IP) bool { return ip.IsLoopback() }

// testLogger discards, or logs everything to stderr when HUB_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("HUB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// WaitFor polls cond every few milliseconds until it holds, failing the test
// if it does not within timeout. It replaces fixed sleeps in tests: it
// returns as soon as the awaited state is reached.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
