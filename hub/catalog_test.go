package hub_test

import (
	"testing"
	"time"

	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/signaling"
)

// TestCatalogChanged: every connected peer hears that the library changed;
// changes close together make one message.
func TestCatalogChanged(t *testing.T) {
	hs := hubtest.New(t, hub.Config{})
	a := connect(t, hs.WSURL, clientAPI(), signaling.Hello{})
	b := connect(t, hs.WSURL, clientAPI(), signaling.Hello{})
	t0 := time.Now()
	for range 5 {
		hs.Hub.CatalogChanged()
	}
	waitFor[signaling.Catalog](a)
	waitFor[signaling.Catalog](b)
	t.Logf("catalog message %v after the change", time.Since(t0).Round(time.Millisecond))
	// The next change, right after: one more message, a second later at
	// the earliest; the five first made one.
	hs.Hub.CatalogChanged()
	waitFor[signaling.Catalog](a)
	if d := time.Since(t0); d < time.Second {
		t.Errorf("second catalog message %v after the first change, want ≥ 1 s", d)
	}
	for _, m := range a.backlog {
		if _, ok := m.(signaling.Catalog); ok {
			t.Error("changes close together made several catalog messages")
		}
	}
}
