package boltstore

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ztream/ztream/store"
	"github.com/ztream/ztream/store/storetest"
)

func openTemp(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// TestConformanceSmallBatches forces the multi-transaction put path on every
// track of more than a few chunks.
func TestConformanceSmallBatches(t *testing.T) {
	storetest.RunWithOptions(t, func(t *testing.T) store.Store {
		s := openTemp(t, WithBatchBytes(4<<10))
		s.db.NoSync = true // thousands of tiny transactions: skip fsync in this test
		return s
	}, storetest.Options{SkipMemory: true, LargeChunks: 150})
}

func TestOpenLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	start := time.Now()
	_, err = Open(dir, WithLockTimeout(200*time.Millisecond))
	if err == nil {
		t.Fatal("second Open of a locked database succeeded")
	}
	if !strings.Contains(err.Error(), "is another ztream running with --data "+dir+"?") {
		t.Errorf("error does not explain the lock: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("second Open took %v", d)
	}
}

// TestOpenCleansInterruptedPut simulates a crash in the middle of a
// multi-transaction put: chunks and the pending marker are on disk, the
// manifest is not. Open must remove them.
func TestOpenCleansInterruptedPut(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	const id = "0123456789abcdef"
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketPending).Put([]byte(id), []byte("now")); err != nil {
			return err
		}
		for seq := 0; seq < 20; seq++ {
			if err := tx.Bucket(bucketChunks).Put(chunkKey(id, seq), []byte("partial")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("simulate crash: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	if n, err := s.ChunkRecords(ctx, id); err != nil || n != 0 {
		t.Errorf("after reopen: %d chunk records (err %v), want 0", n, err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketPending).Get([]byte(id)) != nil {
			return errors.New("pending marker still present")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
