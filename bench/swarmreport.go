package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/ztream/ztream/loadgen"
)

// Goals of the swarm rows.
const (
	goalShortOffload  = 0.90
	goalFlashPeers    = 32
	goalFlashCopies   = 1.5
	goalBigPeers      = 1000
	goalBigOffload    = 0.95
	goalBigStartP99MS = 250.0
	// Start latency up to goalStartMaxPeers peers at goalStartSpeed: p50
	// under goalStartP50MS and p99 under goalStartP99MS.
	goalStartP50MS    = 20.0
	goalStartMaxPeers = 100
	goalStartSpeed    = 10.0
)

// rowsOf returns the rows of kind k in the order run.
func (r *report) rowsOf(k rowKind) []rowResult {
	var out []rowResult
	for _, x := range r.Rows {
		if x.Spec.Kind == k {
			out = append(out, x)
		}
	}
	return out
}

// rowOf returns the row of kind k with n peers, or nil.
func (r *report) rowOf(k rowKind, n int) *rowResult {
	for i := range r.Rows {
		if x := &r.Rows[i]; x.Spec.Kind == k && x.Spec.Peers == n {
			return x
		}
	}
	return nil
}

// library names the library a row played.
func (x rowResult) library() string {
	if x.Spec.Kind == kindShort || x.Spec.Kind == kindFlash {
		return "short tones"
	}
	return "demo"
}

// nCeil is 1 − 1/n: the offload when n peers play a track once and the
// server sends it once.
func nCeil(n int) float64 { return 1 - 1/float64(n) }

// p5095 formats p50 / p95 of a count distribution, or "-".
func p5095(p loadgen.Percentiles) string {
	if p.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f / %.0f", p.P50, p.P95)
}

// ofCeiling is offload ÷ ceiling as a percentage.
func ofCeiling(x rowResult) string {
	if x.Rep.OffloadCeiling <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f %%", 100*x.Rep.OffloadRatio/x.Rep.OffloadCeiling)
}

// thousands formats n with a comma between thousands (1,000).
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// joinCounts lists counts as "a, b and c".
func joinCounts(counts []int) string {
	var out []string
	for _, n := range counts {
		out = append(out, thousands(n))
	}
	if len(out) < 2 {
		return strings.Join(out, "")
	}
	return strings.Join(out[:len(out)-1], ", ") + " and " + out[len(out)-1]
}

// stalled formats stalls and their summed time in seconds.
func stalled(x rowResult) string {
	return fmt.Sprintf("%d (%.1f)", x.Rep.Stalls, x.Rep.StalledMS/1000)
}

// busyOf is the machine's busy share over a row.
func busyOf(x rowResult, cores float64) float64 {
	return x.MachineBusy / (max(x.Wall, 1e-9) * cores)
}

// plotPath is where the swarm plot goes: next to the Markdown file.
func (r *report) plotPath() string {
	return filepath.Join(filepath.Dir(r.Options.out), "bench-swarm.svg")
}

// writeSwarm writes the swarm section: every P2P row's sharing figures,
// the plot, then the short-track swarm, the flash crowds and the
// real-time rows.
func (r *report) writeSwarm(w io.Writer, cores float64) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	var all []rowResult
	for _, x := range r.Rows {
		if x.Spec.P2P {
			all = append(all, x)
		}
	}
	if len(all) == 0 {
		return
	}
	p("## Swarm\n\n")
	p("How well the peers share, for every load row with P2P:\n\n")
	p("- *ceiling*: the best offload possible for the playbacks made (`offload_ceiling` of the load report):\n")
	p("  1 − (bytes of the distinct tracks played) / (server + p2p bytes), the server sending each track once;\n")
	p("- *server copies*: server bytes ÷ bytes of the distinct tracks played (not from a cache), i.e. how many copies\n")
	p("  of what was played the server sent; 1 is the least;\n")
	p("- *sources / playback*: how many peers delivered at least one chunk to a playback not from the cache (p50 / p95);\n")
	p("- *start from peer*: the share of those playbacks whose first chunk came from a peer rather than the hub;\n")
	p("- *server MB by rule*: the server bytes by the rule of the peer algorithm that asked for them (PROTOCOL.md §8.3,\n")
	p("  §8.4): emergency (the start, the emergency and rescue zones), first copies, orphans (a skipped first copy asked plainly);\n")
	p("- *duplicate MB*: bytes of chunks that arrived when the peer held them already, from the server / from peers.\n\n")
	if _, ok := r.swarmPlot(); ok {
		p("![Offload and server copies against swarm size](%s)\n\n", filepath.Base(r.plotPath()))
		p("*`%s`, drawn by this run: offload (filled) and its ceiling (hollow) above, server copies below (log scale),\n", filepath.Base(r.plotPath()))
		p("against the number of peers (log scale).*\n\n")
	}
	p("| row | library | speed | peers | playbacks (from cache) | offload | ceiling | offload ÷ ceiling | server copies (distinct tracks) | sources / playback p50 / p95 | start from peer | server MB by rule: emergency / first copies / orphans | duplicate MB: server / p2p |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range all {
		by, dup := x.Rep.ServerBytesByRule, x.Rep.DuplicateBytes
		p("| %s | %s | %gx | %d | %d (%d) | %s | %s | %s | %.2f (%d) | %s | %s | %s / %s / %s | %s / %s |\n", x.Spec.name(), x.library(), x.Speed, x.Spec.Peers,
			x.Rep.Playbacks, x.Rep.PlaybacksCached, ratio(x.Rep.OffloadRatio), ratio(x.Rep.OffloadCeiling), ofCeiling(x),
			x.Rep.ServerCopies, x.Rep.DistinctTracks, p5095(x.Rep.SourcesPerPlayback), pct(x.Rep.StartFromPeerShare),
			mb(float64(by.Emergency)), mb(float64(by.FirstCopy)), mb(float64(by.Orphan)), mb(float64(dup.Server)), mb(float64(dup.P2P)))
	}
	p("\n")
	r.writeShort(w, cores)
	r.writeFlash(w, cores)
	r.writeBig(w, cores)
	r.writeHubCounters(w)
}

// writeSwarmTable writes the delivery table of short-track and flash rows.
func writeSwarmTable(w io.Writer, rows []rowResult, cores float64) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("| peers | playbacks (complete, from cache) | offload | ceiling | 1 − 1/N | server copies | server MB | p2p MB | stalls (stalled s) | start p50 / p99 (ms) | start from peer | sources / playback p50 / p95 | lookup p50 / p99 (ms) | peer connect p50 / p99 (ms) | failed peers | hub CPU-s | load generator CPU-s | other processes CPU-s | machine busy | load average before |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range rows {
		p("| %d | %d (%d, %d) | %s | %s | %s | %.2f | %s | %s | %s | %s | %s | %s | %s | %s | %d | %.1f | %.1f | %.1f | %s | %.2f |\n",
			x.Spec.Peers, x.Rep.Playbacks, x.Rep.PlaybacksComplete, x.Rep.PlaybacksCached, ratio(x.Rep.OffloadRatio),
			ratio(x.Rep.OffloadCeiling), ratio(nCeil(x.Spec.Peers)), x.Rep.ServerCopies, mb(float64(x.Rep.ServerBytes)),
			mb(float64(x.Rep.P2PBytes)), stalled(x), pp(x.Rep.StartupMS), pct(x.Rep.StartFromPeerShare),
			p5095(x.Rep.SourcesPerPlayback), pp(x.Rep.LookupMS), pp(x.Rep.ConnectMS), x.Rep.PeersFailed, x.HubCPU, x.LoadCPU,
			max(x.MachineBusy-x.HubCPU-x.LoadCPU, 0), pct(busyOf(x, cores)), x.LoadAvg)
	}
	p("\n")
}

// writeStatus lists the rows that did not hold (rowResult.problems).
func writeStatus(w io.Writer, rows []rowResult) {
	for _, x := range rows {
		if pr := x.problems(); len(pr) > 0 {
			fmt.Fprintf(w, "%s **did not hold**: %s.\n\n", x.Spec.name(), strings.Join(pr, "; "))
		}
	}
}

func (r *report) writeShort(w io.Writer, cores float64) {
	rows := r.rowsOf(kindShort)
	if len(rows) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("### Short-track swarm\n\n")
	p("A second library, built by this run: three tones synthesized with\n")
	p("`sox -n -r 44100 -c 2 -b 16 OUT.wav synth SECONDS sine LEFT_HZ sine RIGHT_HZ`, encoded with\n")
	p("`lame --quiet --nores -b 128 --tt TITLE --ta \"Ztream Bench\"` and ingested with `ztream ingest --data DIR`:\n\n")
	p("| track | id | length | pitches (left / right) |\n|---|---|---:|---:|\n")
	for _, t := range r.ShortTracks {
		hz := ""
		for _, s := range shortTones {
			if s.title == t.Title {
				hz = fmt.Sprintf("%d / %d Hz", s.left, s.right)
			}
		}
		p("| %s | `%s` | %s | %s |\n", t.Title, t.ID, msDur(t.DurationMS).Round(100*time.Millisecond), hz)
	}
	x := rows[0]
	p("\n%d peers play them on a fresh hub: `ztream load --peers %d --duration %s --speed %g` (joins over the first 30 s).\n",
		x.Spec.Peers, x.Spec.Peers, x.Duration, x.Speed)
	p("A track lasts 2–3 s at %gx, so each peer plays many: each track once from the network, then from its cache.\n", x.Speed)
	p("With each of %d peers fetching each track once, the best the server can do is one copy of each: the ceiling is\n", x.Spec.Peers)
	p("then 1 − 1/%d = %.3f. Warm offload (hub counters, %s to %s): %s.\n\n", x.Spec.Peers, nCeil(x.Spec.Peers), x.Duration/2, x.Duration,
		ratio(x.WarmOffload))
	writeSwarmTable(w, rows, cores)
	writeStatus(w, rows)
}

func (r *report) writeFlash(w io.Writer, cores float64) {
	rows := r.rowsOf(kindFlash)
	if len(rows) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	t := r.FlashTrack
	p("### Flash crowds\n\n")
	p("Every peer plays the same track once, a track no peer held before: %s (`%s`, %s) of the short library,\n",
		t.Title, t.ID, msDur(t.DurationMS).Round(100*time.Millisecond))
	p("on a fresh hub with a fresh copy of that library for each size:\n\n")
	p("```sh\nztream load --peers N --flash-crowd --track %s --duration %s --ramp %s --speed %g\n```\n\n", t.ID, flashDuration, flashRamp, flashSpeed)
	p("All peers join within %s and download the track at the same time, at real time.\n\n", flashRamp)
	writeSwarmTable(w, rows, cores)
	p("N peers playing one track once need at least one copy from the server: the offload ceiling is then 1 − 1/N\n")
	p("(the *1 − 1/N* column); *ceiling* is the same bound computed from the bytes the playbacks took (load report).\n")
	p("Start latency here includes the wait for a peer to hold the first chunk (§8.2 of PROTOCOL.md: up to 150 ms).\n\n")
	writeStatus(w, rows)
}

func (r *report) writeBig(w io.Writer, cores float64) {
	rows := r.rowsOf(kindBig)
	if len(rows) == 0 {
		if len(r.Skipped) > 0 {
			p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
			p("### Real-time rows\n\n")
			writeSkipped(w, r.Skipped)
		}
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	var counts []int
	for _, x := range rows {
		counts = append(counts, x.Spec.Peers)
	}
	p("### %s peers at real time\n\n", joinCounts(counts))
	x0 := rows[0]
	p("The demo library (%d tracks, %s to %s, mean %s) at 1x, each row on a fresh hub with `--max-peers %d` or more:\n",
		len(r.DemoTracks), r.TrackMin.Round(time.Second), r.TrackMax.Round(time.Second), meanTrack(r.DemoTracks).Round(time.Second),
		x0.Spec.MaxPeers)
	p("`ztream load --peers N --duration %s --speed 1 --procs P` (joins over the first 30 s).\n", x0.Duration)
	if r.BigExtended {
		p("**The duration is extended:** at 1x a peer plays %.1f tracks in 3 min (3 min ÷ the mean track length), fewer than 2,\n", r.BigTracksIn3m)
		p("so these rows run for **%s instead of 3 min**: long enough that even the last peer to join starts a third playback\n", x0.Duration)
		p("when its first two are the longest track. Peers then finish the playbacks under way, so a run lasts up to one\n")
		p("more track.\n")
	} else {
		p("At 1x a peer plays %.1f tracks in 3 min (3 min ÷ the mean track length).\n", r.BigTracksIn3m)
	}
	p("The simulated peers are split over P load processes (`--procs`, %d peers each) so that no single process's scheduler\n", bigPeersPerProc)
	p("and garbage collector is the limit; they all still share the machine's %.0f CPUs with the hub. At 1x a peer pulls\n", cores)
	p("a real listener's bitrate, so the hub's CPU per peer is that of a real listener: *listeners per core* is measured directly.\n\n")
	p("| peers | load processes | playbacks (complete, from cache) | playbacks per connected peer | offload | ceiling | server copies | server MB | p2p MB | stalls (stalled s) | start p50 / p95 / p99 (ms) | start from peer | sources / playback p50 / p95 | lookup p50 / p99 (ms) | peer connect p50 / p99 (ms) | failed peers | playback errors |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range rows {
		p("| %d | %d | %d (%d, %d) | %.1f | %s | %s | %.2f | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d |\n",
			x.Spec.Peers, max(x.Spec.Procs, 1), x.Rep.Playbacks, x.Rep.PlaybacksComplete, x.Rep.PlaybacksCached,
			float64(x.Rep.Playbacks)/float64(max(x.connected(), 1)), ratio(x.Rep.OffloadRatio), ratio(x.Rep.OffloadCeiling), x.Rep.ServerCopies,
			mb(float64(x.Rep.ServerBytes)), mb(float64(x.Rep.P2PBytes)), stalled(x), p5099(x.Rep.StartupMS),
			pct(x.Rep.StartFromPeerShare), p5095(x.Rep.SourcesPerPlayback), pp(x.Rep.LookupMS), pp(x.Rep.ConnectMS),
			x.Rep.PeersFailed, x.Rep.PlaybackErrors)
	}
	p("\n| peers | wall s | hub CPU-s | hub cores used | listeners per core (direct, 1x) | hub peak RSS MB | peak heap MB | peak goroutines | peak connected peers | load generator CPU-s (cores; per process) | largest load process peak RSS MB | other processes CPU-s | machine busy | load average before | peer pairs opened / failed (timed out) | peak peer PeerConnections (per peer) |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range rows {
		perCore := "n/a"
		if c := x.cpuPerPeer(); c > 0 {
			perCore = fmt.Sprintf("%.0f", 1/c)
		}
		wall := max(x.Wall, 1e-9)
		p("| %d | %.1f | %.1f | %.2f | %s | %s | %s | %.0f | %.0f | %.1f (%.2f; %.2f) | %s | %.1f | %s | %.2f | %d / %d (%d) | %d (%.1f) |\n", x.Spec.Peers, x.Wall, x.HubCPU,
			x.HubCPU/wall, perCore, mb(float64(x.PeakRSS)), mb(x.PeakHeap), x.PeakGor, x.PeakConn, x.LoadCPU, x.LoadCPU/wall,
			x.LoadCPU/wall/float64(max(x.Spec.Procs, 1)), mb(float64(x.LoadMaxRSS)), max(x.MachineBusy-x.HubCPU-x.LoadCPU, 0),
			pct(busyOf(x, cores)), x.LoadAvg, x.Rep.Pairs.Opened, x.Rep.Pairs.Failed, x.Rep.Pairs.FailedBy.Timeout,
			x.Rep.PeerConnsPeak, float64(x.Rep.PeerConnsPeak)/float64(max(x.connected(), 1)))
	}
	p("\n*Listeners per core (direct)* = 1 / hub CPU per connected peer over the whole run (joins, playbacks, drain). *Per process*\n")
	p("is the load generator's cores divided by the number of load processes (on average; they run the same number of peers).\n")
	p("*Peer pairs*: both sides count a pair; a pair that failed counts its leecher's reason and its seeder's (a leecher's\n")
	p("timeout is its seeder's *ended by the other side*), *timed out* counting the connect timeouts (10 s). *Peak peer\n")
	p("PeerConnections*: the most at once over the simulated peers, open or connecting, sampled every 5 s (each side counts one; each costs CPU\n")
	p("while idle too: ICE consent checks every 2 s).\n\n")
	writeStatus(w, rows)
	writeMinutes(w, rows)
	writeSkipped(w, r.Skipped)
}

// writeMinutes writes the real-time rows minute by minute, from the hub's
// counters.
func writeMinutes(w io.Writer, rows []rowResult) {
	n := 0
	for _, x := range rows {
		n = max(n, len(x.Minutes))
	}
	if n == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("Minute by minute, from the hub's counters sampled every 5 s: peers connected at the end of the minute, the bytes\n")
	p("delivered in it (server bytes as the hub sent them, p2p bytes as the peers reported them; peers fetch ahead of\n")
	p("the playhead, so bytes come early), their offload, and the stalls the peers reported:\n\n")
	p("| minute |")
	for _, x := range rows {
		p(" %s peers: connected / MB delivered / offload / stalls |", thousands(x.Spec.Peers))
	}
	p("\n|---:|")
	for range rows {
		p("---:|")
	}
	p("\n")
	for i := 0; i < n; i++ {
		p("| %d |", i+1)
		for _, x := range rows {
			if i >= len(x.Minutes) {
				p(" |")
				continue
			}
			m := x.Minutes[i]
			p(" %.0f / %s / %s / %.0f |", m.Connected, mb(m.Server+m.P2P), ratio(m.offload()), m.Stalls)
		}
		p("\n")
	}
	p("\n")
}

// writeSkipped lists the rows left out.
func writeSkipped(w io.Writer, skipped []skippedRow) {
	for _, s := range skipped {
		fmt.Fprintf(w, "%s **was not run**: %s.\n\n", s.Spec.name(), s.Why)
	}
}

// p5099 formats p50 / p95 / p99, or "-".
func p5099(p loadgen.Percentiles) string {
	if p.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f / %.1f / %.1f", p.P50, p.P95, p.P99)
}

// writeHubCounters writes the hub's swarm counters of the swarm rows.
func (r *report) writeHubCounters(w io.Writer) {
	var rows []rowResult
	for _, x := range r.Rows {
		if x.Spec.Kind != kindScaling && x.Final != nil {
			rows = append(rows, x)
		}
	}
	if len(rows) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("### Hub counters of the swarm rows\n\n")
	p("The hub's `/metrics` after each row:\n\n")
	p("| row | seeder lookups found / not found / timeout | p2p pairs brokered / failed | chunks the hub served | first-copy requests with no chunk | emergency fetches (peer-reported) |\n")
	p("|---|---:|---:|---:|---:|---:|\n")
	for _, x := range rows {
		f := x.Final
		p("| %s | %.0f / %.0f / %.0f | %.0f / %.0f | %.0f | %.0f | %.0f |\n", x.Spec.name(),
			f[`ztream_seeder_lookups_total{outcome="found"}`], f[`ztream_seeder_lookups_total{outcome="not_found"}`],
			f[`ztream_seeder_lookups_total{outcome="timeout"}`], f["ztream_p2p_pairs_brokered_total"], f["ztream_p2p_pairs_failed_total"],
			f[`ztream_hub_chunks_served_total{via="datachannel"}`]+f[`ztream_hub_chunks_served_total{via="http"}`],
			f["ztream_first_copy_skipped_total"], f["ztream_emergency_fetches_total"])
	}
	p("\n")
}
