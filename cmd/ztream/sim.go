package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ztream/ztream/sim"
)

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) (retErr error) {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenario := fs.String("scenario", "spotify", "a built-in scenario ("+strings.Join(sim.BuiltinNames(), ", ")+") or a JSON or YAML scenario file (its fields override the spotify defaults)")
	listeners := fs.Int("listeners", 0, "mean listeners online; for a flash crowd alone its size, for a load run its peers (0: the scenario's)")
	hours := fs.Float64("hours", 0, "simulated hours (0: the scenario's)")
	seed := fs.Uint64("seed", 0, "random seed (0: the scenario's); a seed gives the same report")
	users := fs.Int("users", 0, "distinct listeners (0: the scenario's, else 2 × listeners)")
	startHour := fs.Float64("start-hour", -1, "hour of day at the start, 0–24 (the daily curve's; default: the scenario's)")
	hubs := fs.Int("hubs", 0, "hubs sharing the swarm (0: the scenario's)")
	out := fs.String("out", "", "also write the report (NAME.json) and its plot (NAME.svg) into this directory")
	name := fs.String("name", "", "the run's NAME in the report and --out (default: the scenario's)")
	asJSON := fs.Bool("json", false, "end the output with the report as one line of JSON")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(*cpuProfile, &retErr)
	if err != nil {
		return err
	}
	defer stopProfile()
	sc, err := sim.Load(*scenario)
	if err != nil {
		return err
	}
	if *listeners > 0 {
		switch {
		case sc.Load != nil:
			sc.Load.Peers = *listeners
		case sc.Flash != nil && sc.Listeners == 0:
			// A crowd alone: --listeners is its size.
			sc.Flash.Listeners = *listeners
			sc.Users = *listeners
		default:
			sc.Listeners = *listeners
		}
	}
	if *hours > 0 {
		sc.Hours = *hours
	}
	if *seed != 0 {
		sc.Seed = *seed
	}
	if *users > 0 {
		sc.Users = *users
	}
	if *startHour >= 0 {
		sc.StartHour = *startHour
	}
	if *hubs > 0 {
		sc.Hubs = *hubs
	}
	if *name != "" {
		if strings.ContainsAny(*name, `/\`) {
			return fmt.Errorf("--name %q: a name, not a path", *name)
		}
		sc.Name = *name
	}
	if *out != "" && sameFile(filepath.Join(*out, sc.Name+".json"), *scenario) {
		return fmt.Errorf("--out %s would write the report over the scenario file %s: give the run a --name", *out, *scenario)
	}
	s, err := sim.New(sc)
	if err != nil {
		return err
	}
	start := time.Now()
	last := start
	s.Progress = func(at time.Duration, online int, events uint64) {
		if time.Since(last) < 10*time.Second {
			return
		}
		last = time.Now()
		fmt.Fprintf(stderr, "sim: %s of %s simulated, %d online, %d events, %s\n",
			at.Round(time.Minute), time.Duration(sc.Hours*float64(time.Hour)), online, events, time.Since(start).Round(time.Second))
	}
	s.Stop = func() bool { return ctx.Err() != nil }
	r := s.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted after %s of simulated time", time.Duration(r.Hours*float64(time.Hour)).Round(time.Second))
	}
	if err := writeSimReport(stdout, r); err != nil {
		return err
	}
	if *out != "" {
		if err := writeSimFiles(*out, r); err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	return nil
}

// sameFile reports whether paths a and b name one existing file.
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// writeSimFiles writes r as DIR/NAME.json and its plot as DIR/NAME.svg.
func writeSimFiles(dir string, r sim.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report dir: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	base := filepath.Join(dir, r.Scenario)
	if err := os.WriteFile(base+".json", append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if err := os.WriteFile(base+".svg", []byte(sim.Plot(r)), 0o644); err != nil {
		return fmt.Errorf("writing the plot: %w", err)
	}
	return nil
}

// writeSimReport prints r for a person.
func writeSimReport(w io.Writer, r sim.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	row("scenario", "%s (seed %d), %g h, %d listeners on average (measured %.0f, peak %d)", r.Scenario, r.Seed, r.Hours, r.Listeners, r.MeanOnline, r.PeakOnline)
	row("plays", "%d: %d from the cache, %d over the network (%d complete, %d cut short)", r.Plays, r.CachePlays, r.NetworkPlays, r.CompletePlays, r.CutPlays)
	row("bytes", "server %.1f %%, peers %.1f %%, cache %.1f %% (%.1f GB in all)", 100*r.ServerShare, 100*r.P2PShare, 100*r.CacheShare,
		float64(r.ServerBytes+r.P2PBytes+r.CacheBytes)/1e9)
	row("offload", "%.3f of network bytes from peers (ceiling %.3f)", r.Offload, r.OffloadCeiling)
	if r.ServerBytes > 0 {
		row("server bytes", "%.1f %% emergency, %.1f %% first copies, %.1f %% orphans", 100*float64(r.ServerBy.Emergency)/float64(r.ServerBytes),
			100*float64(r.ServerBy.FirstCopy)/float64(r.ServerBytes), 100*float64(r.ServerBy.Orphan)/float64(r.ServerBytes))
	}
	for _, b := range r.BySwarm {
		row("", "tracks played %s times: %d tracks, offload %.3f (ceiling %.3f)", b.Label(), b.Tracks, b.Offload, b.Ceiling)
	}
	row("stalls", "%.2f per 1,000 plays (%.2f %% of plays stalled)", r.StallsPer1000, 100*r.StalledShare)
	row("start", "p50 %.0f ms, p90 %.0f, p99 %.0f (network plays: %.0f / %.0f / %.0f; %.1f %% started from a peer)",
		r.StartMS.P50, r.StartMS.P90, r.StartMS.P99, r.NetStartMS.P50, r.NetStartMS.P90, r.NetStartMS.P99, 100*r.StartFromPeer)
	row("", "first chunk from a peer: %.0f / %.0f / %.0f ms; from the hub: %.0f / %.0f / %.0f ms",
		r.PeerStartMS.P50, r.PeerStartMS.P90, r.PeerStartMS.P99, r.HubStartMS.P50, r.HubStartMS.P90, r.HubStartMS.P99)
	row("cold tracks", "%d, %.2f server copies each", r.ColdTracks, r.ServerCopies)
	row("tracker", "%.1f ops/s (%.1f lookups/s), %d holder entries over %d tracks, %d pairs, %d links failed",
		r.Tracker.OpsPerSec, r.Tracker.LookupsPerSec, r.Tracker.Holders, r.Tracker.TracksKnown, r.Tracker.Pairs, r.Tracker.LinksFailed)
	row("hub", "%.1f Mbit/s on average, %.1f at peak, %.2f Mbit/s per 1,000 online; %.2f cores per hub (%d hubs, projected)",
		r.Hub.MeanMbps, r.Hub.PeakMbps, r.Hub.MbpsPerOnline, r.Hub.CoresPerHub, r.Hub.Hubs)
	if r.Hub.Hubs > 1 {
		row("", "%.1f %% of can_upload questions relayed to another hub", 100*r.Hub.CrossHubAsks)
	}
	row("run", "%d events, %.1f s of wall time, %.0f MB of heap", r.Events, r.WallSeconds, r.HeapMB)
	return tw.Flush()
}
