package main

import (
	"math"
	"os"
	"testing"
	"time"
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
