package sim

import "slices"

// lru is a listener's track cache: tracks by recency (most recent last)
// within a byte budget. A slice: a cache holds some hundred tracks, and a
// listener's cache is touched a few times per track played, so a scan is
// cheap and keeps 100,000s of listeners small in memory.
type lru struct {
	budget, size int64
	tracks       []trackID
	bytes        []int32
}

func newLRU(budget int64) *lru { return &lru{budget: budget} }

func (c *lru) index(t trackID) int { return slices.Index(c.tracks, t) }

func (c *lru) has(t trackID) bool { return c.index(t) >= 0 }

// touch makes t the most recent; it reports whether the cache holds t.
func (c *lru) touch(t trackID) bool {
	i := c.index(t)
	if i < 0 {
		return false
	}
	if i == len(c.tracks)-1 {
		return true
	}
	b := c.bytes[i]
	c.tracks = append(slices.Delete(c.tracks, i, i+1), t)
	c.bytes = append(slices.Delete(c.bytes, i, i+1), b)
	return true
}

// put adds t (the most recent) and returns the tracks evicted to make room.
// A track larger than the budget is not kept.
func (c *lru) put(t trackID, bytes int64) []trackID {
	if bytes > c.budget {
		return nil
	}
	if c.touch(t) {
		return nil
	}
	n := 0
	for c.size+bytes > c.budget && n < len(c.tracks) {
		c.size -= int64(c.bytes[n])
		n++
	}
	evicted := slices.Clone(c.tracks[:n])
	c.tracks = append(c.tracks[n:], t)
	c.bytes = append(c.bytes[n:], int32(bytes))
	c.size += bytes
	return evicted
}

// recent returns up to n tracks, most recent first.
func (c *lru) recent(n int) []trackID {
	out := make([]trackID, 0, min(n, len(c.tracks)))
	for i := len(c.tracks) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, c.tracks[i])
	}
	return out
}
