package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/ztream/ztream/loadgen"
	"github.com/ztream/ztream/media"
)

// report is everything one benchmark run measured.
type report struct {
	Command     string
	Options     options
	SampleEvery time.Duration
	Started     time.Time
	Elapsed     time.Duration
	Machine     machineInfo
	Tracks      int
	// TrackMin and TrackMax are the shortest and longest track of the library.
	TrackMin, TrackMax time.Duration
	// PerIPFlag: serve had --max-peers-per-ip; else peers went through a
	// spreadProxy.
	PerIPFlag bool
	Idle      *idleResult
	Rows      []rowResult
	// DemoTracks is the demo library; ShortTracks the short-track library
	// and FlashTrack its longest track, the flash crowds' track.
	DemoTracks, ShortTracks []media.Summary
	FlashTrack              media.Summary
	// BigDuration is the --duration of the real-time rows, BigExtended
	// whether it is longer than 3 min because a peer plays BigTracksIn3m < 2
	// tracks in 3 min.
	BigDuration   time.Duration
	BigExtended   bool
	BigTracksIn3m float64
	// Skipped are the rows left out (see env.tooBig).
	Skipped []skippedRow
	// Cluster are the rows over several hubs (NATS, nats-server
	// NATSVersion).
	Cluster     []clusterResult
	NATSVersion string
}

// Goals the document checks.
const (
	goalOffload      = 0.95
	goalStartP99MS   = 100.0
	goalIdleBytes    = 150 << 10
	goalPeersPerCore = 100.0
	// Hub capacity: half the idle CPU per connected peer measured before
	// the capacity work (0.029 % of a core), real-time listeners per core,
	// and seeder lookups with 3 hubs on loopback.
	goalIdleCPUPct       = 0.0145
	goalRealtimePerCore  = 5000
	goalClusterLookupP99 = 20.0
	extrapolateCores     = 16
)

func mb(b float64) string  { return fmt.Sprintf("%.1f", b/1e6) }
func kib(b float64) string { return fmt.Sprintf("%.0f", b/1024) }

func ratio(x float64) string {
	if x < 0 || math.IsNaN(x) {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", x)
}

// pp formats p50 / p99 of a distribution, or "-" when empty.
func pp(p loadgen.Percentiles) string {
	if p.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f / %.1f", p.P50, p.P99)
}

func pct(x float64) string { return fmt.Sprintf("%.1f %%", 100*x) }

// scaling returns the P2P rows in the order run, and the comparison pair.
func (r *report) scaling() (rows []rowResult, on, off *rowResult) {
	for i := range r.Rows {
		row := &r.Rows[i]
		if row.Spec.Kind != kindScaling {
			continue
		}
		if row.Spec.P2P {
			rows = append(rows, *row)
			if row.Spec.Peers == r.Options.compare {
				on = row
			}
		} else if row.Spec.Peers == r.Options.compare {
			off = row
		}
	}
	return rows, on, off
}

// idleCPUPerPeer is the idle phase's hub CPU per connected idle peer
// (fraction of a core), 0 without an idle phase.
func (r *report) idleCPUPerPeer() float64 {
	id := r.Idle
	if id == nil || len(id.Samples) == 0 {
		return 0
	}
	n := id.Samples[len(id.Samples)-1].Peers
	if n == 0 {
		return 0
	}
	return max((id.CPUAll-id.CPUNone)/float64(n), 0)
}

// realtimePerCore estimates real-time listeners per core from a row: a
// simulated peer does speed listeners' worth of streaming and track changes,
// and each real listener also costs an idle connection.
func (r *report) realtimePerCore(x rowResult) float64 {
	perPeer := x.cpuPerPeer()
	if perPeer <= 0 {
		return 0
	}
	return 1 / (perPeer/r.Options.speed + r.idleCPUPerPeer())
}

// keptMarker starts the part of the document that bench does not measure
// and keeps when it rewrites the file: component benchmarks measured with
// go test -bench, each with its command.
const keptMarker = "<!-- Component benchmarks: measured with go test -bench, not by go run ./bench, which keeps them. -->"

// keptSections returns the part of an earlier document from keptMarker on
// (with a blank line before it), or "".
func keptSections(old []byte) string {
	i := strings.Index(string(old), keptMarker)
	if i < 0 {
		return ""
	}
	return "\n" + string(old[i:])
}

// write renders the whole document.
func (r *report) write(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	rows, on, off := r.scaling()
	o := r.Options
	cores := float64(max(r.Machine.CPUs, 1))

	p("# Ztream benchmarks\n\n")
	p("This file is written by `bench/` from one run; do not edit it by hand. It was produced by\n\n")
	p("```sh\n%s\n```\n\n", r.Command)
	p("run from the repository root on %s UTC; the run took %s. Rerunning the command rewrites the file.\n",
		r.Started.Format("2006-01-02 15:04"), r.Elapsed.Round(time.Second))
	p("The verdict against the project's goals is under [Goals](#goals). The sections after it are\n")
	p("component benchmarks measured with `go test -bench` (each says its command); a rewrite keeps them.\n\n")

	p("## Machine\n\n| | |\n|---|---|\n")
	p("| CPUs (`nproc`) | %d |\n| CPU model | %s |\n| memory | %.1f GiB |\n| kernel | %s |\n| Go | %s |\n| commit | %s |\n",
		r.Machine.CPUs, r.Machine.CPUModel, float64(r.Machine.MemTotal)/(1<<30), r.Machine.Kernel, r.Machine.GoVersion, r.Machine.Commit)
	p("| 1-minute load average before / after the run | %.2f / %.2f |\n\n", r.Machine.LoadBefore, r.Machine.LoadAfter)
	p("**Read these numbers as pessimistic.** The hub, the simulated peers (`ztream load` processes, or this\n")
	p("program for idle peers) and, during this run, other work on the machine all share the same %d CPUs.\n", r.Machine.CPUs)
	p("Each load row below says how much CPU the peers and everything else used while it ran.\n\n")

	p("## Method\n\n")
	p("- `go build` builds `ztream` once. Every measurement starts a **fresh** hub, so its peak RSS (`VmHWM`) belongs\n")
	p("  to that measurement alone: `ztream serve --addr 127.0.0.1:PORT --data DIR --udp-port %s --ice-ips 127.0.0.1 --pprof`\n", udpArg(o.udpPort))
	p("  (the peers reach it on 127.0.0.1 only; `--ice-ips` keeps it from offering its other addresses, as a production\n")
	p("  hub with `--ice-ips` set to its public address does),\n")
	p("  %s.\n", udpDesc(o.udpPort))
	p("  `DIR` is a copy of a library made once beforehand (the %d bundled demo tracks, %s to %s long),\n",
		r.Tracks, r.TrackMin.Round(time.Second), r.TrackMax.Round(time.Second))
	p("  so no ingest work is measured.\n")
	if r.PerIPFlag {
		p("  The hub gets `--max-peers-per-ip 100000`: all simulated peers share the loopback address.\n")
	} else {
		p("- The hub limits WebSockets per client address (`hub.Config.MaxPeersPerIP`) and this `ztream serve` has no flag to raise it,\n")
		p("  so peers connect through a small TCP proxy in the benchmark process that opens each connection from the next\n")
		p("  source address of 127.0.0.2–127.0.0.254. Only WebSocket and HTTP go through it; WebRTC goes over UDP directly.\n")
	}
	p("- Hub CPU is utime+stime of the hub process from `/proc/PID/stat`, read just before `ztream load` starts\n")
	p("  and just after it exits; *wall* is the time between the two readings. Memory is `VmRSS`/`VmHWM` from\n")
	p("  `/proc/PID/status` and the Go heap (`go_memstats_heap_inuse_bytes`) from the hub's `/metrics`, scraped every %s\n", r.SampleEvery)
	p("  without compression (as a Prometheus server would; peaks are of those samples).\n")
	p("- The scaling rows run `ztream load --server URL --peers N --duration %s --speed %g --json [--p2p=false]` and read\n", o.duration, o.speed)
	p("  the JSON report on its last line. Peers join over the first quarter of the duration (at most 30 s), start playbacks\n")
	p("  (Zipf-popular tracks) until the duration ends, then finish the playbacks under way. The [swarm rows](#swarm)\n")
	p("  (a short-track library, flash crowds, %s peers at real time) say their own flags.\n", joinCounts(o.big))
	p("- Before each measurement this program waits, at most %s, until the 1-minute load average falls under the\n", o.calm)
	p("  CPU count (the previous measurement's processes, or other work, winding down).")
	var busyStarts []string
	for _, x := range r.Rows {
		if o.calm > 0 && x.CalmWait >= o.calm {
			busyStarts = append(busyStarts, fmt.Sprintf("%s (load average %.2f)", x.Spec.name(), x.LoadAvg))
		}
	}
	if len(busyStarts) > 0 {
		p(" These rows started after the whole wait, on a busy\n  machine: %s.", strings.Join(busyStarts, ", "))
	}
	p("\n")
	p("- *Load generator CPU* is utime+stime of the `ztream load` process from the rusage `wait4` returns, which includes\n")
	p("  the load processes it started and waited for (`--procs`).\n")
	p("- Simulated peers play at **%gx real time**, so each pulls %g times the bitrate of a real listener and\n", o.speed, o.speed)
	p("  changes track %g times as often. *Real-time listeners per core (est.)* = 1 / (hub CPU per simulated peer ÷ %g\n", o.speed, o.speed)
	p("  + idle hub CPU per connected peer from the idle phase).\n")
	p("- *Offload* = p2p bytes / (p2p + server bytes) over the whole run, from the load report. *Warm offload* is the\n")
	p("  same ratio over the second half of the starting phase (from %s to %s after the start), from the hub's\n", o.duration/2, o.duration)
	p("  `ztream_delivered_bytes_total` counters (server bytes counted by the hub, p2p bytes as reported by peers\n")
	p("  every 5 s): the swarm is warm then.\n")
	p("- *Start* latency is the time from `Play` to the first chunk ready, for playbacks not served from a peer's\n")
	p("  own cache (p50/p99 nearest rank).\n")
	p("- *Hub CPU per peer* = hub CPU-seconds / (peers × wall seconds), the fraction of one core each peer costs\n")
	p("  on average over the run (joins, playbacks, drain); *peers per core* is its inverse.\n\n")

	if r.Idle != nil {
		r.writeIdle(w)
	}
	if on != nil && off != nil {
		r.writeCompare(w, *on, *off)
	}
	if len(rows) > 0 {
		r.writeScaling(w, rows, cores)
	}
	r.writeSwarm(w, cores)
	r.writeCluster(w)
	r.writeProfiles(w)
	r.writeGoals(w, rows, on, off, cores)
}

func udpArg(port int) string {
	if port < 0 {
		return "UDP_PORT"
	}
	return fmt.Sprint(port)
}

func udpDesc(port int) string {
	switch {
	case port < 0:
		return "where `UDP_PORT` is a free port: one UDP mux for all of the hub's PeerConnections, as in production"
	case port == 0:
		return "i.e. no UDP mux: the hub opens an ephemeral socket per PeerConnection"
	default:
		return "one UDP mux for all of the hub's PeerConnections, as in production"
	}
}

func (r *report) writeIdle(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	id := r.Idle
	p("## Hub memory per connected idle peer\n\n")
	p("A fresh hub; this program connects peers (package `peer`: a WebSocket and a PeerConnection with its DataChannel\n")
	p("open, then nothing but keepalives and a stats message every 5 s), waits until `ztream_connected_peers` counts them,\n")
	p("waits %s more, forces a GC in the hub (`/debug/pprof/heap?gc=1`) and reads:\n\n", 3*time.Second)
	p("| peers held | `ztream_connected_peers` | hub RSS (MB) | heap in use (MB) | heap allocated (MB) | goroutines |\n|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range id.Samples {
		p("| %d | %.0f | %s | %s | %s | %.0f |\n", s.Peers, s.Connected, mb(float64(s.RSS)), mb(s.HeapInuse), mb(s.HeapAlloc), s.Goroutines)
	}
	p("\n")
	if id.DialFailures > 0 {
		p("%d peers failed to connect.\n\n", id.DialFailures)
	}
	last := id.Samples[len(id.Samples)-1]
	p("Per connected idle peer (from 0 to %d peers): **%s KiB of heap in use**, %s KiB of heap allocated, **%s KiB of RSS**,\n",
		last.Peers, kib(id.perPeer(func(s idleSample) float64 { return s.HeapInuse })),
		kib(id.perPeer(func(s idleSample) float64 { return s.HeapAlloc })),
		kib(id.perPeer(func(s idleSample) float64 { return float64(s.RSS) })))
	p("%.1f goroutines. RSS after a GC still holds memory the Go runtime has freed but not yet returned to the OS.\n\n",
		id.perPeer(func(s idleSample) float64 { return s.Goroutines }))
	cpuPer := 0.0
	if last.Peers > 0 {
		cpuPer = (id.CPUAll - id.CPUNone) / float64(last.Peers)
	}
	p("Idle hub CPU over %s (opened %s after the last peer joined): %s of a core with no peer, %s with %d idle peers, i.e. **%.4f %% of a core per idle peer**.\n",
		id.CPUWindow, id.CPUQuiet, pct(id.CPUNone), pct(id.CPUAll), last.Peers, 100*cpuPer)
	p("Connecting the last %d peers took %s (8 at a time, peers in this process). Hub peak RSS in this phase: %s MB.\n",
		last.Peers-id.Samples[max(len(id.Samples)-2, 0)].Peers, id.DialTime.Round(time.Millisecond), mb(float64(id.HWM)))
	if id.Joins > 0 {
		perJoin := id.JoinCPU / float64(id.Joins)
		p("The hub used %.0f ms of CPU per join meanwhile (WebSocket, hello, ICE, DTLS, SCTP, DataChannel), i.e. **≈ %.0f joins per second per core**.\n",
			1000*perJoin, 1/max(perJoin, 1e-9))
	}
	p("\n")
	if len(id.HeapSum) > 0 {
		p("Where the hub's in-use heap is with %d peers connected (heap profile, `inuse_space`, by package):\n\n", last.Peers)
		writeShares(w, id.HeapSum)
		p("<details><summary>go tool pprof -sample_index=inuse_space -top</summary>\n\n```\n%s\n```\n</details>\n\n", trimPprofHeader(id.HeapTop))
	} else if id.HeapTop != "" {
		p("%s\n\n", id.HeapTop)
	}
}

func writeShares(w io.Writer, shares []profileShare) {
	fmt.Fprintf(w, "| group | share |\n|---|---:|\n")
	for _, s := range shares {
		if s.Percent < 0.5 {
			continue
		}
		fmt.Fprintf(w, "| %s | %.1f %% |\n", s.Group, s.Percent)
	}
	fmt.Fprintln(w)
}

func (r *report) writeCompare(w io.Writer, on, off rowResult) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## P2P on vs off\n\n")
	p("The same workload (%d peers, %s, seed 1, %gx), once with P2P and once with `--p2p=false`; a fresh hub each.\n\n",
		on.Spec.Peers, r.Options.duration, r.Options.speed)
	p("| | P2P on | P2P off |\n|---|---:|---:|\n")
	row := func(name string, f func(rowResult) string) { p("| %s | %s | %s |\n", name, f(on), f(off)) }
	row("server bytes (MB)", func(x rowResult) string { return mb(float64(x.Rep.ServerBytes)) })
	row("p2p bytes (MB)", func(x rowResult) string { return mb(float64(x.Rep.P2PBytes)) })
	row("cache bytes (MB)", func(x rowResult) string { return mb(float64(x.Rep.CacheBytes)) })
	row("offload (whole run)", func(x rowResult) string { return ratio(x.Rep.OffloadRatio) })
	row("warm offload (second half)", func(x rowResult) string { return ratio(x.WarmOffload) })
	row("hub CPU (CPU-seconds)", func(x rowResult) string { return fmt.Sprintf("%.1f", x.HubCPU) })
	row("wall (s)", func(x rowResult) string { return fmt.Sprintf("%.1f", x.Wall) })
	row("hub CPU per peer (% of a core)", func(x rowResult) string { return fmt.Sprintf("%.3f", 100*x.cpuPerPeer()) })
	row("hub peak RSS (MB)", func(x rowResult) string { return mb(float64(x.PeakRSS)) })
	row("hub peak heap in use (MB)", func(x rowResult) string { return mb(x.PeakHeap) })
	row("peak hub DataChannel queue (MB)", func(x rowResult) string { return mb(x.PeakBuffered) })
	row("start p50 / p99 (ms)", func(x rowResult) string {
		return fmt.Sprintf("%.1f / %.1f", x.Rep.StartupMS.P50, x.Rep.StartupMS.P99)
	})
	row("seeder lookup p50 / p99 (ms)", func(x rowResult) string { return pp(x.Rep.LookupMS) })
	row("peer connect p50 / p99 (ms)", func(x rowResult) string { return pp(x.Rep.ConnectMS) })
	row("stalls (stalled ms)", func(x rowResult) string { return fmt.Sprintf("%d (%.0f)", x.Rep.Stalls, x.Rep.StalledMS) })
	row("playbacks (complete, errors)", func(x rowResult) string {
		return fmt.Sprintf("%d (%d, %d)", x.Rep.Playbacks, x.Rep.PlaybacksComplete, x.Rep.PlaybackErrors)
	})
	row("peers failed to connect", func(x rowResult) string { return fmt.Sprint(x.Rep.PeersFailed) })
	row("load generator CPU (CPU-seconds)", func(x rowResult) string { return fmt.Sprintf("%.1f", x.LoadCPU) })
	row("whole machine busy (CPU-seconds)", func(x rowResult) string { return fmt.Sprintf("%.1f", x.MachineBusy) })
	if on.Final != nil && off.Final != nil {
		row("seeder lookups found / not found / timeout", func(x rowResult) string {
			return fmt.Sprintf("%.0f / %.0f / %.0f", x.Final[`ztream_seeder_lookups_total{outcome="found"}`],
				x.Final[`ztream_seeder_lookups_total{outcome="not_found"}`], x.Final[`ztream_seeder_lookups_total{outcome="timeout"}`])
		})
		row("p2p pairs brokered / failed", func(x rowResult) string {
			return fmt.Sprintf("%.0f / %.0f", x.Final["ztream_p2p_pairs_brokered_total"], x.Final["ztream_p2p_pairs_failed_total"])
		})
		row("peer stats reports accepted / clamped / rate limited / invalid", func(x rowResult) string {
			f := func(r string) float64 { return x.Final[`ztream_peer_stats_reports_total{result="`+r+`"}`] }
			return fmt.Sprintf("%.0f / %.0f / %.0f / %.0f", f("accepted"), f("clamped"), f("rate_limited"), f("invalid"))
		})
		row("emergency fetches (peer-reported)", func(x rowResult) string {
			return fmt.Sprintf("%.0f", x.Final["ztream_emergency_fetches_total"])
		})
	}
	p("\n")
	if off.Rep.ServerBytes > 0 && off.HubCPU > 0 {
		p("With P2P the server sent %s %% of the bytes it sent without (%s MB vs %s MB), and the hub used %s %% of the CPU.\n",
			fmt.Sprintf("%.1f", 100*float64(on.Rep.ServerBytes)/float64(off.Rep.ServerBytes)), mb(float64(on.Rep.ServerBytes)),
			mb(float64(off.Rep.ServerBytes)), fmt.Sprintf("%.0f", 100*on.HubCPU/off.HubCPU))
		if on.HubCPU > off.HubCPU {
			p("P2P costs the hub more CPU here than it saves: brokering pairs (signaling, tracker) and the peer\n")
			p("stats replace streaming, and the offload is not high enough to pay for it at this scale.\n")
		}
		p("\n")
	}
}

func (r *report) writeScaling(w io.Writer, rows []rowResult, cores float64) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## Scaling (P2P on)\n\n")
	p("Each row: a fresh hub, `ztream load --peers N --duration %s --speed %g`.\n\n", r.Options.duration, r.Options.speed)
	p("### Delivery\n\n")
	p("| peers | playbacks (complete) | offload | warm offload | server MB | p2p MB | p2p MB counted by the hub | start p50 (ms) | start p99 (ms) | lookup p50 / p99 (ms) | stalls | failed peers | playback errors |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range rows {
		p("| %d | %d (%d) | %s | %s | %s | %s | %s | %.1f | %.1f | %s | %d | %d | %d |\n", x.Spec.Peers, x.Rep.Playbacks, x.Rep.PlaybacksComplete,
			ratio(x.Rep.OffloadRatio), ratio(x.WarmOffload), mb(float64(x.Rep.ServerBytes)), mb(float64(x.Rep.P2PBytes)), mb(x.Final[mP2PBytes]),
			x.Rep.StartupMS.P50, x.Rep.StartupMS.P99, pp(x.Rep.LookupMS), x.Rep.Stalls, x.Rep.PeersFailed, x.Rep.PlaybackErrors)
	}
	p("\n*p2p MB* is what the peers received from each other (load report); *counted by the hub* is what the hub's\n")
	p("`ztream_delivered_bytes_total{source=\"p2p\"}` accepted from the peers' stats reports, which it caps by the tracks\n")
	p("each peer played or was paired for. The warm offload uses the hub's counters, so where the two p2p columns differ it is an estimate.\n")
	p("\n### Hub cost\n\n")
	p("| peers | hub CPU-s | wall s | hub cores used | CPU per peer (%% core) | peers per core | real-time listeners per core (est.) | peak RSS MB | (peak − start RSS) per peer KiB | peak heap MB | peak hub DataChannel queue MB | peak goroutines | load generator CPU-s | other processes CPU-s | machine busy |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range rows {
		perPeer := x.cpuPerPeer()
		perCore, leq := "n/a", "n/a"
		if perPeer > 0 {
			perCore = fmt.Sprintf("%.0f", 1/perPeer)
			leq = fmt.Sprintf("%.0f", r.realtimePerCore(x))
		}
		other := x.MachineBusy - x.HubCPU - x.LoadCPU
		busy := 0.0
		if x.Wall > 0 {
			busy = x.MachineBusy / (x.Wall * cores)
		}
		p("| %d | %.1f | %.1f | %.2f | %.3f | %s | %s | %s | %s | %s | %s | %.0f | %.1f | %.1f | %s |\n", x.Spec.Peers, x.HubCPU, x.Wall,
			x.HubCPU/max(x.Wall, 1e-9), 100*perPeer, perCore, leq, mb(float64(x.PeakRSS)),
			kib(float64(x.PeakRSS-x.StartRSS)/float64(x.Spec.Peers)), mb(x.PeakHeap), mb(x.PeakBuffered), x.PeakGor, x.LoadCPU, max(other, 0), pct(busy))
	}
	p("\n*Other processes* = whole-machine busy CPU minus the hub and the load generator over the same wall time:\n")
	p("other helpers' builds and tests sharing this machine, and this program. *Machine busy* is of all %.0f CPUs.\n\n", cores)
	// Where it stops.
	p("### Where it stops\n\n")
	p("A row *holds* when every peer connected, no playback failed or stalled, start p99 stayed under %.0f ms and\n", degradedStartP99MS)
	p("the offload over the whole run (load report) over %.1f.\n\n", degradedOffload)
	p("| peers | status |\n|---:|---|\n")
	var lastHeld *rowResult
	for i, x := range rows {
		if pr := x.problems(); len(pr) > 0 {
			p("| %d | **did not hold**: %s |\n", x.Spec.Peers, strings.Join(pr, "; "))
		} else {
			p("| %d | held |\n", x.Spec.Peers)
			lastHeld = &rows[i]
		}
	}
	p("\n")
	for _, x := range rows {
		if x.held() {
			continue
		}
		busy := x.MachineBusy / (max(x.Wall, 1e-9) * cores)
		p("At %d peers the machine was %s busy over %.0f s: the hub used %.1f CPU-seconds (%.2f cores), the load generator\n",
			x.Spec.Peers, pct(busy), x.Wall, x.HubCPU, x.HubCPU/max(x.Wall, 1e-9))
		other := max(x.MachineBusy-x.HubCPU-x.LoadCPU, 0)
		p("%.1f (%.2f cores) and other processes %.1f (%.2f cores).", x.LoadCPU, x.LoadCPU/max(x.Wall, 1e-9), other, other/max(x.Wall, 1e-9))
		if x.Rep.LookupMS.N > 0 {
			p(" Seeder lookups took %s ms (p50 / p99) and peer connections %s ms, against %s and %s\n", pp(x.Rep.LookupMS), pp(x.Rep.ConnectMS),
				ppOf(lastHeld, func(r rowResult) loadgen.Percentiles { return r.Rep.LookupMS }),
				ppOf(lastHeld, func(r rowResult) loadgen.Percentiles { return r.Rep.ConnectMS }))
			p("in the largest row that held; a leecher that finds no seeder in time gets the track from the hub, which sent\n")
			p("%s MB here. ", mb(float64(x.Rep.ServerBytes)))
		}
		if busy > 0.95 {
			p("The machine had no CPU left, so these figures measure this shared %.0f-CPU box more than the hub.\n\n", cores)
		} else {
			p("The machine was not saturated (%s busy), so raw CPU is not the whole story: the load generator process,\n", pct(busy))
			p("which runs every simulated peer and sets up every peer-to-peer connection, used %.2f cores.\n\n", x.LoadCPU/max(x.Wall, 1e-9))
		}
		break
	}
	switch {
	case lastHeld == nil:
		p("No row held.\n\n")
	case lastHeld.Spec.Peers == rows[len(rows)-1].Spec.Peers:
		p("Every row held; the largest tried was %d peers. Larger rows were not run, to keep the benchmark short.\n\n", lastHeld.Spec.Peers)
	default:
		p("The largest row that held had **%d peers**.\n\n", lastHeld.Spec.Peers)
	}
}

// ppOf is pp of a field of r, or "-" without a row.
func ppOf(r *rowResult, f func(rowResult) loadgen.Percentiles) string {
	if r == nil {
		return "-"
	}
	return pp(f(*r)) + " ms"
}

func (r *report) writeProfiles(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	var prof []rowResult
	for _, x := range r.Rows {
		if x.Spec.Profile && x.ProfileTop != "" {
			prof = append(prof, x)
		}
	}
	if len(prof) == 0 {
		return
	}
	p("## Where the hub's CPU goes\n\n")
	p("CPU profiles of the hub (`/debug/pprof/profile?seconds=%.0f`, taken from the start of the run), flat time\n", r.Options.duration.Seconds())
	p("grouped by package:\n\n")
	groups := map[string]bool{}
	var order []string
	for _, x := range prof {
		for _, sh := range x.ProfileSum {
			if !groups[sh.Group] {
				groups[sh.Group] = true
				order = append(order, sh.Group)
			}
		}
	}
	p("| group |")
	for _, x := range prof {
		p(" %s |", x.Spec.name())
	}
	p("\n|---|")
	for range prof {
		p("---:|")
	}
	p("\n")
	for _, g := range order {
		p("| %s |", g)
		for _, x := range prof {
			v := 0.0
			for _, sh := range x.ProfileSum {
				if sh.Group == g {
					v = sh.Percent
				}
			}
			p(" %.1f %% |", v)
		}
		p("\n")
	}
	p("\n")
	p("Share of the samples whose call stack passes through each part (a sample counts for every part on its stack,\n")
	p("so a column does not sum to 100 %%):\n\n")
	p("| part |")
	for _, x := range prof {
		p(" %s |", x.Spec.name())
	}
	p("\n|---|")
	for range prof {
		p("---:|")
	}
	p("\n")
	for _, t := range stackTopics {
		p("| %s |", t.topic)
		for _, x := range prof {
			v := 0.0
			for _, sh := range x.ProfileTopics {
				if sh.Group == t.topic {
					v = sh.Percent
				}
			}
			p(" %.1f %% |", v)
		}
		p("\n")
	}
	p("\n")
	for _, x := range prof {
		p("### %s\n\n", x.Spec.name())
		if len(x.ProfileSum) == 0 {
			p("%s\n\n", x.ProfileTop)
			continue
		}
		p("```\n%s\n```\n\n", trimPprofHeader(x.ProfileTop))
		p("<details><summary>go tool pprof -top -cum</summary>\n\n```\n%s\n```\n</details>\n\n", trimPprofHeader(x.ProfileCum))
	}
}

// verdict says "reached" or "**not reached**".
func verdict(ok bool) string {
	if ok {
		return "reached"
	}
	return "**not reached**"
}

func (r *report) writeGoals(w io.Writer, rows []rowResult, on, off *rowResult, cores float64) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## Goals\n\n| goal | target | measured | |\n|---|---|---|---|\n")
	var why []string

	// Offload on a warm swarm: judged on the largest P2P row that held.
	if len(rows) > 0 {
		var best, worst *rowResult
		var byRow []string
		for i := range rows {
			x := &rows[i]
			if x.WarmOffload < 0 {
				continue
			}
			byRow = append(byRow, fmt.Sprintf("%d: %s", x.Spec.Peers, ratio(x.WarmOffload)))
			if x.held() {
				best = x
			}
			if worst == nil || x.WarmOffload < worst.WarmOffload {
				worst = x
			}
		}
		measured, v := "no P2P row held", verdict(false)
		if best != nil {
			measured = fmt.Sprintf("%s warm at %d peers (the largest row that held), %s over its whole run", ratio(best.WarmOffload),
				best.Spec.Peers, ratio(best.Rep.OffloadRatio))
			v = verdict(best.WarmOffload >= goalOffload)
			undercount := best.Final[mP2PBytes] < float64(best.Rep.P2PBytes)
			if best.WarmOffload < goalOffload && best.Rep.OffloadRatio >= goalOffload && undercount {
				// The whole run includes the cold start, so the peers' own
				// warm offload is usually at least as high.
				v = "reached by the load report (whole run, cold start included); the hub-counted warm estimate is lower because the hub counted less p2p than the peers received"
			}
		}
		if len(byRow) > 0 {
			measured += "; warm offload by peers: " + strings.Join(byRow, ", ")
		}
		p("| offload on a warm swarm | ≥ %.2f | %s | %s |\n", goalOffload, measured, v)
		if worst != nil && worst.WarmOffload < goalOffload {
			x := worst
			why = append(why, fmt.Sprintf("**Offload.** The lowest warm offload was at %d peers (%s): %s MB came from the server and %s MB "+
				"from peers. Every playback's start window comes from the server by design (instant start), and at %gx every real "+
				"millisecond a leecher spends finding and connecting to a seeder is that many milliseconds of audio the hub has to "+
				"cover (seeder lookups p50 / p99 %s ms, peer connections %s ms in that row). The hub saw %.0f seeder lookups found, "+
				"%.0f not found and %.0f timed out, %.0f p2p pairs brokered of which %.0f failed, and peers reported %.0f emergency "+
				"fetches from the server (a peer chunk arriving too late). Meanwhile the load generator, which runs every "+
				"simulated peer's WebRTC stack in one process, used %.1f CPU-s (%.2f cores) and the hub %.1f (%.2f cores) "+
				"of the machine's %d.",
				x.Spec.Peers, ratio(x.WarmOffload), mb(float64(x.Rep.ServerBytes)), mb(float64(x.Rep.P2PBytes)), r.Options.speed,
				pp(x.Rep.LookupMS), pp(x.Rep.ConnectMS),
				x.Final[`ztream_seeder_lookups_total{outcome="found"}`], x.Final[`ztream_seeder_lookups_total{outcome="not_found"}`],
				x.Final[`ztream_seeder_lookups_total{outcome="timeout"}`], x.Final["ztream_p2p_pairs_brokered_total"],
				x.Final["ztream_p2p_pairs_failed_total"], x.Final["ztream_emergency_fetches_total"],
				x.LoadCPU, x.LoadCPU/max(x.Wall, 1e-9), x.HubCPU, x.HubCPU/max(x.Wall, 1e-9), r.Machine.CPUs))
		}
	}

	why = append(why, r.writeSwarmGoals(w)...)

	// Stalls.
	stalls, stalledRows := 0, []string{}
	for _, x := range r.Rows {
		stalls += x.Rep.Stalls
		if x.Rep.Stalls > 0 {
			stalledRows = append(stalledRows, fmt.Sprintf("%s: %d", x.Spec.name(), x.Rep.Stalls))
		}
	}
	p("| no stalls | 0 | %d over all load rows%s | %s |\n", stalls, listNote(stalledRows), verdict(stalls == 0))
	if stalls > 0 {
		why = append(why, fmt.Sprintf("**Stalls** (%s): see each row's *machine busy* figure: the simulated peers' clocks, "+
			"the hub and other processes compete for %.0f CPUs.", strings.Join(stalledRows, ", "), cores))
	}

	why = append(why, r.writeStartGoal(w, on, off, cores)...)

	// Idle memory.
	if id := r.Idle; id != nil && len(id.Samples) >= 2 {
		heap := id.perPeer(func(s idleSample) float64 { return s.HeapInuse })
		rss := id.perPeer(func(s idleSample) float64 { return float64(s.RSS) })
		v := verdict(heap <= goalIdleBytes && rss <= goalIdleBytes)
		if heap <= goalIdleBytes && rss > goalIdleBytes {
			v = "reached for the heap, **not for RSS**"
		}
		p("| hub memory per idle connected peer | ≤ %d KiB | %s KiB heap in use, %s KiB RSS | %s |\n", goalIdleBytes>>10, kib(heap), kib(rss), v)
		if heap > goalIdleBytes || rss > goalIdleBytes {
			var top []string
			for i, s := range id.HeapSum {
				if i == 3 {
					break
				}
				top = append(top, fmt.Sprintf("%s %.0f %%", s.Group, s.Percent))
			}
			why = append(why, fmt.Sprintf("**Idle memory.** Each connected peer holds a WebSocket session and a Pion PeerConnection "+
				"(ICE agent, DTLS connection, SCTP association with its buffers, one DataChannel). The hub's heap profile with all peers "+
				"connected puts the in-use heap in: %s. RSS is also higher than the heap because the runtime keeps freed spans.",
				strings.Join(top, ", ")))
		}
	}

	// Listeners per core: directly at 1x when a real-time row ran, else
	// estimated from the largest scaling row that held.
	var best *rowResult
	for i := range rows {
		if rows[i].held() && rows[i].cpuPerPeer() > 0 {
			best = &rows[i]
		}
	}
	// rt is the largest real-time row that held; unheld is the largest
	// that did not, reported but not judged.
	var rt, unheld *rowResult
	for _, x := range r.rowsOf(kindBig) {
		if x.cpuPerPeer() <= 0 {
			continue
		}
		if x.held() {
			rt = &x
		} else {
			unheld = &x
		}
	}
	var measured []string
	reached, estReached := false, false
	if rt != nil {
		direct := 1 / rt.cpuPerPeer()
		measured = append(measured, fmt.Sprintf("**%.0f listeners per core measured at 1x** with %s peers (the hub used %.2f cores)",
			direct, thousands(rt.Spec.Peers), rt.HubCPU/max(rt.Wall, 1e-9)))
		reached = direct >= goalPeersPerCore
	}
	if best != nil {
		direct := 1 / best.cpuPerPeer()
		est := r.realtimePerCore(*best)
		measured = append(measured, fmt.Sprintf("%.0f simulated %gx peers per core at %d peers (direct); ≈ %.0f real-time listeners per core (estimate)",
			direct, r.Options.speed, best.Spec.Peers, est))
		if rt == nil {
			reached = direct >= goalPeersPerCore
			estReached = est >= goalPeersPerCore
		}
	}
	if unheld != nil && (rt == nil || unheld.Spec.Peers > rt.Spec.Peers) {
		measured = append(measured, fmt.Sprintf("not judged: at 1x with %s peers, a row that did not hold, the hub used %.2f cores "+
			"for %d connected peers (%.0f per core)", thousands(unheld.Spec.Peers), unheld.HubCPU/max(unheld.Wall, 1e-9),
			unheld.connected(), 1/unheld.cpuPerPeer()))
	}
	switch {
	case rt == nil && best == nil:
		measured = append([]string{"no P2P row held"}, measured...)
		p("| concurrent listeners per core | ≥ %.0f | %s | **not measured** |\n", goalPeersPerCore, strings.Join(measured, "; "))
	default:
		v := verdict(reached)
		if !reached && estReached {
			v = "reached by the real-time estimate, not directly"
		}
		p("| concurrent listeners per core | ≥ %.0f | %s | %s |\n", goalPeersPerCore, strings.Join(measured, "; "), v)
	}
	// Hub capacity.
	if r.idleCPUPerPeer() > 0 {
		per := 100 * r.idleCPUPerPeer()
		p("| idle hub CPU per connected peer | ≤ %.4f %% of a core (half the 0.029 %% before) | %.4f %% | %s |\n",
			goalIdleCPUPct, per, verdict(per <= goalIdleCPUPct))
	}
	if best != nil {
		est := r.realtimePerCore(*best)
		p("| real-time listeners per hub core | ≥ %s | ≈ %.0f (estimate; ≈ %s on %d cores if the hub scaled linearly) | %s |\n",
			thousands(goalRealtimePerCore), est, thousands(int(est*extrapolateCores)), extrapolateCores, verdict(est >= goalRealtimePerCore))
	}
	for _, c := range r.Cluster {
		if c.Killed != "" || c.Err != "" {
			continue
		}
		p("| seeder lookup p99 with %d hubs (%s, %d peers at %gx) | ≤ %.0f ms | %.1f ms (p50 %.1f) | %s |\n", clusterHubs, c.Label,
			c.Rep.Peers, r.Options.speed, goalClusterLookupP99, c.Rep.LookupMS.P99, c.Rep.LookupMS.P50, verdict(c.Rep.LookupMS.P99 <= goalClusterLookupP99))
		if c.Rep.LookupMS.P99 > goalClusterLookupP99 {
			why = append(why, fmt.Sprintf("**Lookups across hubs.** A peer's lookup ends when the seeders asked have answered "+
				"(or 100 ms after the first yes): its p99 is the slowest seeder's answer, relayed through NATS when the seeder is on "+
				"another hub, while %d hubs, nats-server and the load generator's %d peers at %gx share this machine's %d cores.",
				clusterHubs, c.Rep.Peers, r.Options.speed, r.Machine.CPUs))
		}
	}
	if best != nil {
		p("\n")
		p("The real-time estimate divides a core by (hub CPU per simulated peer ÷ %g + idle hub CPU per connected peer): a\n", r.Options.speed)
		p("simulated peer does %g listeners' worth of streaming and track changes, and each real listener also costs an idle\n", r.Options.speed)
		p("connection's keepalives. It assumes the hub's work grows with bytes and playbacks, as the profile suggests.\n")
		if id := r.Idle; id != nil && len(id.Samples) >= 2 {
			n := r.realtimePerCore(*best) * extrapolateCores
			rss := id.perPeer(func(s idleSample) float64 { return float64(s.RSS) })
			p("On a %d-core machine that would be ≈ %s listeners, whose connections alone need ≈ %.1f GB of RSS (%s KiB each, "+
				"measured idle). Not tried here; what would stop such a hub first is not known from this machine: every "+
				"listener's WebRTC traffic goes through one UDP port (one socket, whose reads Pion's mux does in one goroutine), "+
				"and the real-time rows on 2 cores were limited by the load generator, which needed several times the hub's CPU.\n",
				extrapolateCores, thousands(int(n)), n*rss/1e9, kib(rss))
		}
	}
	if rt != nil && !reached {
		why = append(why, fmt.Sprintf("**Listeners per core.** At 1x with %d peers the hub used %.1f CPU-seconds over %.0f s "+
			"(%.2f cores) while the machine was %s busy; see the real-time rows' cost table.", rt.Spec.Peers, rt.HubCPU, rt.Wall,
			rt.HubCPU/max(rt.Wall, 1e-9), pct(busyOf(*rt, cores))))
	}
	if rt == nil && !reached && best != nil {
		var top []string
		if on != nil {
			for i, s := range on.ProfileTopics {
				if i == 4 {
					break
				}
				top = append(top, fmt.Sprintf("%s %.0f %%", s.Group, s.Percent))
			}
		}
		msg := fmt.Sprintf("**Listeners per core.** At %d simulated peers the hub used %.2f cores on average; each simulated peer "+
			"plays %gx faster than a listener, so the direct figure understates real listeners by about that factor.",
			best.Spec.Peers, best.HubCPU/max(best.Wall, 1e-9), r.Options.speed)
		if len(top) > 0 {
			msg += " In the hub's CPU profile of that P2P row, the most common parts of the stacks: " + strings.Join(top, ", ") + "."
		}
		why = append(why, msg)
	}
	p("\n")
	if len(why) > 0 {
		p("### Why the misses\n\n")
		for _, s := range why {
			p("- %s\n", s)
		}
		p("\n")
	}
}

func listNote(items []string) string {
	if len(items) == 0 {
		return ""
	}
	return " (" + strings.Join(items, ", ") + ")"
}
