package main

import (
	"encoding/xml"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ztream/ztream/loadgen"
	"github.com/ztream/ztream/media"
)

func TestParseStatTicks(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := []byte("1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 1000 200 18446744073709551615")
	got, err := parseStatTicks(line)
	if err != nil {
		t.Fatal(err)
	}
	if got != 325 {
		t.Errorf("ticks = %d, want 250+75", got)
	}
	if _, err := parseStatTicks([]byte("garbage")); err == nil {
		t.Error("no error for a line without ')'")
	}
	// The real file of this process parses.
	r := newProcReader()
	if _, err := r.cpuSeconds(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestParseStatus(t *testing.T) {
	m, err := parseStatus([]byte("Name:\tztream\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\nThreads:\t7\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 1024<<10 || m.HWM != 2048<<10 || m.Thrd != 7 {
		t.Errorf("got %+v", m)
	}
	if _, err := parseStatus([]byte("Name:\tx\n")); err == nil {
		t.Error("no error without VmRSS/VmHWM")
	}
	st, err := newProcReader().status(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.RSS <= 0 || st.HWM < st.RSS {
		t.Errorf("own status %+v", st)
	}
}

func TestParseMachineStat(t *testing.T) {
	busy, total, err := parseMachineStat([]byte("cpu  10 1 5 100 4 2 3 0 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if busy != 21 || total != 125 {
		t.Errorf("busy %d total %d, want 21 125", busy, total)
	}
	if _, _, err := parseMachineStat([]byte("intr 1 2 3\n")); err == nil {
		t.Error("no error for a file without the cpu line")
	}
}

func TestParseMetrics(t *testing.T) {
	m := parseMetrics("# HELP x y\n# TYPE x counter\nztream_connected_peers 12\n" +
		`ztream_delivered_bytes_total{source="server"} 1.5e+06` + "\nbroken\n")
	if m[mConnected] != 12 || m[mServerBytes] != 1.5e6 {
		t.Errorf("got %v", m)
	}
	if _, ok := m["broken"]; ok {
		t.Error("kept a line without a value")
	}
}

func TestWarmOffload(t *testing.T) {
	pt := func(s int, p2p, srv float64) metricPoint {
		return metricPoint{At: time.Duration(s) * time.Second, Metrics: metricSet{mP2PBytes: p2p, mServerBytes: srv}}
	}
	points := []metricPoint{pt(1, 0, 100), pt(10, 50, 200), pt(20, 950, 300)}
	// Between 10 s and 20 s: 900 p2p, 100 server.
	if got := warmOffload(points, 20*time.Second); math.Abs(got-0.9) > 1e-9 {
		t.Errorf("warm offload %v, want 0.9", got)
	}
	if got := warmOffload(nil, 20*time.Second); got != -1 {
		t.Errorf("no points: %v, want -1", got)
	}
}

func TestGroupTraces(t *testing.T) {
	traces := `File: ztream
Type: inuse_space
-----------+-------------------------------------------------------
     bytes:  512kB
    512kB   bytes.Clone (inline)
            github.com/pion/sctp.(*Association).handleData
            github.com/ztream/ztream/hub.(*participant).run
-----------+-------------------------------------------------------
     bytes:  1MB
    1.50MB   github.com/ztream/ztream/hub.newParticipant
-----------+-------------------------------------------------------
     bytes:  64B
         0   github.com/pion/stun/v4.(*Message).Add
-----------+-------------------------------------------------------
    512kB   regexp/syntax.(*Regexp).CapNames
`
	got := groupTraces(traces)
	want := map[string]float64{
		"ztream packages":                                      60,
		"pion/sctp (SCTP associations)":                        20,
		"Go runtime and standard library (incl. package init)": 20,
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for _, s := range got {
		if math.Abs(s.Percent-want[s.Group]) > 1e-9 {
			t.Errorf("%s: %.2f %%, want %.2f %%", s.Group, s.Percent, want[s.Group])
		}
	}
	if got[0].Group != "ztream packages" {
		t.Errorf("not sorted: %+v", got)
	}
}

func TestGroupProfile(t *testing.T) {
	top := `      flat  flat%   sum%        cum   cum%
      80ms 40.00% 40.00%       80ms 40.00%  internal/runtime/syscall/linux.Syscall6
      60ms 30.00% 70.00%       60ms 30.00%  github.com/pion/sctp.(*Association).gatherOutbound
      40ms 20.00% 90.00%       40ms 20.00%  runtime.memmove
      20ms 10.00%   100%       20ms 10.00%  crypto/internal/fips140/aes.encryptBlockAsm
`
	got := groupProfile(top)
	if len(got) != 4 || got[0].Group != "system calls (socket I/O)" || got[0].Percent != 40 {
		t.Errorf("got %+v", got)
	}
}

func TestTopicShares(t *testing.T) {
	traces := `Type: cpu
-----------+-------------------------------------------------------
      30ms   internal/runtime/syscall/linux.Syscall6
             github.com/pion/ice/v4.(*Conn).Write
             github.com/pion/dtls/v3.(*Conn).Write
             github.com/pion/sctp.(*Association).writeLoop
-----------+-------------------------------------------------------
      10ms   runtime.scanobject
             runtime.gcBgMarkWorker
`
	got := map[string]float64{}
	for _, s := range topicShares(traces) {
		got[s.Group] = s.Percent
	}
	for topic, want := range map[string]float64{
		"SCTP (pion/sctp: DataChannel transport)":  75,
		"DTLS (pion/dtls: encryption, handshakes)": 75,
		"system calls":             75,
		"garbage collection":       25,
		"tracker (ztream/tracker)": 0,
	} {
		if math.Abs(got[topic]-want) > 1e-9 {
			t.Errorf("%s: %.2f %%, want %.2f %%", topic, got[topic], want)
		}
	}
}

func TestBigDuration(t *testing.T) {
	demo := []media.Summary{{DurationMS: 130_000}, {DurationMS: 150_000}, {DurationMS: 165_000}}
	d, ext, in3m := bigDuration(0, demo)
	// 180 s ÷ 148.3 s = 1.2 tracks: extended to 30 + 2 × 165 + 10 = 370 s, rounded up to 390 s.
	if !ext || d != 390*time.Second || math.Abs(in3m-180/148.333) > 0.01 {
		t.Errorf("got %v %v %.3f, want 6m30s, extended", d, ext, in3m)
	}
	short := []media.Summary{{DurationMS: 60_000}}
	if d, ext, _ := bigDuration(0, short); ext || d != 3*time.Minute {
		t.Errorf("1-min tracks: got %v %v, want 3m not extended", d, ext)
	}
	if d, ext, _ := bigDuration(time.Minute, demo); ext || d != time.Minute {
		t.Errorf("set: got %v %v", d, ext)
	}
}

func TestSwarmPlot(t *testing.T) {
	row := func(k rowKind, n int, speed, off, ceil, copies float64) rowResult {
		return rowResult{Spec: rowSpec{Kind: k, Peers: n, P2P: true}, Speed: speed,
			Rep: loadgen.Report{Playbacks: n, OffloadRatio: off, OffloadCeiling: ceil, ServerCopies: copies}}
	}
	r := &report{Options: options{out: "docs/BENCHMARKS.md"}, Rows: []rowResult{
		row(kindScaling, 10, 10, 0.83, 0.99, 4), row(kindScaling, 50, 10, 0.94, 0.99, 3), row(kindScaling, 100, 10, 0.955, 0.995, 3.3),
		row(kindScaling, 200, 10, 0.37, 0.997, 93), row(kindShort, 16, 10, 0.90, 0.938, 1.6),
		row(kindFlash, 16, 1, 0.93, 0.938, 1.07), row(kindFlash, 32, 1, 0.95, 0.969, 1.4), row(kindFlash, 64, 1, 0.96, 0.984, 2.5),
		row(kindBig, 500, 1, 0.97, 0.998, 12), row(kindBig, 1000, 1, 0.98, 0.999, 15),
	}}
	svg, ok := r.swarmPlot()
	if !ok {
		t.Fatal("no plot")
	}
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
	}
	for _, want := range []string{"flash crowd", "demo library (2–3 min tracks), 1x", "server copies (log scale)"} {
		if !strings.Contains(svg, want) {
			t.Errorf("no %q in the plot", want)
		}
	}
	if out := os.Getenv("BENCH_PLOT_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(svg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.plotPath(); got != "docs/bench-swarm.svg" {
		t.Errorf("plot path %s", got)
	}
}

func TestTimeline(t *testing.T) {
	pt := func(s int, srv, p2p, stalls float64) metricPoint {
		return metricPoint{At: time.Duration(s) * time.Second, Metrics: metricSet{mServerBytes: srv, mP2PBytes: p2p, mStalls: stalls, mConnected: 5}}
	}
	got := timeline([]metricPoint{pt(30, 10, 0, 0), pt(61, 20, 80, 1), pt(90, 20, 90, 1), pt(121, 30, 180, 3), pt(130, 30, 190, 3)}, time.Minute)
	if len(got) != 3 {
		t.Fatalf("got %d windows, want 3: %+v", len(got), got)
	}
	if got[0].Server != 20 || got[0].P2P != 80 || got[0].Stalls != 1 || math.Abs(got[0].offload()-0.8) > 1e-9 {
		t.Errorf("first minute %+v", got[0])
	}
	if got[1].Server != 10 || got[1].P2P != 100 || got[1].Stalls != 2 {
		t.Errorf("second minute %+v", got[1])
	}
	if got[2].End != 130*time.Second || got[2].P2P != 10 {
		t.Errorf("last window %+v", got[2])
	}
	if (windowStat{}).offload() != -1 {
		t.Error("empty window offload")
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{7: "7", 500: "500", 1000: "1,000", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %s, want %s", n, got, want)
		}
	}
	if got := joinCounts([]int{500, 1000}); got != "500 and 1,000" {
		t.Errorf("joinCounts: %s", got)
	}
}

// TestKeptSections: a rewrite keeps the hand-measured sections of the
// document, from their marker on, and nothing before it.
func TestKeptSections(t *testing.T) {
	old := "# Ztream benchmarks\n\ngenerated\n\n" + keptMarker + "\n\n## Tracker\n\nrows\n"
	if got, want := keptSections([]byte(old)), "\n"+keptMarker+"\n\n## Tracker\n\nrows\n"; got != want {
		t.Errorf("keptSections = %q, want %q", got, want)
	}
	if got := keptSections([]byte("# Ztream benchmarks\n\nno marker\n")); got != "" {
		t.Errorf("without the marker: %q", got)
	}
}
