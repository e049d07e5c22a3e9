package origin

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestClientLimitsBound: the counts kept are bounded; past the bound the
// newcomers share one, and counts whole again are forgotten to make room.
func TestClientLimitsBound(t *testing.T) {
	l := newClientLimits(1)
	now := time.Unix(1_700_000_000, 0)
	for i := range maxClientLimits {
		if err := l.take(fmt.Sprint("c", i), now); err != nil {
			t.Fatalf("client %d's first fetch: %v", i, err)
		}
	}
	if err := l.take("c0", now); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("c0's second fetch within the minute: %v", err)
	}
	if err := l.take("newcomer1", now); err != nil {
		t.Fatalf("the first newcomer past the bound: %v", err)
	}
	err := l.take("newcomer2", now)
	var le *limitedError
	if !errors.As(err, &le) || le.retry != time.Minute {
		t.Fatalf("the second newcomer (sharing the first's count): %v, want a wait of 1m", err)
	}
	if len(l.byClient) > maxClientLimits+1 {
		t.Fatalf("%d counts kept, bound %d", len(l.byClient), maxClientLimits+1)
	}
	later := now.Add(time.Minute)
	if err := l.take("newcomer3", later); err != nil {
		t.Fatalf("a newcomer once the counts refilled: %v", err)
	}
	if len(l.byClient) != 1 {
		t.Errorf("%d counts kept after the refill, want only the newcomer's", len(l.byClient))
	}
	if err := l.take("", later); err != nil {
		t.Errorf("the server's own fetch: %v", err)
	}
	if err := newClientLimits(-1).take("c", now); err != nil {
		t.Errorf("no bound: %v", err)
	}
}
