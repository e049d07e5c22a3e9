// Command bench measures a Ztream hub on this machine and writes
// docs/BENCHMARKS.md from that one run.
//
// It builds ztream once, then for each measurement starts a fresh
// `ztream serve` process (embedded store with the demo tracks, loopback ICE,
// pprof on) and reads that process's CPU time and memory from /proc and its
// /metrics. Idle peers are connected from this process with package peer;
// load runs use `ztream load ... --json` as a separate process. Run it from
// the repository root:
//
//	go run ./bench                       # the default run, about 45 minutes
//	go run ./bench -duration 20s -peers 10,50 -compare 10 -idle 50 -only idle,scaling   # a quick try
//	go run ./bench -only swarm -big-peers 100 -big-duration 1m -out /tmp/b.md   # the swarm rows, small
//
// Besides the demo library, it builds a short-track library (three tones of
// 20–30 s, with sox and lame, ingested by `ztream ingest`) for a short-track
// swarm and flash crowds, and writes a plot of offload and server copies
// against swarm size next to the Markdown file.
//
// Linux only (/proc).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ztream/ztream/media"
)

// env is what every measurement needs.
type env struct {
	bin           string // the ztream binary under test
	work          string // scratch directory (hub logs, data, profiles)
	template      string // a data directory with the demo tracks ingested
	short         string // a data directory with the short-track library
	udpPort       int
	perIPFlag     bool // serve has --max-peers-per-ip
	duration      time.Duration
	speed         float64
	settle        time.Duration
	sampleEvery   time.Duration // /metrics scrape period during load rows
	idleCPUWindow time.Duration
	// calm bounds the wait, before each measurement, for the machine's
	// 1-minute load average to fall under its CPU count.
	calm     time.Duration
	cpus     float64
	proc     procReader
	log      *slog.Logger
	progress io.Writer
	// natsVersion is what nats-server --version said (cluster rows).
	natsVersion string
}

// waitCalm waits, at most e.calm, until the 1-minute load average is
// under the number of CPUs (other work, or the previous measurement's
// processes, winding down) and returns how long it waited.
func (e *env) waitCalm(ctx context.Context, name string) (time.Duration, error) {
	t0 := time.Now()
	for {
		la := loadAverage()
		waited := time.Since(t0)
		if la < 0 || la < e.cpus || waited >= e.calm {
			if waited >= time.Second {
				e.logf("%s: waited %s for a calmer machine (load average %.2f)", name, waited.Round(time.Second), la)
			}
			return waited, nil
		}
		select {
		case <-ctx.Done():
			return waited, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.progress, "%s bench: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// hubOptions returns the options of a hub over data, logging to name.hub.log.
func (e *env) hubOptions(data, name string) hubOptions {
	return hubOptions{bin: e.bin, data: data, udpPort: e.udpPort, logPath: filepath.Join(e.work, name+".hub.log"), perIPFlag: e.perIPFlag}
}

// freshData copies the library in template into a new directory for name.
func (e *env) freshData(name, template string) (string, error) {
	dir := filepath.Join(e.work, name+".data")
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("clear %s: %w", dir, err)
	}
	if err := copyDir(template, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// options are the command-line flags.
type options struct {
	out      string
	duration time.Duration
	speed    float64
	peers    []int
	compare  int
	idle     int
	udpPort  int
	profile  bool
	keep     bool
	calm     time.Duration
	// only holds the parts to run (sections); every part when empty.
	only []string
	// flash: the flash-crowd sizes; big: the real-time rows' peer counts;
	// bigDuration: their --duration (0: 3 min, or longer so that each peer
	// plays several tracks).
	flash       []int
	big         []int
	bigDuration time.Duration
}

// Parts of a run that -only selects; "swarm" stands for short, flash and big.
var sections = []string{"idle", "scaling", "short", "flash", "big", "cluster"}

// runs reports whether the part named part is selected.
func (o options) runs(part string) bool {
	return len(o.only) == 0 || slices.Contains(o.only, part)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	peers := fs.String("peers", "10,50,100,200", "comma-separated peer counts of the scaling table (P2P on)")
	fs.StringVar(&o.out, "out", "docs/BENCHMARKS.md", "the Markdown file to write (rewritten fully)")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "--duration of every `ztream load` run")
	fs.Float64Var(&o.speed, "speed", 10, "--speed of every `ztream load` run")
	fs.IntVar(&o.compare, "compare", 100, "peer count of the P2P on / off comparison (also run with P2P on if not in -peers)")
	fs.IntVar(&o.idle, "idle", 200, "idle peers connected for the memory-per-peer measurement (0: skip)")
	fs.IntVar(&o.udpPort, "udp-port", -1, "hub --udp-port: -1 = a free port (one UDP mux, as in production), 0 = no mux")
	fs.BoolVar(&o.profile, "profile", true, "CPU-profile the hub during the two comparison runs (P2P on and off)")
	fs.BoolVar(&o.keep, "keep", false, "keep the scratch directory (logs, profiles) and print its path")
	fs.DurationVar(&o.calm, "calm", 3*time.Minute, "before each measurement, wait at most this long for the 1-minute load average to fall under the CPU count")
	only := fs.String("only", "", "run only these comma-separated parts: idle, scaling (with P2P on/off and the profiles), short, flash, big, swarm (= short,flash,big), or cluster (3 hubs through NATS, one killed); default all")
	flash := fs.String("flash", "16,32,64", "comma-separated flash-crowd sizes (1x, one cold 30 s track)")
	big := fs.String("big-peers", "500,1000", "comma-separated peer counts of the real-time rows (1x, demo library)")
	fs.DurationVar(&o.bigDuration, "big-duration", 0, "--duration of the real-time rows (0: 3m, extended so that each peer plays several tracks)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.peers, err = parseCounts("-peers", *peers); err != nil {
		return err
	}
	if o.flash, err = parseCounts("-flash", *flash); err != nil {
		return err
	}
	if o.big, err = parseCounts("-big-peers", *big); err != nil {
		return err
	}
	for _, part := range strings.Split(*only, ",") {
		switch part = strings.TrimSpace(part); {
		case part == "":
		case part == "swarm":
			o.only = append(o.only, "short", "flash", "big")
		case slices.Contains(sections, part):
			o.only = append(o.only, part)
		default:
			return fmt.Errorf("-only: unknown part %q (want %s or swarm)", part, strings.Join(sections, ", "))
		}
	}
	if o.compare <= 0 {
		return fmt.Errorf("-compare must be > 0")
	}
	if _, err := os.Stat("go.mod"); err != nil {
		return fmt.Errorf("run from the repository root (no go.mod here): %w", err)
	}
	command := "go run ./bench"
	if len(args) > 0 {
		command += " " + strings.Join(args, " ")
	}

	work, err := os.MkdirTemp("", "ztream-bench-")
	if err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	if o.keep {
		fmt.Fprintf(stderr, "bench: scratch directory %s\n", work)
	} else {
		defer func() {
			if err := os.RemoveAll(work); err != nil {
				fmt.Fprintf(stderr, "bench: removing the scratch directory: %v\n", err)
			}
		}()
	}
	e := &env{
		bin: filepath.Join(work, "ztream"), work: work, udpPort: o.udpPort,
		duration: o.duration, speed: o.speed, settle: 3 * time.Second, sampleEvery: 5 * time.Second, idleCPUWindow: 40 * time.Second,
		calm: o.calm, cpus: float64(max(runtime.NumCPU(), 1)), proc: newProcReader(), progress: stderr,
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	started := time.Now()
	r := report{Command: command, Options: o, Started: started.UTC(), SampleEvery: e.sampleEvery}
	r.Machine = describeMachine(ctx)
	r.Machine.LoadBefore = loadAverage()

	e.logf("building ztream")
	build := exec.CommandContext(ctx, "go", "build", "-o", e.bin, "./cmd/ztream")
	build.Stdout, build.Stderr = stderr, stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/ztream: %w", err)
	}
	help, _ := exec.CommandContext(ctx, e.bin, "serve", "-h").CombinedOutput()
	e.perIPFlag = strings.Contains(string(help), "max-peers-per-ip")
	r.PerIPFlag = e.perIPFlag
	if !e.perIPFlag {
		e.logf("ztream serve has no --max-peers-per-ip: peers connect through a proxy spreading source addresses")
	}
	if err := e.prepareTemplate(ctx, &r); err != nil {
		return err
	}
	if o.runs("short") || o.runs("flash") {
		e.logf("building the short-track library")
		if err := e.buildShortLibrary(ctx, &r); err != nil {
			return err
		}
	}

	if o.idle > 0 && o.runs("idle") {
		e.logf("idle phase: up to %d idle peers", o.idle)
		steps := []int{o.idle / 2, o.idle}
		if o.idle/2 == 0 {
			steps = []int{o.idle}
		}
		res, err := runIdle(ctx, e, steps)
		if err != nil {
			return fmt.Errorf("idle phase: %w", err)
		}
		r.Idle = &res
	}

	var specs []rowSpec
	if o.runs("scaling") {
		for _, n := range o.peers {
			specs = append(specs, rowSpec{Peers: n, P2P: true, Profile: o.profile && n == o.compare})
		}
		if !slices.Contains(o.peers, o.compare) {
			specs = append(specs, rowSpec{Peers: o.compare, P2P: true, Profile: o.profile})
		}
		specs = append(specs, rowSpec{Peers: o.compare, P2P: false, Profile: o.profile})
	}
	specs = append(specs, e.swarmSpecs(&r)...)
	for _, s := range specs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if why := e.tooBig(s); why != "" {
			e.logf("%s: not run: %s", s.name(), why)
			r.Skipped = append(r.Skipped, skippedRow{Spec: s, Why: why})
			continue
		}
		res, err := runRow(ctx, e, s)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name(), err)
		}
		r.Rows = append(r.Rows, res)
	}
	if o.runs("cluster") && ctx.Err() == nil {
		e.logf("cluster: %d hubs through NATS", clusterHubs)
		res, err := runCluster(ctx, e)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		r.Cluster, r.NATSVersion = res, e.natsVersion
	}
	r.Elapsed = time.Since(started)
	r.Machine.LoadAfter = loadAverage()

	var sb strings.Builder
	r.write(&sb)
	if old, err := os.ReadFile(o.out); err == nil {
		sb.WriteString(keptSections(old)) // measured by hand: kept
	}
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(o.out), err)
	}
	if err := os.WriteFile(o.out, []byte(sb.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", o.out, err)
	}
	if svg, ok := r.swarmPlot(); ok {
		if err := os.WriteFile(r.plotPath(), []byte(svg), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", r.plotPath(), err)
		}
		e.logf("wrote %s", r.plotPath())
	}
	e.logf("wrote %s in %s", o.out, r.Elapsed.Round(time.Second))
	return nil
}

// prepareTemplate starts a hub once on an empty data directory so it ingests
// the demo tracks; every measured hub then starts from a copy, so no ingest
// work lands in a measurement.
func (e *env) prepareTemplate(ctx context.Context, r *report) error {
	e.template = filepath.Join(e.work, "template.data")
	if err := os.MkdirAll(e.template, 0o755); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	h, err := startHub(ctx, e.hubOptions(e.template, "template"))
	if err != nil {
		return fmt.Errorf("template library: %w", err)
	}
	var tracks strings.Builder
	err = h.get(ctx, "/api/tracks", &tracks)
	h.stop()
	if err != nil {
		return fmt.Errorf("template library: %w", err)
	}
	var list []media.Summary
	if err := json.Unmarshal([]byte(tracks.String()), &list); err != nil {
		return fmt.Errorf("template library: %w", err)
	}
	r.Tracks = len(list)
	r.DemoTracks = list
	for i, t := range list {
		d := time.Duration(t.DurationMS) * time.Millisecond
		if i == 0 || d < r.TrackMin {
			r.TrackMin = d
		}
		r.TrackMax = max(r.TrackMax, d)
	}
	return nil
}

// machineInfo describes where the run happened.
type machineInfo struct {
	CPUs       int
	CPUModel   string
	MemTotal   int64
	Kernel     string
	GoVersion  string
	Commit     string
	LoadBefore float64
	LoadAfter  float64
}

func describeMachine(ctx context.Context) machineInfo {
	m := machineInfo{CPUModel: cpuModel(), MemTotal: memTotal()}
	if out, err := exec.CommandContext(ctx, "nproc").Output(); err == nil {
		m.CPUs, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if out, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
			m.Commit += " (with uncommitted changes)"
		}
	}
	return m
}

// parseCounts parses a comma-separated list of positive counts, sorted and
// without duplicates.
func parseCounts(flagName, list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: bad count %q", flagName, s)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
