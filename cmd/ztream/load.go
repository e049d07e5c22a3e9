package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/ztream/ztream/loadgen"
	"github.com/ztream/ztream/peer"
)

// runLoad runs `ztream load`: simulated peers against a running hub.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadgen.Config
	fs.StringVar(&cfg.Server, "server", envOr("ZTREAM_SERVER", ""), "base URL of the hub, e.g. http://127.0.0.1:8080 (env ZTREAM_SERVER)")
	fs.IntVar(&cfg.Peers, "peers", 16, "number of simulated peers")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "how long peers keep starting playbacks (those under way then finish)")
	fs.DurationVar(&cfg.Ramp, "ramp", 0, "spread peer joins over this time (default min(duration/4, 30s))")
	fs.Float64Var(&cfg.Speed, "speed", 10, "playback speed factor (simulated time runs this much faster)")
	fs.Float64Var(&cfg.ZipfS, "tracks-zipf", 1.2, "Zipf exponent of track popularity (> 1)")
	seed := fs.Uint64("seed", 1, "random seed for track choices")
	p2p := fs.Bool("p2p", true, "let peers stream from each other (false: server only)")
	fs.IntVar(&cfg.UploadCap, "upload-cap", 0, "upload cap of every peer (0 = default 4)")
	cacheMB := fs.Int64("cache-mb", 0, "cache size of every peer in MiB (0 = default 256)")
	loopback := fs.String("loopback", "auto", "gather loopback ICE candidates: auto (when the server is on loopback), true or false")
	fs.IntVar(&cfg.CorruptPeers, "corrupt-peers", 0, "how many peers serve faulty chunks when seeding (spread over the join order)")
	faults := fs.String("corrupt-mode", "rotate", "fault of the corrupt peers: rotate (bad_bytes, wrong_seq, oversize, silent in turn) or one of them")
	fs.Float64Var(&cfg.Churn, "churn", 0, "probability (0..1) that a peer leaves after a playback and rejoins as a new peer keeping its cache")
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
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintf(stderr, "load: %d peers against %s for %s at %gx\n", cfg.Peers, cfg.Server, cfg.Duration, cfg.Speed)
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := loadgen.WriteTable(stdout, rep); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if *asJSON {
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
