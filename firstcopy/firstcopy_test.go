package firstcopy

import (
	"testing"
	"time"
)

// TestClaim: a first-copy request gets the first run of chunks no other
// connected peer got within the ttl, at most a stripe; its own chunks,
// expired marks and marks of disconnected peers do not count.
func TestClaim(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := New(20*time.Second, 8)
	online := map[string]bool{"a": true, "b": true}
	connected := func(p string) bool { return online[p] }
	claim := func(peer string, from, to int, now time.Time) [2]int {
		s, e := c.Claim("t", from, to, peer, connected, now)
		return [2]int{s, e}
	}
	if got := claim("a", 0, 32, t0); got != [2]int{0, 8} {
		t.Fatalf("cold track: %v, want the first stripe [0 8)", got)
	}
	for seq := range 8 {
		c.Note("t", seq, "a", t0)
	}
	if got := claim("b", 0, 32, t0.Add(time.Second)); got != [2]int{8, 16} {
		t.Errorf("b after a got [0 8): %v, want [8 16)", got)
	}
	if got := claim("a", 0, 4, t0.Add(time.Second)); got != [2]int{0, 4} {
		t.Errorf("a's own chunks: %v, want them", got)
	}
	if got := claim("b", 0, 8, t0.Add(time.Second)); got[0] != got[1] {
		t.Errorf("everything went to a: %v, want nothing", got)
	}
	if got := claim("b", 0, 8, t0.Add(21*time.Second)); got != [2]int{0, 8} {
		t.Errorf("marks older than the ttl: %v, want [0 8)", got)
	}
	online["a"] = false
	if got := claim("b", 0, 8, t0.Add(time.Second)); got != [2]int{0, 8} {
		t.Errorf("a disconnected: %v, want [0 8)", got)
	}
	c.Note("t", 5, "a", t0)
	online["a"] = true
	if got := claim("b", 2, 32, t0.Add(time.Second)); got != [2]int{8, 16} {
		t.Errorf("from 2: %v, want [8 16) (2–7 went to a)", got)
	}
}

// TestBounded: marks expire after the ttl, a mark noted again lives on, and
// the marks kept never pass MaxMarks, however many chunks are sent.
func TestBounded(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := New(10*time.Second, 8)
	c.Note("t", 0, "a", t0)
	c.Note("t", 1, "a", t0)
	c.Note("t", 0, "b", t0.Add(8*time.Second)) // chunk 0 again, to b
	c.Note("t", 2, "a", t0.Add(11*time.Second))
	if n := c.Len(); n != 2 {
		t.Errorf("%d marks after the ttl, want 2 (chunk 0 noted again, chunk 2)", n)
	}
	for i := range 3 * MaxMarks {
		c.Note("u", i, "a", t0.Add(12*time.Second))
	}
	if n := c.Len(); n > MaxMarks {
		t.Errorf("%d marks, want at most %d", n, MaxMarks)
	}
	c.Note("u", -1, "a", t0.Add(30*time.Second))
	if n := c.Len(); n != 1 {
		t.Errorf("%d marks once all expired, want 1", n)
	}
}
