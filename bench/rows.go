package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ztream/ztream/loadgen"
)

// rowSpec is one load run.
type rowSpec struct {
	Peers   int
	P2P     bool
	Profile bool // take a CPU profile of the hub during the run
}

func (s rowSpec) name() string {
	mode := "p2p"
	if !s.P2P {
		mode = "server-only"
	}
	return fmt.Sprintf("load-%d-%s", s.Peers, mode)
}

// metricPoint is a /metrics sample taken during a run.
type metricPoint struct {
	At      time.Duration // since the load started
	Metrics metricSet
	RSS     int64
}

// rowResult is what one load run measured.
type rowResult struct {
	Spec rowSpec
	Rep  loadgen.Report
	Err  string // the load command's failure, if any

	Wall      float64 // seconds between the two hub CPU readings
	HubCPU    float64 // hub CPU seconds over Wall
	StartRSS  int64   // hub VmRSS before the load
	PeakRSS   int64   // hub VmHWM after the load (fresh hub: the run's peak)
	StartHeap float64 // hub heap in use before the load
	PeakHeap  float64 // largest heap in use sampled during the run
	PeakGor   float64 // largest goroutine count sampled
	PeakConn  float64 // largest ztream_connected_peers sampled
	// PeakBuffered is the largest ztream_datachannel_buffered_bytes sampled.
	PeakBuffered float64
	LoadCPU      float64 // CPU seconds of the `ztream load` process
	MachineBusy  float64 // CPU seconds the whole machine was busy over Wall
	LoadAvg      float64 // 1-minute load average before the run
	// WarmOffload is p2p/(p2p+server) of the hub's delivered-bytes counters
	// between the middle and the end of the starting phase; -1 if unknown.
	WarmOffload float64
	Final       metricSet // the hub's /metrics after the load ended
	ProfileTop  string    // `go tool pprof -top` of the hub's CPU profile
	ProfileCum  string
	ProfileSum  []profileShare
	// ProfileTopics: share of CPU samples whose stack passes through each
	// stackTopic (overlapping).
	ProfileTopics []profileShare
}

// cpuPerPeer is the hub's CPU per simulated peer, as a fraction of a core.
func (r rowResult) cpuPerPeer() float64 {
	if r.Wall <= 0 || r.Spec.Peers == 0 {
		return 0
	}
	return r.HubCPU / (float64(r.Spec.Peers) * r.Wall)
}

// Thresholds past which a row counts as degraded rather than ok.
const (
	degradedStartP99MS = 1000.0
	degradedOffload    = 0.5
)

// problems lists why a row did not hold: failures, stalls, or a degraded
// swarm (start p99 over degradedStartP99MS, or an offload over the whole
// run under degradedOffload with P2P on). Empty means the row held.
func (r rowResult) problems() []string {
	var out []string
	if r.Err != "" {
		out = append(out, "load failed: "+r.Err)
	}
	if r.Rep.PeersFailed > 0 {
		out = append(out, fmt.Sprintf("%d of %d peers failed to connect", r.Rep.PeersFailed, r.Spec.Peers))
	}
	if r.Rep.PlaybackErrors > 0 {
		out = append(out, fmt.Sprintf("%d playback errors", r.Rep.PlaybackErrors))
	}
	if r.Rep.Stalls > 0 {
		out = append(out, fmt.Sprintf("%d stalls", r.Rep.Stalls))
	}
	if r.Rep.StartupMS.P99 > degradedStartP99MS {
		out = append(out, fmt.Sprintf("start p99 %.0f ms > %.0f ms", r.Rep.StartupMS.P99, degradedStartP99MS))
	}
	if r.Spec.P2P && r.Rep.OffloadRatio < degradedOffload {
		out = append(out, fmt.Sprintf("offload %.3f < %.1f", r.Rep.OffloadRatio, degradedOffload))
	}
	return out
}

// held reports whether the row has no problems.
func (r rowResult) held() bool { return len(r.problems()) == 0 }

// runRow starts a fresh hub and runs `ztream load` against it.
func runRow(ctx context.Context, e *env, spec rowSpec) (rowResult, error) {
	res := rowResult{Spec: spec, WarmOffload: -1}
	name := spec.name()
	data, err := e.freshData(name)
	if err != nil {
		return res, err
	}
	h, err := startHub(ctx, e.hubOptions(data, name))
	if err != nil {
		return res, err
	}
	defer h.stop()
	time.Sleep(e.settle)
	if err := h.forceGC(ctx); err != nil {
		return res, err
	}
	m0, err := h.scrape(ctx)
	if err != nil {
		return res, err
	}
	st0, err := e.proc.status(h.pid())
	if err != nil {
		return res, err
	}
	res.StartRSS, res.StartHeap = st0.RSS, m0[mHeapInuse]
	res.LoadAvg = loadAverage()

	args := []string{"load", "--server", h.peerURL, "--peers", strconv.Itoa(spec.Peers),
		"--duration", e.duration.String(), "--speed", strconv.FormatFloat(e.speed, 'g', -1, 64), "--json"}
	if !spec.P2P {
		args = append(args, "--p2p=false")
	}
	var stdout bytes.Buffer
	errLog, err := os.Create(filepath.Join(e.work, name+".load.log"))
	if err != nil {
		return res, fmt.Errorf("load log: %w", err)
	}
	defer errLog.Close()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Stdout = &stdout
	cmd.Stderr = errLog

	cpu0, err := e.proc.cpuSeconds(h.pid())
	if err != nil {
		return res, err
	}
	mach0, err := e.proc.machine()
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start load: %w", err)
	}
	e.logf("%s: %s", name, strings.Join(cmd.Args, " "))

	var wg sync.WaitGroup
	stopSampling := make(chan struct{})
	var points []metricPoint
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(e.sampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
			m, err := h.scrape(ctx)
			if err != nil {
				continue
			}
			st, _ := e.proc.status(h.pid())
			points = append(points, metricPoint{At: time.Since(t0), Metrics: m, RSS: st.RSS})
		}
	}()
	var profile []byte
	var profErr error
	if spec.Profile {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			secs := int(e.duration.Seconds())
			c := &http.Client{Timeout: time.Duration(secs+60) * time.Second}
			profErr = h.getWithin(ctx, c, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), &buf)
			profile = buf.Bytes()
		}()
	}
	runErr := cmd.Wait()
	wall := time.Since(t0).Seconds()
	cpu1, err := e.proc.cpuSeconds(h.pid())
	if err != nil {
		return res, err
	}
	mach1, err := e.proc.machine()
	if err != nil {
		return res, err
	}
	close(stopSampling)
	wg.Wait()
	st1, err := e.proc.status(h.pid())
	if err != nil {
		return res, err
	}
	if res.Final, err = h.scrape(ctx); err != nil {
		return res, err
	}
	res.Wall, res.HubCPU, res.PeakRSS = wall, cpu1-cpu0, st1.HWM
	res.MachineBusy = mach1.Busy - mach0.Busy
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.LoadCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	for _, p := range points {
		res.PeakHeap = max(res.PeakHeap, p.Metrics[mHeapInuse])
		res.PeakGor = max(res.PeakGor, p.Metrics[mGoroutines])
		res.PeakConn = max(res.PeakConn, p.Metrics[mConnected])
		res.PeakBuffered = max(res.PeakBuffered, p.Metrics[mBuffered])
	}
	res.WarmOffload = warmOffload(points, e.duration)

	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	if jerr := json.Unmarshal([]byte(last), &res.Rep); jerr != nil {
		res.Err = fmt.Sprintf("no JSON report (%v)", jerr)
	}
	if runErr != nil {
		res.Err = strings.TrimSpace(fmt.Sprintf("%v %s", runErr, res.Err))
	}
	e.logf("%s: hub %.1f CPU-s over %.1f s, peak RSS %.1f MB, offload %.3f (warm %.3f), start p99 %.1f ms, stalls %d, failed %d %s",
		name, res.HubCPU, res.Wall, float64(res.PeakRSS)/1e6, res.Rep.OffloadRatio, res.WarmOffload,
		res.Rep.StartupMS.P99, res.Rep.Stalls, res.Rep.PeersFailed, res.Err)

	if spec.Profile {
		if profErr != nil {
			res.ProfileTop = "profile failed: " + profErr.Error()
		} else if err := e.summarizeProfile(ctx, name, profile, &res); err != nil {
			res.ProfileTop = "profile failed: " + err.Error()
		}
	}
	return res, nil
}

// warmOffload is the offload of the hub's delivered-bytes counters between
// the sample nearest to d/2 and the one nearest to d (the end of the phase
// in which peers start playbacks), or -1.
func warmOffload(points []metricPoint, d time.Duration) float64 {
	nearest := func(at time.Duration) (metricPoint, bool) {
		var best metricPoint
		found := false
		for _, p := range points {
			if !found || absDur(p.At-at) < absDur(best.At-at) {
				best, found = p, true
			}
		}
		return best, found
	}
	a, ok1 := nearest(d / 2)
	b, ok2 := nearest(d)
	if !ok1 || !ok2 || b.At <= a.At {
		return -1
	}
	p2p := b.Metrics[mP2PBytes] - a.Metrics[mP2PBytes]
	srv := b.Metrics[mServerBytes] - a.Metrics[mServerBytes]
	if p2p+srv <= 0 {
		return -1
	}
	return p2p / (p2p + srv)
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
