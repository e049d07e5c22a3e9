package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ztream/ztream/peer"
)

// idleSample is the hub's state with some idle peers connected, after a GC.
type idleSample struct {
	Peers      int     // peers the benchmark holds connected
	Connected  float64 // ztream_connected_peers
	RSS        int64   // VmRSS, bytes
	HeapInuse  float64 // go_memstats_heap_inuse_bytes
	HeapAlloc  float64 // go_memstats_heap_alloc_bytes
	Goroutines float64 // go_goroutines
}

// idleResult is the outcome of the idle-peers phase.
type idleResult struct {
	Samples []idleSample
	// CPU of the hub with no peer and with all peers connected and idle,
	// as a fraction of one core, measured over CPUWindow each.
	CPUNone, CPUAll float64
	CPUWindow       time.Duration
	// CPUQuiet is how long after the last peer joined the window opened.
	CPUQuiet     time.Duration
	HWM          int64 // VmHWM of the hub at the end
	DialFailures int
	DialTime     time.Duration // connecting the last step's peers
	// JoinCPU is the hub's CPU seconds while the last step's peers joined
	// (WebSocket, hello, DTLS, SCTP, DataChannel), Joins how many did.
	JoinCPU float64
	Joins   int
	// HeapTop is `go tool pprof -top` of the hub's in-use heap with every
	// peer connected; HeapSum groups it.
	HeapTop string
	HeapSum []profileShare
}

// perPeer returns (last - first) / Δpeers of the field f.
func (r idleResult) perPeer(f func(idleSample) float64) float64 {
	if len(r.Samples) < 2 {
		return 0
	}
	a, b := r.Samples[0], r.Samples[len(r.Samples)-1]
	if b.Peers == a.Peers {
		return 0
	}
	return (f(b) - f(a)) / float64(b.Peers-a.Peers)
}

// runIdle starts a fresh hub, connects peers up to each count of steps from this
// process (WebSocket plus a PeerConnection with an open DataChannel each, no
// playback), and samples the hub's memory after a forced GC at each step,
// then its CPU with all of them idle.
func runIdle(ctx context.Context, e *env, steps []int) (idleResult, error) {
	var res idleResult
	if _, err := e.waitCalm(ctx, "idle"); err != nil {
		return res, err
	}
	data, err := e.freshData("idle", e.template)
	if err != nil {
		return res, err
	}
	h, err := startHub(ctx, e.hubOptions(data, "idle"))
	if err != nil {
		return res, err
	}
	defer h.stop()

	var peers []*peer.Peer
	defer func() { closePeers(peers) }()

	sample := func(want int) error {
		// Wait until the hub counts every peer (bounded), then settle.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			m, err := h.scrape(ctx)
			if err != nil {
				return err
			}
			if int(m[mConnected]) >= want {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		time.Sleep(e.settle)
		if err := h.forceGC(ctx); err != nil {
			return fmt.Errorf("forcing a GC in the hub: %w", err)
		}
		st, err := e.proc.status(h.pid())
		if err != nil {
			return err
		}
		m, err := h.scrape(ctx)
		if err != nil {
			return err
		}
		res.Samples = append(res.Samples, idleSample{
			Peers: want, Connected: m[mConnected], RSS: st.RSS,
			HeapInuse: m[mHeapInuse], HeapAlloc: m[mHeapAlloc], Goroutines: m[mGoroutines],
		})
		e.logf("idle: %d peers held, hub counts %.0f, RSS %.1f MB, heap in use %.1f MB, %0.f goroutines",
			want, m[mConnected], float64(st.RSS)/1e6, m[mHeapInuse]/1e6, m[mGoroutines])
		return nil
	}
	cpuOver := func(d time.Duration) (float64, error) {
		c0, err := e.proc.cpuSeconds(h.pid())
		if err != nil {
			return 0, err
		}
		t0 := time.Now()
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		c1, err := e.proc.cpuSeconds(h.pid())
		if err != nil {
			return 0, err
		}
		return (c1 - c0) / time.Since(t0).Seconds(), nil
	}

	if err := sample(0); err != nil {
		return res, err
	}
	res.CPUWindow = e.idleCPUWindow
	if res.CPUNone, err = cpuOver(res.CPUWindow); err != nil {
		return res, err
	}
	for _, target := range steps {
		c0, err := e.proc.cpuSeconds(h.pid())
		if err != nil {
			return res, err
		}
		t0 := time.Now()
		more, failed := dialPeers(ctx, h.peerURL, target-len(peers), e.log)
		peers = append(peers, more...)
		res.DialFailures += failed
		res.DialTime = time.Since(t0)
		c1, err := e.proc.cpuSeconds(h.pid())
		if err != nil {
			return res, err
		}
		res.JoinCPU, res.Joins = c1-c0, len(more)
		e.logf("idle: connected %d peers in %s (%d failed)", len(more), res.DialTime.Round(time.Millisecond), failed)
		if err := sample(len(peers)); err != nil {
			return res, err
		}
	}
	// Steady state: the joins' last DTLS and SCTP work, first keepalives
	// and the forced GC are over before the window opens.
	res.CPUQuiet = idleQuiet
	select {
	case <-time.After(idleQuiet):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	if res.CPUAll, err = cpuOver(res.CPUWindow); err != nil {
		return res, err
	}
	if err := e.heapProfile(ctx, h, &res); err != nil {
		res.HeapTop = "heap profile failed: " + err.Error()
	}
	st, err := e.proc.status(h.pid())
	if err != nil {
		return res, err
	}
	res.HWM = st.HWM
	return res, nil
}

// dialPeers connects count idle peers to the hub, 8 at a time.
func dialPeers(ctx context.Context, hubURL string, count int, log *slog.Logger) ([]*peer.Peer, int) {
	var (
		mu     sync.Mutex
		peers  []*peer.Peer
		failed int
		wg     sync.WaitGroup
	)
	sem := make(chan struct{}, 8)
	for i := 0; i < count; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p, err := peer.Dial(ctx, peer.Config{HubURL: hubURL, ICELoopback: true})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				log.Warn("idle peer could not connect", "err", err)
				return
			}
			peers = append(peers, p)
		}()
	}
	wg.Wait()
	return peers, failed
}

// closePeers closes every peer, 16 at a time.
func closePeers(peers []*peer.Peer) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, p := range peers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = p.Close()
		}()
	}
	wg.Wait()
}

// idleQuiet is the wait between the last join and the idle CPU window.
const idleQuiet = 10 * time.Second
