// Package ferrettest starts an embedded FerretDB (SQLite handler) for tests,
// so that MongoDB-backed code can be tested against a real wire-protocol
// server without an external database.
package ferrettest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Start runs an embedded FerretDB with its SQLite data in a fresh t.TempDir(),
// listening on 127.0.0.1 on a free port, and returns its MongoDB URI (with a
// trailing "/" and no database name). FerretDB is stopped when the test ends.
func Start(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler:  "sqlite",
		// FerretDB wants a file: URI naming an existing directory, ending in "/".
		SQLiteURL: "file:" + filepath.ToSlash(dir) + "/",
	})
	if err != nil {
		t.Fatalf("ferrettest: start FerretDB: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ferrettest: FerretDB run: %v", err)
		}
	})
	// MongoDBURI blocks until the listener is bound, so it must follow Run.
	return f.MongoDBURI()
}

// DatabaseURI returns base (as returned by Start) with the database name db
// in its path.
func DatabaseURI(base, db string) string {
	if len(base) > 0 && base[len(base)-1] == '/' {
		return base + db
	}
	return fmt.Sprintf("%s/%s", base, db)
}
