package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ztream/ztream/media"
)

// shortTones are the tracks of the short-track library: a sine tone of secs
// seconds, left and right at two pitches (Hz).
var shortTones = []struct {
	title       string
	secs        int
	left, right int
}{
	{"Bench Tone A", 20, 330, 495},
	{"Bench Tone B", 25, 392, 588},
	{"Bench Tone C", 30, 440, 660},
}

// Workloads of the swarm rows.
const (
	shortPeers    = 16
	shortDuration = 120 * time.Second
	flashSpeed    = 1.0
	flashDuration = 4 * time.Second
	flashRamp     = time.Second
	bigSpeed      = 1.0
	bigBase       = 3 * time.Minute
	// bigPeersPerProc is how many simulated peers one load process runs in
	// the real-time rows (--procs = peers / bigPeersPerProc, rounded up).
	bigPeersPerProc = 250
)

// buildShortLibrary synthesizes the short tones with sox, encodes them with
// lame and ingests them with `ztream ingest` into a fresh data directory,
// e.short; it records the tracks and picks the longest as the flash
// crowds' track.
func (e *env) buildShortLibrary(ctx context.Context, r *report) error {
	var missing []string
	for _, tool := range []string{"sox", "lame"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("short-track library: %s not found: install sox and lame with `make deps` (or leave out the short and flash parts with -only)",
			strings.Join(missing, " and "))
	}
	src := filepath.Join(e.work, "short-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return fmt.Errorf("short-track library: %w", err)
	}
	var mp3s []string
	for i, t := range shortTones {
		wav := filepath.Join(src, fmt.Sprintf("tone-%d.wav", i+1))
		mp3 := strings.TrimSuffix(wav, ".wav") + ".mp3"
		if _, err := e.command(ctx, "sox", "-n", "-r", "44100", "-c", "2", "-b", "16", wav,
			"synth", strconv.Itoa(t.secs), "sine", strconv.Itoa(t.left), "sine", strconv.Itoa(t.right)); err != nil {
			return fmt.Errorf("short-track library: %w", err)
		}
		if _, err := e.command(ctx, "lame", "--quiet", "--nores", "-b", "128", "--tt", t.title, "--ta", "Ztream Bench", wav, mp3); err != nil {
			return fmt.Errorf("short-track library: %w", err)
		}
		mp3s = append(mp3s, mp3)
	}
	e.short = filepath.Join(e.work, "short.data")
	if err := os.RemoveAll(e.short); err != nil {
		return fmt.Errorf("short-track library: %w", err)
	}
	if _, err := e.command(ctx, e.bin, append([]string{"ingest", "--data", e.short}, mp3s...)...); err != nil {
		return fmt.Errorf("short-track library: %w", err)
	}
	out, err := e.command(ctx, e.bin, "tracks", "--data", e.short, "--json")
	if err != nil {
		return fmt.Errorf("short-track library: %w", err)
	}
	var list []media.Summary
	if err := json.Unmarshal(out, &list); err != nil {
		return fmt.Errorf("short-track library: ztream tracks --json: %w", err)
	}
	if len(list) != len(shortTones) {
		return fmt.Errorf("short-track library: %d tracks ingested, want %d", len(list), len(shortTones))
	}
	r.ShortTracks = list
	for _, t := range list {
		if t.DurationMS > r.FlashTrack.DurationMS {
			r.FlashTrack = t
		}
	}
	e.logf("short-track library: %d tracks; flash crowds on %s (%s, %s)", len(list), r.FlashTrack.ID, r.FlashTrack.Title,
		msDur(r.FlashTrack.DurationMS).Round(time.Second))
	return nil
}

// command runs name with args and returns its stdout; a failure carries
// the end of its stderr.
func (e *env) command(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 500 {
			msg = "..." + msg[len(msg)-500:]
		}
		return out, fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, msg)
	}
	return out, nil
}

// msDur converts milliseconds to a duration.
func msDur(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// swarmSpecs returns the selected swarm rows: the short-track swarm, the
// flash crowds and the real-time rows (which also fixes their duration in
// r).
func (e *env) swarmSpecs(r *report) []rowSpec {
	o := r.Options
	var specs []rowSpec
	if o.runs("short") {
		specs = append(specs, rowSpec{Kind: kindShort, Label: fmt.Sprintf("short-%d", shortPeers), Peers: shortPeers, P2P: true,
			Library: e.short, Duration: shortDuration})
	}
	if o.runs("flash") {
		for _, n := range o.flash {
			specs = append(specs, rowSpec{Kind: kindFlash, Label: fmt.Sprintf("flash-%d", n), Peers: n, P2P: true,
				Library: e.short, Speed: flashSpeed, Duration: flashDuration, Ramp: flashRamp, Flash: r.FlashTrack.ID})
		}
	}
	if o.runs("big") {
		r.BigDuration, r.BigExtended, r.BigTracksIn3m = bigDuration(o.bigDuration, r.DemoTracks)
		e.logf("real-time rows: --duration %s (a peer plays %.1f tracks in 3 min at 1x; extended: %v)", r.BigDuration, r.BigTracksIn3m, r.BigExtended)
		for _, n := range o.big {
			specs = append(specs, rowSpec{Kind: kindBig, Label: fmt.Sprintf("load-%d-1x", n), Peers: n, P2P: true,
				Speed: bigSpeed, Duration: r.BigDuration, Procs: bigProcs(n), MaxPeers: max(2000, 2*n)})
		}
	}
	return specs
}

// bigMemPerPeer is a bound on the load generator's memory per simulated
// peer in the real-time rows (about 9 MB measured with one track played,
// plus the cache of the next ones).
const bigMemPerPeer = 16 << 20

// skippedRow is a row the run left out, and why.
type skippedRow struct {
	Spec rowSpec
	Why  string
}

// tooBig says why a real-time row cannot run on this machine now (its
// peers would not fit in the available memory), or "".
func (e *env) tooBig(s rowSpec) string {
	if s.Kind != kindBig {
		return ""
	}
	need, avail := int64(s.Peers)*bigMemPerPeer, memAvailable()
	if avail > 0 && avail < need {
		return fmt.Sprintf("%d peers need about %.1f GB for the load processes and %.1f GB is available", s.Peers, float64(need)/1e9, float64(avail)/1e9)
	}
	return ""
}

// bigProcs is the --procs of a real-time row of n peers.
func bigProcs(n int) int { return max(1, (n+bigPeersPerProc-1)/bigPeersPerProc) }

// bigDuration returns the --duration of the real-time rows and the tracks
// a peer plays in bigBase at 1x (the library's mean track length). Unless
// set, it is bigBase; when that is fewer than 2 tracks, it is extended
// (extended = true) so that even the last peer to join (at 30 s, load's
// default ramp) starts a third playback when its first two are of the
// longest track: 30 s + 2 × longest + 10 s, rounded up to 30 s.
func bigDuration(set time.Duration, tracks []media.Summary) (d time.Duration, extended bool, in3m float64) {
	var sum, longest time.Duration
	for _, t := range tracks {
		sum += msDur(t.DurationMS)
		longest = max(longest, msDur(t.DurationMS))
	}
	if len(tracks) > 0 && sum > 0 {
		in3m = bigBase.Seconds() * bigSpeed / (sum.Seconds() / float64(len(tracks)))
	}
	if set > 0 {
		return set, false, in3m
	}
	if in3m >= 2 || longest == 0 {
		return bigBase, false, in3m
	}
	d = time.Duration(float64(30*time.Second+2*longest)/bigSpeed) + 10*time.Second
	d = (d + 30*time.Second - 1).Truncate(30 * time.Second)
	return max(d, bigBase), true, in3m
}

// meanTrack is the mean length of tracks.
func meanTrack(tracks []media.Summary) time.Duration {
	if len(tracks) == 0 {
		return 0
	}
	var sum time.Duration
	for _, t := range tracks {
		sum += msDur(t.DurationMS)
	}
	return sum / time.Duration(len(tracks))
}
