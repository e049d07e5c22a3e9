package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/hub/hubtest"
	"github.com/ztream/ztream/internal/testtrack"
	"github.com/ztream/ztream/loadgen"
)

// TestLoadFaultFlags: bad values of the fault flags are refused before any
// peer starts.
func TestLoadFaultFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--corrupt-mode", "evil"}, "corrupt-mode"},
		{[]string{"--corrupt-mode", "none"}, "corrupt-mode"},
		{[]string{"--churn", "1.5"}, "churn"},
		{[]string{"--peers", "2", "--corrupt-peers", "3"}, "corrupt peers"},
	} {
		args := append([]string{"load", "--server", "http://127.0.0.1:1"}, tc.args...)
		code, _, errOut := runCmd(t, args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want a failure mentioning %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestLoadInterrupted: an interrupted run still prints the report of the
// playbacks so far (table and JSON), says so, and exits non-zero.
func TestLoadInterrupted(t *testing.T) {
	url := hubtest.New(t, hub.Config{}, hubtest.WithTracks(testtrack.List(2, 40, testtrack.Size(3000))...)).URL
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"load", "--server", url, "--peers", "2", "--duration", "1m", "--speed", "1", "--json"}, &stdout, &stderr)
	if code == 0 {
		t.Fatalf("an interrupted run exited 0\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say the run was interrupted:\n%s", stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep loadgen.Report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("no JSON report on the last line: %v\n%s", err, stdout.String())
	}
	if rep.Peers != 2 || rep.Playbacks == 0 || !strings.Contains(stdout.String(), "offload ratio") {
		t.Errorf("report of the interrupted run: peers %d playbacks %d\n%s", rep.Peers, rep.Playbacks, stdout.String())
	}
}
