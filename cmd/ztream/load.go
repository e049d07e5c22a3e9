package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ztream/ztream/loadgen"
	"github.com/ztream/ztream/peer"
)

// runLoad runs `ztream load`: simulated peers against a running hub.
// childWaitDelay is how long an interrupted split run waits for a load
// process to report before killing it.
const childWaitDelay = time.Minute

// loadGCPercent is the GOGC of `ztream load` unless the environment sets
// one: a lazier collector for the load generator's own processes.
const loadGCPercent = 400

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) (retErr error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadgen.Config
	fs.StringVar(&cfg.Server, "server", envOr("ZTREAM_SERVER", ""), "base URL of the hub, e.g. http://127.0.0.1:8080, or comma-separated base URLs of several hubs of one cluster: peers are spread over them round-robin and fail over to the next (env ZTREAM_SERVER)")
	fs.IntVar(&cfg.Peers, "peers", 16, "number of simulated peers")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "how long peers keep starting playbacks (those under way then finish)")
	fs.DurationVar(&cfg.Ramp, "ramp", 0, "spread peer joins over this time (default min(duration/4, 30s))")
	fs.Float64Var(&cfg.Speed, "speed", 10, "playback speed factor (simulated time runs this much faster)")
	fs.Float64Var(&cfg.ZipfS, "tracks-zipf", 1.2, "Zipf exponent of track popularity (> 1)")
	seed := fs.Uint64("seed", 1, "random seed for track choices")
	p2p := fs.Bool("p2p", true, "let peers stream from each other (false: server only)")
	fs.IntVar(&cfg.UploadCap, "upload-cap", 0, "upload cap of every peer (0 = default 4)")
	fs.IntVar(&cfg.MaxPeerConns, "max-peer-conns", 0, "peer↔peer PeerConnections every peer keeps (0 = default 16)")
	cacheMB := fs.Int64("cache-mb", 0, "cache size of every peer in MiB (0 = default 256)")
	loopback := fs.String("loopback", "auto", "gather loopback ICE candidates: auto (when the server is on loopback), true or false")
	fs.IntVar(&cfg.CorruptPeers, "corrupt-peers", 0, "how many peers serve faulty chunks when seeding (spread over the join order)")
	faults := fs.String("corrupt-mode", "rotate", "fault of the corrupt peers: rotate (bad_bytes, wrong_seq, oversize, silent in turn) or one of them")
	fs.Float64Var(&cfg.Churn, "churn", 0, "probability (0..1) that a peer leaves after a playback and rejoins as a new peer keeping its cache")
	fs.BoolVar(&cfg.FlashCrowd, "flash-crowd", false, "every peer plays one track once, the same cold one, joining within --ramp")
	fs.StringVar(&cfg.Track, "track", "", "the flash crowd's track id (default: the most popular under the seed)")
	procs := fs.Int("procs", 1, "split the simulated peers over this many processes (one process can be the limit of a large run)")
	shard := fs.String("shard", "", "internal: run shard K/N of a split run and report its raw results")
	asJSON := fs.Bool("json", false, "end stdout with one line of JSON holding the report")
	verbose := fs.Bool("v", false, "log the peers' warnings to stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load generator to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ztream load: unexpected arguments %v\n", fs.Args())
		return errUsage
	}
	if cfg.Server == "" {
		fmt.Fprintln(stderr, "ztream load: --server is required")
		return errUsage
	}
	if *loopback != "auto" {
		lb, err := strconv.ParseBool(*loopback)
		if err != nil {
			return fmt.Errorf("--loopback: %w", err)
		}
		cfg.Loopback = &lb
	}
	if *faults != "rotate" {
		f, err := peer.ParseFaultMode(*faults)
		if err != nil || f == peer.FaultNone {
			return fmt.Errorf("--corrupt-mode %q: want rotate, bad_bytes, wrong_seq, oversize or silent", *faults)
		}
		cfg.Faults = []peer.FaultMode{f}
	}
	cfg.Seed = *seed
	cfg.DisableP2P = !*p2p
	cfg.CacheBytes = *cacheMB << 20
	cfg.Progress = stderr
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if os.Getenv("GOGC") == "" {
		// The simulated peers are the load, not the system under test:
		// their collector trades memory for CPU (a quarter of the load
		// processes' CPU went to it at the default 100).
		debug.SetGCPercent(loadGCPercent)
	}
	stopProfile, err := startCPUProfile(*cpuProfile, &retErr)
	if err != nil {
		return err
	}
	defer stopProfile()
	if *shard != "" {
		if _, err := fmt.Sscanf(*shard, "%d/%d", &cfg.Shard, &cfg.Shards); err != nil || cfg.Shards < 2 || cfg.Shard < 0 || cfg.Shard >= cfg.Shards {
			return fmt.Errorf("--shard %q: want K/N with 0 ≤ K < N, N ≥ 2", *shard)
		}
	}
	if *procs < 1 || *procs > 64 || *procs > cfg.Peers {
		return fmt.Errorf("--procs %d: want 1..min(64, --peers)", *procs)
	}
	fmt.Fprintf(stderr, "load: %d peers against %s for %s at %gx in %d process(es)\n", cfg.Peers, cfg.Server, cfg.Duration, cfg.Speed, *procs)
	var rep loadgen.Report
	if *procs > 1 {
		rep, err = runSplit(ctx, cfg, *procs, args, stderr)
	} else {
		rep, err = loadgen.Run(ctx, cfg)
	}
	if err != nil {
		if ctx.Err() == nil || rep.Peers == 0 {
			return err
		}
		// Interrupted: the playbacks so far still make a report.
		fmt.Fprintf(stderr, "load: interrupted; the report covers the playbacks until now\n")
		if werr := writeLoadReport(stdout, rep, *asJSON); werr != nil {
			return werr
		}
		return err
	}
	return writeLoadReport(stdout, rep, *asJSON)
}

// writeLoadReport prints rep as a table, then as one line of JSON when asJSON.
func writeLoadReport(stdout io.Writer, rep loadgen.Report, asJSON bool) error {
	if err := loadgen.WriteTable(stdout, rep); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if asJSON {
		b, err := json.Marshal(rep)
		if err != nil {
			return fmt.Errorf("encode report: %w", err)
		}
		if _, err := fmt.Fprintf(stdout, "%s\n", b); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

// runSplit runs a load split over procs child processes of this program
// (`ztream load ... --shard K/N --json`), each running every procs-th peer,
// and merges their raw results into one report.
func runSplit(ctx context.Context, cfg loadgen.Config, procs int, args []string, stderr io.Writer) (loadgen.Report, error) {
	exe, err := os.Executable()
	if err != nil {
		return loadgen.Report{}, fmt.Errorf("--procs: %w", err)
	}
	var childArgs []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-")
		switch name {
		case "procs", "json", "cpuprofile", "shard":
			if !strings.Contains(a, "=") && name != "json" && i+1 < len(args) {
				i++ // the flag's value
			}
			continue
		}
		childArgs = append(childArgs, a)
	}
	before, hubErr := loadgen.HubCounters(ctx, nil, cfg.Server)
	reports := make([]loadgen.Report, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for k := 0; k < procs; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// G702 (os.Args reaching exec) does not apply: this program runs
			// itself, without a shell, with the arguments it was given.
			cmd := exec.CommandContext(ctx, exe, append([]string{"load"}, append(childArgs, "--shard", fmt.Sprintf("%d/%d", k, procs), "--json")...)...) //nolint:gosec // G702: see above
			cmd.Stderr = &prefixWriter{w: stderr, prefix: fmt.Sprintf("[%d/%d] ", k, procs)}
			// Interrupted, a child ends its playbacks and reports what it
			// has (killed only if it takes longer than childWaitDelay).
			cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
			cmd.WaitDelay = childWaitDelay
			out, err := cmd.Output()
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &reports[k]); jerr != nil || reports[k].Shard == nil {
				reports[k] = loadgen.Report{}
				if err == nil {
					err = fmt.Errorf("report: %w", jerr)
				}
			}
			if err != nil {
				errs[k] = fmt.Errorf("load process %d/%d: %w", k, procs, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if ctx.Err() == nil {
			return loadgen.Report{}, err
		}
		// Interrupted: merge the reports the children gave.
		var got []loadgen.Report
		for _, r := range reports {
			if r.Shard != nil {
				got = append(got, r)
			}
		}
		if len(got) == 0 {
			return loadgen.Report{}, err
		}
		rep, merr := loadgen.Merge(cfg, got, nil)
		if merr != nil {
			return loadgen.Report{}, errors.Join(err, merr)
		}
		return rep, fmt.Errorf("%d of %d load processes reported: %w", len(got), procs, ctx.Err())
	}
	var hub *loadgen.HubReports
	if after, err := loadgen.HubCounters(ctx, nil, cfg.Server); err == nil && hubErr == nil {
		d := loadgen.HubDelta(before, after)
		hub = &d
	}
	return loadgen.Merge(cfg, reports, hub)
}

// prefixWriter writes each line with a prefix (one child's progress).
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
		}
		out = append(out, c)
		p.mid = c != '\n'
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
