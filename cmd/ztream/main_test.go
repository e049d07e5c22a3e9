package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztream/ztream/demo"
	"github.com/ztream/ztream/internal/natstest"
	"github.com/ztream/ztream/internal/testtool"
	"github.com/ztream/ztream/media"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestIngestAndTracks(t *testing.T) {
	data := t.TempDir()
	lib := t.TempDir()
	for _, f := range []string{"cbr128_44k_stereo.mp3", "mono_44k.mp3"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "media", "testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(lib, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lib, "broken.mp3"), []byte("this is text, not audio"), 0o644); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCmd(t, "ingest", "--data", data, lib)
	if code != 1 {
		t.Fatalf("ingest with a bad file exited %d, want 1\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "broken.mp3") || !strings.Contains(out, "2 stored (2 new") {
		t.Fatalf("ingest output does not report the bad file and the summary:\n%s", out)
	}

	code, out, errOut = runCmd(t, "tracks", "--data", data, "--json")
	if code != 0 {
		t.Fatalf("tracks exited %d: %s", code, errOut)
	}
	var tracks []media.Summary
	if err := json.Unmarshal([]byte(out), &tracks); err != nil || len(tracks) != 2 {
		t.Fatalf("tracks --json = %q (%v), want 2 tracks", out, err)
	}
	code, out, _ = runCmd(t, "tracks", "--data", data)
	if code != 0 || !strings.Contains(out, "2 tracks") {
		t.Fatalf("tracks table: %d %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	if code, _, _ := runCmd(t); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
	if code, _, errOut := runCmd(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
	if code, _, _ := runCmd(t, "ingest", "--data", t.TempDir()); code != 2 {
		t.Errorf("ingest without files: exit %d, want 2", code)
	}
	if code, _, _ := runCmd(t, "serve", "--bogus"); code != 2 {
		t.Errorf("serve with an unknown flag: exit %d, want 2", code)
	}
	if code, _, errOut := runCmd(t, "ingest", "--data", t.TempDir(), "/nonexistent/dir"); code != 1 || !strings.Contains(errOut, "nonexistent") {
		t.Errorf("ingest of a missing path: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "serve", "--data", t.TempDir(), "--ice-ips", "127.0.0.1,nope"); code != 1 || !strings.Contains(errOut, `"nope" is not an IP`) {
		t.Errorf("serve with a bad --ice-ips: exit %d, %q", code, errOut)
	}
}

func TestICEIPsFilter(t *testing.T) {
	h := hubFlags{iceIPs: "127.0.0.1, 192.0.2.7"}
	cfg, err := h.config(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IPFilter == nil || !cfg.IncludeLoopback {
		t.Fatalf("filter set %v, loopback %v", cfg.IPFilter != nil, cfg.IncludeLoopback)
	}
	for ip, want := range map[string]bool{"127.0.0.1": true, "192.0.2.7": true, "192.0.2.8": false, "::1": false} {
		if got := cfg.IPFilter(net.ParseIP(ip)); got != want {
			t.Errorf("filter(%s) = %v, want %v", ip, got, want)
		}
	}
	if cfg, _ := (&hubFlags{}).config(slog.New(slog.DiscardHandler)); cfg.IPFilter != nil {
		t.Error("no --ice-ips: a filter is set")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs `ztream serve args...` for the rest of the test and
// returns its stderr. At the end of the test it is canceled and must exit
// 0 within 20 s.
func startServe(t *testing.T, args ...string) *testtool.Buffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	stderr := &testtool.Buffer{}
	go func() { done <- run(ctx, append([]string{"serve"}, args...), io.Discard, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d after cancel:\n%s", code, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop within 20 s of cancel")
		}
	})
	return stderr
}

// waitServing retries ready every 100 ms until it returns nil, and fails
// the test (with serve's stderr) after 60 s.
func waitServing(t *testing.T, stderr *testtool.Buffer, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer within 60 s: %v\n%s", err, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeIngestsDemoAndServes runs `ztream serve` on an empty data
// directory: it must put the demo tracks in the library and serve the API,
// the web client, /healthz and /metrics, then stop on cancel.
func TestServeIngestsDemoAndServes(t *testing.T) {
	addr := freeAddr(t)
	stderr := startServe(t, "--addr", addr, "--data", t.TempDir(), "--udp-port", "0")
	base := "http://" + addr
	var tracks []media.Summary
	waitServing(t, stderr, func() error {
		resp, err := http.Get(base + "/api/tracks")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&tracks)
	})
	if len(tracks) != len(demo.Names()) {
		t.Fatalf("serve library has %d tracks, want the %d demo tracks", len(tracks), len(demo.Names()))
	}
	for _, path := range []string{"/", "/healthz", "/metrics", fmt.Sprintf("/api/tracks/%s/chunks/0", tracks[0].ID)} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
}

// TestServeJoinsCluster runs two `ztream serve --nats` against a NATS server
// that wants a user and password: each hub's /healthz names it and lists the
// other, its metrics carry its id and the NATS state; wrong credentials are
// no cluster at all (the hub serves alone and says so).
func TestServeJoinsCluster(t *testing.T) {
	srv := natstest.StartWithUser(t, "ztream", "s3cret")
	type health struct {
		Hub struct {
			HubID     string   `json:"hub_id"`
			Connected bool     `json:"nats_connected"`
			Hubs      []string `json:"hubs"`
		} `json:"hub"`
	}
	get := func(base string) (health, error) {
		var h health
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return h, err
		}
		defer resp.Body.Close()
		return h, json.NewDecoder(resp.Body).Decode(&h)
	}
	var bases []string
	for _, id := range []string{"hub-one", "hub-two"} {
		addr := freeAddr(t)
		stderr := startServe(t, "--addr", addr, "--data", t.TempDir(), "--udp-port", "0", "--no-demo",
			"--nats", srv.URL, "--hub-id", id, "--nats-user", "ztream", "--nats-password", "s3cret")
		base := "http://" + addr
		bases = append(bases, base)
		waitServing(t, stderr, func() error { _, err := get(base); return err })
	}
	for i, base := range bases {
		other := []string{"hub-two", "hub-one"}[i]
		deadline := time.Now().Add(20 * time.Second)
		for {
			h, err := get(base)
			if err == nil && h.Hub.Connected && slices.Equal(h.Hub.Hubs, []string{other}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s /healthz: %+v, %v; want connected, hubs [%s]", base, h, err, other)
			}
			time.Sleep(100 * time.Millisecond)
		}
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			fmt.Sprintf(`ztream_hub_info{hub_id=%q} 1`, []string{"hub-one", "hub-two"}[i]),
			"ztream_cluster_nats_connected 1", "ztream_cluster_hubs 1", "ztream_cross_hub_pairs_total 0",
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("%s/metrics lacks %q", base, want)
			}
		}
	}
	// A wrong password: the hub starts, serves alone and says so.
	addr := freeAddr(t)
	stderr := startServe(t, "--addr", addr, "--data", t.TempDir(), "--udp-port", "0", "--no-demo",
		"--nats", srv.URL, "--hub-id", "hub-bad", "--nats-user", "ztream", "--nats-password", "wrong")
	var h health
	waitServing(t, stderr, func() error { var err error; h, err = get("http://" + addr); return err })
	if h.Hub.HubID != "hub-bad" || h.Hub.Connected || len(h.Hub.Hubs) != 0 {
		t.Errorf("hub with a wrong NATS password: %+v", h)
	}
	if !strings.Contains(stderr.String(), "Authorization Violation") && !strings.Contains(stderr.String(), "authorization violation") {
		t.Errorf("the log does not say NATS refused the credentials:\n%s", stderr.String())
	}
}

// TestServeClusterFlags: bad cluster flags are errors before anything starts.
func TestServeClusterFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--hub-id", "no spaces"}, "--hub-id"},
		{[]string{"--nats-user", "u"}, "need --nats"},
		{[]string{"--nats", "nats://127.0.0.1:1", "--nats-user", "u", "--nats-token", "t"}, "one NATS authentication"},
		{[]string{"--nats", "nats://127.0.0.1:1", "--nats-cert", "c.pem"}, "go together"},
		{[]string{"--nats", "nats://127.0.0.1:1", "--nats-ca", "/nonexistent/ca.pem"}, "--nats-ca"},
	} {
		var stderr bytes.Buffer
		code := run(context.Background(), append([]string{"serve", "--addr", freeAddr(t), "--data", t.TempDir(), "--udp-port", "0"}, tc.args...), io.Discard, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want an error naming %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
