package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSim: `ztream sim --json` ends with one line of JSON holding the
// report's keys, --out writes the report and its plot (never over the
// scenario file), --hubs and --name override the scenario, and a bad
// scenario is an error that names the field.
func TestSim(t *testing.T) {
	dir := t.TempDir()
	scenario := filepath.Join(dir, "tiny.json")
	writeTestFile(t, scenario, `{"listeners": 100, "users": 200, "hours": 0.2, "start_hour": 12,
		"catalog": {"tracks": 500, "zipf_s": 1.1, "min_sec": 60, "max_sec": 120, "bitrate_kbps": 128}}`)
	if code, _, stderr := runCmd(t, "sim", "--scenario", scenario, "--out", dir); code == 0 || !strings.Contains(stderr, "--name") {
		t.Errorf("--out over the scenario file: exit %d, %q", code, stderr)
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runCmd(t, "sim", "--scenario", scenario, "--seed", "3", "--out", out, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var r map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("last line is not JSON: %v\n%s", err, stdout)
	}
	for _, k := range []string{"listeners", "plays", "server_share", "p2p_share", "cache_share", "offload", "stalls_per_1000",
		"start_ms", "server_copies_per_cold_track", "wall_seconds"} {
		if _, ok := r[k]; !ok {
			t.Errorf("the JSON lacks %q", k)
		}
	}
	if start, _ := r["start_ms"].(map[string]any); start == nil || start["p50"] == nil || start["p99"] == nil {
		t.Errorf("start_ms %v, want p50 and p99", r["start_ms"])
	}
	if r["seed"].(float64) != 3 || r["scenario"] != "tiny" {
		t.Errorf("seed %v, scenario %v", r["seed"], r["scenario"])
	}
	if !strings.Contains(stdout, "offload") || !strings.Contains(stdout, "tracker") {
		t.Errorf("no human report:\n%s", stdout)
	}
	for _, f := range []string{"tiny.json", "tiny.svg"} {
		if b, err := os.ReadFile(filepath.Join(out, f)); err != nil || len(b) < 100 {
			t.Errorf("%s: %v, %d bytes", f, err, len(b))
		}
	}

	// --hubs and --name override the scenario; --out uses the name.
	code, stdout, stderr = runCmd(t, "sim", "--scenario", scenario, "--hubs", "3", "--name", "three", "--out", out, "--json")
	lines = strings.Split(strings.TrimSpace(stdout), "\n")
	r = nil
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); code != 0 || err != nil {
		t.Fatalf("--hubs 3: exit %d, %v: %s", code, err, stderr)
	}
	if hub, _ := r["hub"].(map[string]any); r["scenario"] != "three" || hub == nil || hub["hubs"] != 3.0 || hub["cross_hub_asks"] == 0.0 {
		t.Errorf("--hubs 3 --name three: scenario %v, hub %v", r["scenario"], r["hub"])
	}
	if _, err := os.Stat(filepath.Join(out, "three.json")); err != nil {
		t.Errorf("--out with --name: %v", err)
	}
	if code, _, stderr := runCmd(t, "sim", "--scenario", scenario, "--name", "../x"); code == 0 || !strings.Contains(stderr, "not a path") {
		t.Errorf("--name ../x: exit %d, %q", code, stderr)
	}

	writeTestFile(t, scenario, `{"catalog": {"tracks": 0}}`)
	if code, _, stderr := runCmd(t, "sim", "--scenario", scenario); code != 1 || !strings.Contains(stderr, "catalog") {
		t.Errorf("a bad scenario: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runCmd(t, "sim", "--scenario", "nosuch"); code != 1 || !strings.Contains(stderr, "spotify") {
		t.Errorf("an unknown scenario: exit %d, %q", code, stderr)
	}
}

// writeTestFile writes data to path or fails the test.
func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
