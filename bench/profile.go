package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// profileShare is the part of the hub's CPU samples spent in one group of
// functions (flat time).
type profileShare struct {
	Group   string
	Percent float64
}

// profileGroups classify a function by the prefix of its name; the first
// match wins.
var profileGroups = []struct{ group, prefix string }{
	{"system calls (socket I/O)", "syscall."},
	{"system calls (socket I/O)", "internal/runtime/syscall"},
	{"system calls (socket I/O)", "runtime/internal/syscall"},
	{"crypto/* and pion/dtls (DTLS)", "crypto/"},
	{"crypto/* and pion/dtls (DTLS)", "golang.org/x/crypto/"},
	{"crypto/* and pion/dtls (DTLS)", "github.com/pion/dtls/"},
	{"pion/sctp (DataChannel transport)", "github.com/pion/sctp"},
	{"other Pion (ICE, WebRTC, DataChannel)", "github.com/pion/"},
	{"Go runtime (scheduler, GC, allocation, timers)", "runtime."},
	{"ztream packages", "github.com/ztream/"},
	{"bbolt (store)", "go.etcd.io/bbolt"},
}

// groupOf returns the group of a function name.
func groupOf(fn string) string {
	for _, g := range profileGroups {
		if strings.HasPrefix(fn, g.prefix) {
			return g.group
		}
	}
	return "other (net/http, JSON, WebSocket, Prometheus, ...)"
}

// summarizeProfile saves the hub's CPU profile and fills res.ProfileTop,
// res.ProfileCum and res.ProfileSum with `go tool pprof` output.
func (e *env) summarizeProfile(ctx context.Context, name string, profile []byte, res *rowResult) error {
	path := filepath.Join(e.work, name+".cpu.pprof")
	if err := os.WriteFile(path, profile, 0o644); err != nil {
		return fmt.Errorf("save profile: %w", err)
	}
	pprof := func(args ...string) (string, error) { return e.pprof(ctx, path, args...) }
	var err error
	if res.ProfileTop, err = pprof("-top", "-nodecount=15"); err != nil {
		return err
	}
	if res.ProfileCum, err = pprof("-top", "-cum", "-nodecount=25"); err != nil {
		return err
	}
	all, err := pprof("-top", "-nodecount=100000")
	if err != nil {
		return err
	}
	res.ProfileSum = groupProfile(all)
	traces, err := pprof("-traces")
	if err != nil {
		return err
	}
	res.ProfileTopics = topicShares(traces)
	return nil
}

// heapProfile takes the hub's in-use heap profile (after a GC) into res.
func (e *env) heapProfile(ctx context.Context, h *hubProc, res *idleResult) error {
	var buf bytes.Buffer
	if err := h.get(ctx, "/debug/pprof/heap?gc=1", &buf); err != nil {
		return err
	}
	path := filepath.Join(e.work, "idle.heap.pprof")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("save heap profile: %w", err)
	}
	run := func(args ...string) (string, error) {
		return e.pprof(ctx, path, append([]string{"-sample_index=inuse_space"}, args...)...)
	}
	var err error
	if res.HeapTop, err = run("-top", "-nodecount=15"); err != nil {
		return err
	}
	traces, err := run("-traces")
	if err != nil {
		return err
	}
	res.HeapSum = groupTraces(traces)
	return nil
}

// heapOwners attribute an allocation to the innermost frame of its stack
// that belongs to one of these packages (so bytes.Clone called by Pion
// counts for Pion); the first matching prefix wins.
var heapOwners = []struct{ group, prefix string }{
	{"pion/sctp (SCTP associations)", "github.com/pion/sctp"},
	{"pion/dtls (DTLS connections)", "github.com/pion/dtls/"},
	{"pion/ice and stun (ICE agents)", "github.com/pion/ice/"},
	{"pion/ice and stun (ICE agents)", "github.com/pion/stun/"},
	{"pion/webrtc, datachannel and other Pion", "github.com/pion/"},
	{"WebSocket (coder/websocket)", "github.com/coder/websocket"},
	{"ztream packages", "github.com/ztream/"},
	{"bbolt (store)", "go.etcd.io/bbolt"},
	{"Prometheus client", "github.com/prometheus/"},
	{"pprof (the measurement itself)", "runtime/pprof."},
	{"pprof (the measurement itself)", "net/http/pprof."},
	{"net/http", "net/http."},
}

// stackTopics name what a CPU sample's stack passes through; a sample
// counts for every topic with a frame in its stack, so shares overlap.
var stackTopics = []struct {
	topic    string
	prefixes []string
}{
	{"SCTP (pion/sctp: DataChannel transport)", []string{"github.com/pion/sctp"}},
	{"DTLS (pion/dtls: encryption, handshakes)", []string{"github.com/pion/dtls/"}},
	{"ICE and UDP (pion/ice, stun, transport)", []string{"github.com/pion/ice/", "github.com/pion/stun/", "github.com/pion/transport/"}},
	{"hub package (ztream/hub)", []string{"github.com/ztream/ztream/hub."}},
	{"tracker (ztream/tracker)", []string{"github.com/ztream/ztream/tracker."}},
	{"WebSocket (coder/websocket)", []string{"github.com/coder/websocket"}},
	{"JSON (encoding/json)", []string{"encoding/json."}},
	{"store reads (bbolt)", []string{"go.etcd.io/bbolt"}},
	{"Prometheus /metrics", []string{"github.com/prometheus/"}},
	{"pprof (the profile itself)", []string{"runtime/pprof.", "net/http/pprof."}},
	{"system calls", []string{"syscall.", "internal/runtime/syscall", "runtime/internal/syscall"}},
	{"garbage collection", []string{"runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.bgsweep", "runtime.bgscavenge", "runtime.gcStart"}},
	{"goroutine scheduling (runtime.schedule)", []string{"runtime.schedule", "runtime.findRunnable", "runtime.park_m"}},
}

// traceBlock is one sample of `pprof -traces` output: its value and frames.
type traceBlock struct {
	value  float64
	frames []string
}

// parseTraces reads `pprof -traces` output.
func parseTraces(traces string) []traceBlock {
	var (
		out            []traceBlock
		cur            traceBlock
		inBlock, first bool
	)
	flush := func() {
		if inBlock && cur.value > 0 {
			out = append(out, cur)
		}
		cur, inBlock, first = traceBlock{}, false, false
	}
	sc := bufio.NewScanner(strings.NewReader(traces))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			flush()
			inBlock, first = true, true
			continue
		}
		f := strings.Fields(line)
		if !inBlock || len(f) == 0 || strings.HasSuffix(f[0], ":") {
			continue // header or label line ("bytes:  64kB")
		}
		fn := f[0]
		if first {
			first = false
			if len(f) < 2 {
				continue
			}
			v, ok := parseSize(f[0])
			if !ok {
				continue
			}
			cur.value, fn = v, f[1]
		}
		cur.frames = append(cur.frames, fn)
	}
	flush()
	return out
}

// topicShares returns, for each stackTopic, the percentage of the samples
// whose stack has one of its frames, largest first.
func topicShares(traces string) []profileShare {
	blocks := parseTraces(traces)
	total := 0.0
	sums := make([]float64, len(stackTopics))
	for _, b := range blocks {
		total += b.value
		for i, t := range stackTopics {
			if hasFrame(b.frames, t.prefixes) {
				sums[i] += b.value
			}
		}
	}
	var out []profileShare
	if total <= 0 {
		return out
	}
	for i, t := range stackTopics {
		out = append(out, profileShare{t.topic, 100 * sums[i] / total})
	}
	sortShares(out)
	return out
}

func hasFrame(frames, prefixes []string) bool {
	for _, f := range frames {
		for _, p := range prefixes {
			if strings.HasPrefix(f, p) {
				return true
			}
		}
	}
	return false
}

// groupTraces sums the samples of `pprof -traces` output by the owner of
// each stack (heapOwners), as percentages of the total, largest first.
func groupTraces(traces string) []profileShare {
	sums := map[string]float64{}
	total := 0.0
	for _, b := range parseTraces(traces) {
		owner := "Go runtime and standard library (incl. package init)"
	frames:
		for _, fn := range b.frames {
			for _, o := range heapOwners {
				if strings.HasPrefix(fn, o.prefix) {
					owner = o.group
					break frames
				}
			}
		}
		sums[owner] += b.value
		total += b.value
	}
	out := make([]profileShare, 0, len(sums))
	for g, v := range sums {
		out = append(out, profileShare{g, 100 * v / total})
	}
	sortShares(out)
	return out
}

// parseSize parses a pprof value: a size such as 512.01kB, 64B or 1.50MB
// (in bytes) or a duration such as 10ms or 1.20s (in seconds).
func parseSize(s string) (float64, bool) {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "ms"):
		mult, s = 1e-3, strings.TrimSuffix(s, "ms")
	case strings.HasSuffix(s, "us"), strings.HasSuffix(s, "µs"):
		mult, s = 1e-6, strings.TrimSuffix(strings.TrimSuffix(s, "us"), "µs")
	case strings.HasSuffix(s, "ns"):
		mult, s = 1e-9, strings.TrimSuffix(s, "ns")
	case strings.HasSuffix(s, "s"):
		mult, s = 1, strings.TrimSuffix(s, "s")
	case strings.HasSuffix(s, "kB"):
		mult, s = 1<<10, strings.TrimSuffix(s, "kB")
	case strings.HasSuffix(s, "MB"):
		mult, s = 1<<20, strings.TrimSuffix(s, "MB")
	case strings.HasSuffix(s, "GB"):
		mult, s = 1<<30, strings.TrimSuffix(s, "GB")
	case strings.HasSuffix(s, "B"):
		s = strings.TrimSuffix(s, "B")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return v * mult, true
}

// groupProfile sums the flat% column of `pprof -top` output by group,
// largest first.
func groupProfile(top string) []profileShare {
	sums := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(top))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		if err != nil {
			continue
		}
		sums[groupOf(f[5])] += pct
	}
	out := make([]profileShare, 0, len(sums))
	for g, p := range sums {
		out = append(out, profileShare{g, p})
	}
	sortShares(out)
	return out
}

// sortShares sorts shares largest first.
func sortShares(out []profileShare) {
	slices.SortFunc(out, func(a, b profileShare) int {
		if a.Percent != b.Percent {
			if a.Percent > b.Percent {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Group, b.Group)
	})
}

// trimPprofHeader drops pprof's File/Build ID lines, keeping the rest.
func trimPprofHeader(s string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// pprof runs `go tool pprof ARGS BINARY PROFILE` and returns its output.
func (e *env) pprof(ctx context.Context, profile string, args ...string) (string, error) {
	all := append([]string{"tool", "pprof"}, args...)
	all = append(all, e.bin, profile)
	out, err := exec.CommandContext(ctx, "go", all...).Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}
