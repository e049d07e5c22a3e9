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

// rowKind says which part of the report a load row belongs to.
type rowKind int

const (
	kindScaling rowKind = iota // the demo library at -speed: scaling, P2P on/off
	kindShort                  // the short-track library at -speed
	kindFlash                  // a flash crowd on one cold short track at 1x
	kindBig                    // hundreds of peers on the demo library at 1x
)

// rowSpec is one load run. The zero values of the fields after Profile
// take the defaults of the scaling rows (the env's library, speed and
// duration; ztream load's ramp; one load process; serve's --max-peers).
type rowSpec struct {
	Peers   int
	P2P     bool
	Profile bool // take a CPU profile of the hub during the run

	Kind     rowKind
	Label    string        // the row's name (default load-N-p2p or load-N-server-only)
	Library  string        // the template data directory the hub starts from
	Speed    float64       // --speed
	Duration time.Duration // --duration
	Ramp     time.Duration // --ramp
	Flash    string        // --flash-crowd --track Flash
	Procs    int           // --procs
	MaxPeers int           // the hub's --max-peers
}

func (s rowSpec) name() string {
	if s.Label != "" {
		return s.Label
	}
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

	Speed    float64       // the run's --speed
	Duration time.Duration // the run's --duration

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
	// LoadCPU is the CPU seconds of the `ztream load` process and of the
	// load processes it ran and waited for (--procs): the rusage wait4
	// returns includes the waited-for descendants.
	LoadCPU float64
	// LoadMaxRSS is the largest peak RSS of those processes, bytes.
	LoadMaxRSS  int64
	MachineBusy float64 // CPU seconds the whole machine was busy over Wall
	LoadAvg     float64 // 1-minute load average before the run
	// CalmWait is how long the row waited for the load average to fall
	// under the CPU count before it started (env.waitCalm).
	CalmWait time.Duration
	// Minutes is the hub's view of each minute of the run (real-time rows).
	Minutes []windowStat
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

// cpuPerPeer is the hub's CPU per simulated peer that connected, as a
// fraction of a core.
func (r rowResult) cpuPerPeer() float64 {
	if r.Wall <= 0 || r.connected() == 0 {
		return 0
	}
	return r.HubCPU / (float64(r.connected()) * r.Wall)
}

// connected is how many of the row's peers connected.
func (r rowResult) connected() int { return max(r.Spec.Peers-r.Rep.PeersFailed, 0) }

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
	var err error
	res := rowResult{Spec: spec, WarmOffload: -1, Speed: spec.Speed, Duration: spec.Duration}
	if res.Speed <= 0 {
		res.Speed = e.speed
	}
	if res.Duration <= 0 {
		res.Duration = e.duration
	}
	name := spec.name()
	if res.CalmWait, err = e.waitCalm(ctx, name); err != nil {
		return res, err
	}
	library := spec.Library
	if library == "" {
		library = e.template
	}
	data, err := e.freshData(name, library)
	if err != nil {
		return res, err
	}
	opts := e.hubOptions(data, name)
	opts.maxPeers = spec.MaxPeers
	h, err := startHub(ctx, opts)
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
		"--duration", res.Duration.String(), "--speed", strconv.FormatFloat(res.Speed, 'g', -1, 64), "--json"}
	if !spec.P2P {
		args = append(args, "--p2p=false")
	}
	if spec.Ramp > 0 {
		args = append(args, "--ramp", spec.Ramp.String())
	}
	if spec.Flash != "" {
		args = append(args, "--flash-crowd", "--track", spec.Flash)
	}
	if spec.Procs > 1 {
		args = append(args, "--procs", strconv.Itoa(spec.Procs))
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
			secs := int(res.Duration.Seconds())
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
		res.LoadMaxRSS = ru.Maxrss << 10 // KiB on Linux
	}
	for _, p := range points {
		res.PeakHeap = max(res.PeakHeap, p.Metrics[mHeapInuse])
		res.PeakGor = max(res.PeakGor, p.Metrics[mGoroutines])
		res.PeakConn = max(res.PeakConn, p.Metrics[mConnected])
		res.PeakBuffered = max(res.PeakBuffered, p.Metrics[mBuffered])
	}
	if spec.Kind == kindBig {
		res.Minutes = timeline(points, time.Minute)
	}
	if spec.Kind != kindFlash { // a flash crowd has no warm phase
		res.WarmOffload = warmOffload(points, res.Duration)
	}

	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	if jerr := json.Unmarshal([]byte(last), &res.Rep); jerr != nil {
		res.Err = fmt.Sprintf("no JSON report (%v)", jerr)
	}
	if runErr != nil {
		res.Err = strings.TrimSpace(fmt.Sprintf("%v %s", runErr, res.Err))
		if tail := logTail(errLog.Name(), 3); tail != "" {
			res.Err += "; its log ends with: " + tail
		}
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

// windowStat is the hub's view of one window of a run, from its counters.
type windowStat struct {
	End         time.Duration // since the load started
	Connected   float64       // ztream_connected_peers at the end
	Server, P2P float64       // bytes delivered in the window
	Stalls      float64       // stalls the peers reported in the window
}

// offload is p2p / (p2p + server) over the window, or -1.
func (w windowStat) offload() float64 {
	if w.Server+w.P2P <= 0 {
		return -1
	}
	return w.P2P / (w.Server + w.P2P)
}

// timeline cuts the samples into windows of every: each window ends at the
// first sample at or after its boundary (the last one at the last sample)
// and counts the increase of the counters since the previous window.
func timeline(points []metricPoint, every time.Duration) []windowStat {
	var out []windowStat
	var prev metricSet
	next := every
	for i, pt := range points {
		if pt.At < next && i < len(points)-1 {
			continue
		}
		m := pt.Metrics
		w := windowStat{End: pt.At, Connected: m[mConnected], Server: m[mServerBytes] - prev[mServerBytes],
			P2P: m[mP2PBytes] - prev[mP2PBytes], Stalls: m[mStalls] - prev[mStalls]}
		out = append(out, w)
		prev = m
		for next <= pt.At {
			next += every
		}
	}
	return out
}

// logTail returns the last n lines of the file at path that are not
// progress lines (load: Ns peers ... playbacks ...), joined by " / "; ""
// if none.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.Contains(l, "load: ") && (strings.Contains(l, " playbacks ") || strings.Contains(l, " peers against ")) {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, " / ")
}
