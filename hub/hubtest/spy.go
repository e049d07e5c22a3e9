package hubtest

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/signaling"
)

// Spy is a hub.Metrics that records the hub's metric events; Counts returns
// what it recorded so far. It is safe for concurrent use.
type Spy struct {
	// NopMetrics ignores the events Spy does not record.
	hub.NopMetrics
	mu sync.Mutex
	c  Counts
}

// Counts is what a Spy recorded.
type Counts struct {
	// Buffered is the bytes queued in the hub's DataChannels now; Peak the
	// most ever queued.
	Buffered, Peak int64
	// Chunks counts the chunks sent on hub DataChannels.
	Chunks int
	// Connected is the peers connected now.
	Connected int
	// Brokered counts the pairs brokered.
	Brokered int
	// CrossHub counts the pairs brokered with another hub's seeder.
	CrossHub int
	// Rejected counts refusals by reason; Lookups finished lookups by outcome.
	Rejected, Lookups map[string]int
	// Reports are the stats reports the hub accepted, in order.
	Reports []signaling.Stats
	// GrantsUp and GrantsDown sum the upload and download grants; UpBy and
	// DownBy sum them by peer id.
	GrantsUp, GrantsDown int64
	UpBy, DownBy         map[string]int64
	// Reported counts seeder reports by "reason/accepted" (e.g.
	// "hash_mismatch/true").
	Reported map[string]int
	// Dropped counts seeders dropped after reports.
	Dropped int64
	// FirstCopySkips counts first-copy requests answered with no chunk.
	FirstCopySkips int64
}

// ReportsTaken returns the seeder reports the hub accepted and refused,
// whatever their reason.
func (c Counts) ReportsTaken() (accepted, refused int) {
	for k, n := range c.Reported {
		if strings.HasSuffix(k, "/true") {
			accepted += n
		} else {
			refused += n
		}
	}
	return accepted, refused
}

var _ hub.Metrics = (*Spy)(nil)

// NewSpy returns an empty Spy.
func NewSpy() *Spy {
	return &Spy{c: Counts{Rejected: map[string]int{}, Lookups: map[string]int{}, Reported: map[string]int{},
		UpBy: map[string]int64{}, DownBy: map[string]int64{}}}
}

// Counts returns a copy of what s recorded.
func (s *Spy) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.c
	c.Rejected, c.Lookups, c.Reported = maps.Clone(c.Rejected), maps.Clone(c.Lookups), maps.Clone(c.Reported)
	c.UpBy, c.DownBy = maps.Clone(c.UpBy), maps.Clone(c.DownBy)
	c.Reports = slices.Clone(c.Reports)
	return c
}

func (s *Spy) update(f func(c *Counts)) {
	s.mu.Lock()
	f(&s.c)
	s.mu.Unlock()
}

// PeerConnected implements hub.Metrics.
func (s *Spy) PeerConnected() { s.update(func(c *Counts) { c.Connected++ }) }

// PeerDisconnected implements hub.Metrics.
func (s *Spy) PeerDisconnected() { s.update(func(c *Counts) { c.Connected-- }) }

// ChunkSent implements hub.Metrics.
func (s *Spy) ChunkSent(int) { s.update(func(c *Counts) { c.Chunks++ }) }

// PairBrokered implements hub.Metrics.
func (s *Spy) PairBrokered() { s.update(func(c *Counts) { c.Brokered++ }) }

// CrossHubPair implements hub.Metrics.
func (s *Spy) CrossHubPair() { s.update(func(c *Counts) { c.CrossHub++ }) }

// PairFailed implements hub.Metrics.
func (s *Spy) PairFailed() {}

// SeederLookup implements hub.Metrics.
func (s *Spy) SeederLookup(outcome string, _ time.Duration) {
	s.update(func(c *Counts) { c.Lookups[outcome]++ })
}

// AddBufferedBytes implements hub.Metrics.
func (s *Spy) AddBufferedBytes(d int64) {
	s.update(func(c *Counts) {
		c.Buffered += d
		c.Peak = max(c.Peak, c.Buffered)
	})
}

// SignalingRejected implements hub.Metrics.
func (s *Spy) SignalingRejected(reason string) { s.update(func(c *Counts) { c.Rejected[reason]++ }) }

// SeederReported implements hub.Metrics.
func (s *Spy) SeederReported(reason string, accepted bool) {
	s.update(func(c *Counts) { c.Reported[reason+"/"+strconv.FormatBool(accepted)]++ })
}

// SeederDropped implements hub.Metrics.
func (s *Spy) SeederDropped() { s.update(func(c *Counts) { c.Dropped++ }) }

// FirstCopySkipped implements hub.Metrics.
func (s *Spy) FirstCopySkipped() { s.update(func(c *Counts) { c.FirstCopySkips++ }) }

// OpenPeer implements hub.Metrics.
func (s *Spy) OpenPeer(id string) hub.PeerMetrics { return spyPeer{s, id} }

type spyPeer struct {
	s  *Spy
	id string
}

func (p spyPeer) GrantDownload(n int64) {
	p.s.update(func(c *Counts) {
		c.GrantsDown += n
		c.DownBy[p.id] += n
	})
}

func (p spyPeer) GrantUpload(n int64) {
	p.s.update(func(c *Counts) {
		c.GrantsUp += n
		c.UpBy[p.id] += n
	})
}

func (p spyPeer) Report(r signaling.Stats) {
	p.s.update(func(c *Counts) { c.Reports = append(c.Reports, r) })
}

func (p spyPeer) Close() {}
