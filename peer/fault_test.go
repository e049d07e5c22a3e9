package peer

import (
	"testing"
	"time"

	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/signaling"
)

// TestFaultySeeders: a leecher paired with a seeder misbehaving in each
// FaultMode detects it, abandons it, reports it to the hub and completes
// the track from the hub without a stall nor a corrupt chunk.
func TestFaultySeeders(t *testing.T) {
	t.Parallel()
	for _, mode := range FaultModes {
		t.Run(mode.String(), func(t *testing.T) {
			spy := hubtest.NewSpy()
			env := newTestEnvWith(t, 1, 40, func(c *hub.Config) { c.Metrics = spy })
			m := env.tracks[0]
			bad := env.peer(func(c *Config) { c.Fault = mode })
			checkComplete(t, bad, play(t, bad, m.ID), m)
			l := env.peer(func(c *Config) {
				c.Speed = 10
				if mode == FaultSilent {
					c.Speed = 5 // leave the buffer room for the timeout
				}
				c.SourceTimeoutMS = 1000
			})
			res := play(t, l, m.ID)
			checkComplete(t, l, res, m)
			if res.Stalls != 0 {
				t.Errorf("%d stalls", res.Stalls)
			}
			st := l.Stats()
			if st.CorruptAccepted != 0 {
				t.Errorf("corrupt chunks accepted: %d", st.CorruptAccepted)
			}
			var detected int64
			switch mode {
			case FaultBadBytes, FaultWrongSeq:
				detected = st.HashFailures
			case FaultOversize:
				detected = st.BadMessages
			case FaultSilent, FaultLiar:
				detected = st.Timeouts
			}
			if detected == 0 || res.HashFailures+res.BadMessages+res.Timeouts == 0 {
				t.Errorf("fault not detected: stats %+v result %+v", st, res)
			}
			if st.ReportsSent == 0 || res.Reports == 0 {
				t.Errorf("bad seeder not reported: stats %+v", st)
			}
			if bad.Stats().FaultsSent == 0 {
				t.Errorf("the faulty seeder was never used; the test proves nothing")
			}
			if res.ServerBytes < m.Size/2 {
				t.Errorf("server bytes %d: the track should come mostly from the hub", res.ServerBytes)
			}
			hubtest.WaitFor(t, 5*time.Second, "the hub to take the report", func() bool {
				accepted, _ := spy.Counts().ReportsTaken()
				return accepted > 0
			})
			if _, refused := spy.Counts().ReportsTaken(); refused != 0 {
				t.Errorf("the hub refused %d reports", refused)
			}
			// The report did not hurt the connection.
			if !l.Connected() || l.Stats().Reconnects != 0 || l.Err() != nil {
				t.Errorf("leecher connection disturbed: connected %v reconnects %d err %v", l.Connected(), l.Stats().Reconnects, l.Err())
			}
		})
	}
}

// TestBadSeederRememberedAcrossPlaybacks: a seeder caught corrupting one
// track is not used for the next track either.
func TestBadSeederRememberedAcrossPlaybacks(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, 2)
	x, y := env.tracks[0], env.tracks[1]
	bad := env.peer(func(c *Config) { c.Fault = FaultBadBytes })
	checkComplete(t, bad, play(t, bad, x.ID), x)
	checkComplete(t, bad, play(t, bad, y.ID), y)
	l := env.peer(nil)
	resX := play(t, l, x.ID)
	checkComplete(t, l, resX, x)
	if resX.HashFailures == 0 {
		t.Fatalf("first track: corruption not detected: %+v", resX)
	}
	up := bad.Stats().UploadedBytes
	resY := play(t, l, y.ID)
	checkComplete(t, l, resY, y)
	if resY.HashFailures != 0 || resY.P2PBytes != 0 || resY.Stalls != 0 {
		t.Errorf("second track: %+v, want it all from the hub without touching the bad seeder", resY)
	}
	if got := bad.Stats().UploadedBytes; got != up {
		t.Errorf("the known bad seeder uploaded %d more bytes", got-up)
	}
}

// TestTwoSeedersLeaveInTurn: the leecher's seeder leaves mid-upload, it
// finds the other one, which leaves too; the hub finishes the track, with no
// stall.
func TestTwoSeedersLeaveInTurn(t *testing.T) {
	t.Parallel()
	env := newTestEnvWith(t, 1, 80, nil)
	m := env.tracks[0]
	s1 := env.peer(nil)
	checkComplete(t, s1, play(t, s1, m.ID), m)
	s2 := env.peer(nil)
	checkComplete(t, s2, play(t, s2, m.ID), m)
	base1, base2 := s1.Stats().UploadedBytes, s2.Stats().UploadedBytes
	l := env.peer(func(c *Config) { c.Speed = 10; c.Sched.PeerAheadMS = 6000 })
	out := playAsync(l, m.ID)
	var first, second *Peer
	hubtest.WaitFor(t, 10*time.Second, "the leecher to stream from a seeder", func() bool {
		switch {
		case s1.Stats().UploadedBytes > base1+10*4000:
			first, second = s1, s2
		case s2.Stats().UploadedBytes > base2+10*4000:
			first, second = s2, s1
		}
		return first != nil
	})
	first.Close()
	base := second.Stats().UploadedBytes
	hubtest.WaitFor(t, 10*time.Second, "the leecher to stream from the other seeder", func() bool {
		return second.Stats().UploadedBytes > base+5*4000
	})
	second.Close()
	r := <-out
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkComplete(t, l, r.res, m)
	if r.res.Stalls != 0 {
		t.Errorf("%d stalls after the seeders left", r.res.Stalls)
	}
	if r.res.Seeders < 2 || r.res.ServerBytes == 0 {
		t.Errorf("seeders %d server bytes %d: want both seeders and the hub", r.res.Seeders, r.res.ServerBytes)
	}
}

// restartableHub serves hubs (package hubtest) over the env's store on one
// loopback address, one at a time.
type restartableHub struct {
	t    *testing.T
	env  *testEnv
	addr string // empty: an ephemeral port, kept for the next start
	srv  *hubtest.Server
}

func (r *restartableHub) start() {
	r.t.Helper()
	opts := []hubtest.Option{hubtest.WithStore(r.env.st)}
	if r.addr != "" {
		opts = append(opts, hubtest.WithAddr(r.addr))
	}
	r.srv = hubtest.New(r.t, hub.Config{Logger: testLogger(r.t)}, opts...)
	r.addr = r.srv.Addr
	r.env.url = r.srv.URL
}

func (r *restartableHub) stop() {
	if r.srv != nil {
		r.srv.Close()
		r.srv = nil
	}
}

// TestHubRestart: the hub goes away while a fully buffered track plays; the
// playback finishes from its buffer without a stall, the peer reconnects
// to a new hub on the same address as a new peer announcing its cache, plays
// another track and seeds the first one to a newcomer.
func TestHubRestart(t *testing.T) {
	env := newTestEnvWith(t, 2, 40, nil)
	x, y := env.tracks[0], env.tracks[1]
	rh := &restartableHub{t: t, env: env}
	rh.start()
	t.Cleanup(rh.stop)
	p := env.peer(func(c *Config) {
		c.Speed = 10
		c.ReconnectMin = 20 * time.Millisecond
		c.ReconnectMax = 200 * time.Millisecond
	})
	oldID := p.ID()
	out := playAsync(p, x.ID)
	// Nobody else holds x: the hub sends it whole at once (first copy).
	hubtest.WaitFor(t, 10*time.Second, "x to be fully buffered", func() bool { return p.Cache().Used() >= x.Size })
	rh.stop()
	hubtest.WaitFor(t, 10*time.Second, "the peer to notice the hub left", func() bool { return !p.Connected() })
	rh.start()
	hubtest.WaitFor(t, 15*time.Second, "the peer to reconnect", func() bool { return p.Connected() && p.ID() != oldID })
	r := <-out
	if r.err != nil {
		t.Fatalf("playback during the outage: %v", r.err)
	}
	checkComplete(t, p, r.res, x)
	if r.res.Stalls != 0 {
		t.Errorf("%d stalls during the outage", r.res.Stalls)
	}
	if st := p.Stats(); st.Reconnects == 0 {
		t.Errorf("reconnects %d", st.Reconnects)
	}
	checkComplete(t, p, play(t, p, y.ID), y)
	// The new hub learned from hello that p holds x.
	q := env.peer(nil)
	resQ := play(t, q, x.ID)
	checkComplete(t, q, resQ, x)
	if resQ.P2PBytes == 0 {
		t.Errorf("newcomer got nothing from the reconnected peer: %+v", resQ)
	}
}

// TestHubRestartMidDownload: the hub goes away while the track is still
// being fetched; the peer reconnects and the playback completes with the
// rest of the track from the new hub (stalls are possible, not checked).
func TestHubRestartMidDownload(t *testing.T) {
	env := newTestEnvWith(t, 1, 60, nil)
	m := env.tracks[0]
	rh := &restartableHub{t: t, env: env}
	rh.start()
	t.Cleanup(rh.stop)
	p := env.peer(func(c *Config) {
		c.Speed = 10
		c.Sched.FirstCopyAheadMS = 1 // no first copies ahead: the hub streams its 10 s window only
		c.ReconnectMin = 20 * time.Millisecond
		c.ReconnectMax = 100 * time.Millisecond
	})
	out := playAsync(p, m.ID)
	hubtest.WaitFor(t, 10*time.Second, "playback to start", func() bool { return p.Stats().ServerBytes > 0 })
	rh.stop()
	if got := p.Stats().ServerBytes; got >= m.Size {
		t.Fatalf("the whole track (%d bytes) arrived before the hub went away: nothing to test", got)
	}
	rh.start()
	r := <-out
	if r.err != nil {
		t.Fatalf("playback across the restart: %v", r.err)
	}
	checkComplete(t, p, r.res, m)
	if p.Stats().Reconnects == 0 {
		t.Errorf("no reconnection counted")
	}
}

// TestNoReconnect: with NoReconnect the peer stops when the hub leaves.
func TestNoReconnect(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, 1)
	rh := &restartableHub{t: t, env: env}
	rh.start()
	p := env.peer(func(c *Config) { c.NoReconnect = true })
	rh.stop()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("peer still running after the hub left")
	}
	if p.Err() == nil {
		t.Fatal("Err is nil after the peer stopped")
	}
}

// TestPingKeepsIdlePeerConnected: an idle peer answers the hub's pings and
// is not dropped for idleness.
func TestPingKeepsIdlePeerConnected(t *testing.T) {
	env := newTestEnvWith(t, 1, 10, func(c *hub.Config) {
		c.PingInterval = 100 * time.Millisecond
		c.IdleTimeout = 300 * time.Millisecond
	})
	p := env.peer(nil)
	id := p.ID()
	time.Sleep(time.Second) // a bounded idle period: 10 ping intervals
	if !p.Connected() || p.ID() != id || p.Stats().Reconnects != 0 {
		t.Fatalf("idle peer was dropped: connected %v id %s→%s reconnects %d", p.Connected(), id, p.ID(), p.Stats().Reconnects)
	}
}

// TestStatsFlushedOnClose: the counters since the last periodic stats reach
// the hub when the peer closes.
func TestStatsFlushedOnClose(t *testing.T) {
	t.Parallel()
	spy := hubtest.NewSpy()
	env := newTestEnvWith(t, 1, 10, func(c *hub.Config) { c.Metrics = spy })
	m := env.tracks[0]
	p := env.peer(func(c *Config) { c.StatsInterval = time.Hour })
	checkComplete(t, p, play(t, p, m.ID), m)
	p.Close()
	hubtest.WaitFor(t, 5*time.Second, "the hub to account the last stats", func() bool {
		return len(spy.Counts().Reports) > 0
	})
	var sum signaling.Stats
	for _, r := range spy.Counts().Reports {
		sum.HubBytes += r.HubBytes
		sum.StartupMS = append(sum.StartupMS, r.StartupMS...)
	}
	if sum.HubBytes != m.Size || len(sum.StartupMS) != 1 {
		t.Errorf("hub got hub_bytes %d startups %d, want %d and 1", sum.HubBytes, len(sum.StartupMS), m.Size)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	lo, hi := 100*time.Millisecond, 2*time.Second
	for n := 0; n < 70; n++ {
		d := min(hi, lo<<min(n, 20))
		for _, r := range []float64{0, 0.5, 0.999} {
			got := backoff(n, lo, hi, func() float64 { return r })
			if got < d/2 || got > d {
				t.Fatalf("backoff(%d, r=%v) = %v, want in [%v, %v]", n, r, got, d/2, d)
			}
		}
	}
	if backoff(3, lo, hi, func() float64 { return 0.999 }) <= backoff(2, lo, hi, func() float64 { return 0.999 }) {
		t.Error("backoff does not grow")
	}
}

func TestParseFaultMode(t *testing.T) {
	t.Parallel()
	for _, f := range append([]FaultMode{FaultNone}, FaultModes...) {
		got, err := ParseFaultMode(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFaultMode(%q) = %v, %v", f.String(), got, err)
		}
	}
	if _, err := ParseFaultMode("evil"); err == nil {
		t.Error("ParseFaultMode accepted an unknown mode")
	}
}

// TestReportedSeederDropped: two leechers catch a corrupting seeder and
// report it; the hub drops it as a holder of the track, so a third leecher
// is never paired with it and sees no bad chunk at all.
func TestReportedSeederDropped(t *testing.T) {
	t.Parallel()
	spy := hubtest.NewSpy()
	env := newTestEnvWith(t, 1, 40, func(c *hub.Config) { c.Metrics = spy })
	m := env.tracks[0]
	bad := env.peer(func(c *Config) { c.Fault = FaultBadBytes })
	checkComplete(t, bad, play(t, bad, m.ID), m)
	for i := range 2 {
		l := env.peer(func(c *Config) { c.Speed = 10 })
		res := play(t, l, m.ID)
		checkComplete(t, l, res, m)
		if res.HashFailures == 0 || res.Reports == 0 {
			t.Fatalf("leecher %d: %d hash failures, %d reports: the bad seeder was not used", i+1, res.HashFailures, res.Reports)
		}
		hubtest.WaitFor(t, 5*time.Second, "the hub to take the report", func() bool {
			accepted, _ := spy.Counts().ReportsTaken()
			return accepted > i
		})
		l.Close() // leave: the next leecher can only be paired with bad or nobody
	}
	c := spy.Counts()
	if _, refused := c.ReportsTaken(); c.Dropped != 1 || refused != 0 {
		t.Fatalf("hub counts %d dropped, %d refused reports (%v); want 1 seeder dropped and no refused report", c.Dropped, refused, c.Reported)
	}
	faults := bad.Stats().FaultsSent
	l := env.peer(nil)
	res := play(t, l, m.ID)
	checkComplete(t, l, res, m)
	if res.HashFailures != 0 || res.Seeders != 0 || bad.Stats().FaultsSent != faults {
		t.Errorf("after the drop: %d hash failures, %d seeders, %d more faults served",
			res.HashFailures, res.Seeders, bad.Stats().FaultsSent-faults)
	}
}
