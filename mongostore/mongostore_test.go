package mongostore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ztream/ztream/internal/ferrettest"
	"github.com/ztream/ztream/store"
	"github.com/ztream/ztream/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// dbCounter makes database names unique within this test process.
var dbCounter atomic.Int64

// opener returns a newStore function that opens a fresh database on the
// server at uri for every call and drops it when the test ends.
func opener(uri string, opts ...Option) func(t *testing.T) store.Store {
	run := time.Now().UTC().Format("20060102T150405")
	return func(t *testing.T) store.Store { return openFresh(t, uri, run, opts...) }
}

func openFresh(t *testing.T, uri, run string, opts ...Option) *Store {
	t.Helper()
	name := fmt.Sprintf("ztream_test_%s_%d_%d", run, os.Getpid(), dbCounter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, uri, append([]Option{WithDatabase(name), WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Drop(ctx); err != nil {
			t.Errorf("Drop: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// ferretOptions keeps the FerretDB runs reasonably short: its SQLite backend
// answers every query but _id equality with a scan of the whole collection,
// so the default 19 MiB "large" tracks, written and discarded a dozen times,
// dominate the run time without testing anything more in this store. Under
// the race detector the long track of the memory test shrinks too, to 1000
// chunks (31 MiB) with the limit lowered to 8 MiB, so that the test can
// still fail for a store that buffers the range.
func ferretOptions() storetest.Options {
	if raceEnabled {
		return storetest.Options{LargeChunks: 40, MemoryChunks: 1000, MemoryLimit: 8 << 20}
	}
	return storetest.Options{LargeChunks: 150}
}

// startFerret starts an embedded FerretDB and returns its URI. Under the race
// detector FerretDB's SQLite backend is slow enough that the driver's server
// monitoring check fails while a long scan runs; the driver then marks the
// server unknown and interrupts every in-use connection ("client timed out
// waiting for server response"). Polling monitoring with a long interval and
// a long connect timeout keep the monitor out of the way of the tests.
func startFerret(t *testing.T) string {
	return ferrettest.Start(t) + "?connectTimeoutMS=600000&heartbeatFrequencyMS=3600000&serverMonitoringMode=poll"
}

func TestConformanceFerretDB(t *testing.T) {
	uri := startFerret(t)
	storetest.RunWithOptions(t, opener(uri), ferretOptions())
}

// TestConformanceFerretDBSorted runs the suite with the sorted Find that real
// MongoDB uses. FerretDB's SQLite backend evaluates that query by
// loading and sorting the whole result inside this test process, so the
// bounded-memory test cannot measure this client there and is skipped.
func TestConformanceFerretDBSorted(t *testing.T) {
	uri := startFerret(t)
	opts := ferretOptions()
	opts.SkipMemory = true
	storetest.RunWithOptions(t, opener(uri, WithReadMode(ReadSorted)), opts)
}

// TestConformanceMongoDB runs the suite against the MongoDB named by
// ZTREAM_TEST_MONGO_URI, each subtest in its own database, dropped at the end.
func TestConformanceMongoDB(t *testing.T) {
	uri := os.Getenv("ZTREAM_TEST_MONGO_URI")
	if uri == "" {
		t.Skip("ZTREAM_TEST_MONGO_URI not set")
	}
	newStore := opener(uri)
	if s := newStore(t); s.(*Store).ReadMode() != ReadSorted {
		t.Logf("server detected as FerretDB: read mode %v", s.(*Store).ReadMode())
	}
	storetest.Run(t, newStore)
}

func TestReadModeDetection(t *testing.T) {
	uri := ferrettest.Start(t)
	s := openFresh(t, uri, "detect")
	if s.ReadMode() != ReadNatural {
		t.Errorf("against FerretDB ReadMode() = %v, want natural", s.ReadMode())
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestOpenUnreachable(t *testing.T) {
	addr := closedPort(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, "mongodb://ztream:s3cr3t-pw@"+addr+"/ztream?authSource=admin",
		WithPingTimeout(2*time.Second), WithLogger(quiet))
	elapsed := time.Since(start)
	if err == nil {
		_ = s.Close()
		t.Fatal("Open against a closed port succeeded")
	}
	t.Logf("Open failed after %v: %v", elapsed.Round(time.Millisecond), err)
	if want := "mongostore: cannot reach MongoDB at " + addr; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error leaks the password: %v", err)
	}
	if elapsed > 10*time.Second {
		t.Errorf("Open took %v to fail, want a few seconds", elapsed)
	}
}

func TestOpenInvalidURIHidesIt(t *testing.T) {
	_, err := Open(context.Background(), "mongodb://user:s3cr3t@host:notaport/", WithLogger(quiet))
	if err == nil {
		t.Fatal("Open with an invalid URI succeeded")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error leaks the password: %v", err)
	}
}

// TestCleanup simulates two crashes: one before the commit (chunks of an
// uncommitted generation) and one after it (the replaced generation's chunks
// and the staging record left behind).
func TestCleanup(t *testing.T) {
	uri := ferrettest.Start(t)
	s := openFresh(t, uri, "cleanup")
	ctx := context.Background()
	old := time.Now().UTC().Add(-2 * time.Hour)

	insertChunks := func(id, gen string, n int) {
		t.Helper()
		var docs []any
		for seq := 0; seq < n; seq++ {
			docs = append(docs, chunkDoc{ID: chunkID(id, gen, seq), TrackID: id, Gen: gen, Seq: seq, Data: []byte("x")})
		}
		if _, err := s.chunks.InsertMany(ctx, docs); err != nil {
			t.Fatalf("insert chunks: %v", err)
		}
	}
	stage := func(id, gen string, at time.Time) {
		t.Helper()
		if _, err := s.staging.InsertOne(ctx, stagingDoc{Gen: gen, TrackID: id, StartedAt: at}); err != nil {
			t.Fatalf("insert staging: %v", err)
		}
	}

	// Crash before commit.
	stage("aaaa", "g1", old)
	insertChunks("aaaa", "g1", 5)
	// Crash after commit: track bbbb uses g3, g2's chunks were not deleted.
	insertChunks("bbbb", "g2", 4)
	stage("bbbb", "g3", old)
	insertChunks("bbbb", "g3", 3)
	if _, err := s.tracks.InsertOne(ctx, bson.D{{Key: "_id", Value: "bbbb"}, {Key: "gen", Value: "g3"}, {Key: "chunk_count", Value: 3}}); err != nil {
		t.Fatal(err)
	}
	// A put in progress (recent staging record) must be spared.
	stage("cccc", "g4", time.Now().UTC())
	insertChunks("cccc", "g4", 2)

	n, err := s.Cleanup(ctx, time.Hour)
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if n != 2 {
		t.Errorf("Cleanup processed %d staging records, want 2", n)
	}
	for id, want := range map[string]int{"aaaa": 0, "bbbb": 3, "cccc": 2} {
		if got, err := s.ChunkRecords(ctx, id); err != nil || got != want {
			t.Errorf("ChunkRecords(%s) = %d, %v; want %d", id, got, err, want)
		}
	}
	if left, err := s.staging.CountDocuments(ctx, bson.D{}); err != nil || left != 1 {
		t.Errorf("staging records left = %d, %v; want 1", left, err)
	}
}
