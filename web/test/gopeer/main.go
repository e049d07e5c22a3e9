// Command gopeer is a test helper of the browser end-to-end tests: one Go
// reference peer (package peer) that joins a hub, plays a track to the end
// on its simulated clock and then stays online seeding it for --hold, so
// that browsers and Go peers can be mixed in one swarm.
//
//	go run ./web/test/gopeer --hub http://127.0.0.1:PORT --play TRACKID [--hold 60s] [--speed 8] [--fault MODE] --json
//
// It prints one JSON line when the playback ends ({"event":"played",...})
// and one when it leaves ({"event":"final",...}, after --hold or on
// SIGINT/SIGTERM), with the peer's byte counters (and, for the playback,
// the peers it got chunks from: sources, start_from_peer). Logs go to stderr.
//
// --fault makes it a misbehaving seeder (peer.FaultMode: none, bad_bytes,
// wrong_seq, oversize, silent) so that tests can check that leechers
// abandon and report it; it still plays and verifies like any peer.
// faults_sent in the reports counts the chunks it served wrongly.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ztream/ztream/peer"
)

// report is one JSON line of output.
type report struct {
	Event         string  `json:"event"`
	PeerID        string  `json:"peer_id"`
	Track         string  `json:"track"`
	Complete      bool    `json:"complete"`
	StartMS       float64 `json:"start_ms"`
	ServerBytes   int64   `json:"server_bytes"`
	P2PBytes      int64   `json:"p2p_bytes"`
	CacheBytes    int64   `json:"cache_bytes"`
	UploadedBytes int64   `json:"uploaded_bytes"`
	HashFailures  int64   `json:"hash_failures"`
	Stalls        int64   `json:"stalls"`
	Seeders       int     `json:"seeders"`
	Lookups       int     `json:"lookups"`
	// Sources counts the distinct peers that delivered a verified chunk of
	// the playback; StartFromPeer tells whether its first chunk came from one.
	Sources       int    `json:"sources"`
	StartFromPeer bool   `json:"start_from_peer"`
	FaultsSent    int64  `json:"faults_sent"`
	Error         string `json:"error,omitempty"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gopeer:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gopeer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hub := fs.String("hub", "", "hub base URL, e.g. http://127.0.0.1:8080 (required)")
	track := fs.String("play", "", "id of the track to play (required)")
	hold := fs.Duration("hold", 60*time.Second, "how long to stay online seeding after the playback")
	speed := fs.Float64("speed", 8, "playback speed factor of the simulated clock")
	jsonOut := fs.Bool("json", false, "print the reports as JSON lines (the only output format)")
	loopback := fs.Bool("ice-loopback", true, "gather loopback ICE candidates")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up on the playback after this long")
	verbose := fs.Bool("v", false, "debug logs on stderr")
	faultName := fs.String("fault", "none", "misbehave when seeding: none, bad_bytes, wrong_seq, oversize or silent")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parsing flags: %w", err)
	}
	if *hub == "" || *track == "" {
		return errors.New("--hub and --play are required")
	}
	fault, err := peer.ParseFaultMode(*faultName)
	if err != nil {
		return fmt.Errorf("--fault: %w", err)
	}
	_ = jsonOut // JSON is the only format; the flag documents the contract with the harness
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := peer.Dial(ctx, peer.Config{
		HubURL:        *hub,
		Speed:         *speed,
		ICELoopback:   *loopback,
		Logger:        logger,
		NoReconnect:   true,
		StatsInterval: 2 * time.Second,
		Fault:         fault,
	})
	if err != nil {
		return fmt.Errorf("joining the hub: %w", err)
	}
	defer p.Close()
	enc := json.NewEncoder(stdout)

	pctx, cancel := context.WithTimeout(ctx, *timeout)
	res, playErr := p.Play(pctx, *track)
	cancel()
	st := p.Stats()
	r := report{
		Event: "played", PeerID: p.ID(), Track: *track, Complete: res.Complete,
		StartMS:     float64(res.StartLatency.Microseconds()) / 1000,
		ServerBytes: res.ServerBytes, P2PBytes: res.P2PBytes, CacheBytes: res.CacheBytes,
		UploadedBytes: st.UploadedBytes, HashFailures: int64(res.HashFailures), Stalls: int64(res.Stalls),
		Seeders: res.Seeders, Lookups: res.Lookups, FaultsSent: st.FaultsSent,
		Sources: res.Sources, StartFromPeer: res.StartFromPeer,
	}
	if playErr != nil {
		r.Error = playErr.Error()
	}
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if playErr != nil {
		return fmt.Errorf("playing %s: %w", *track, playErr)
	}

	// Seed until --hold passes, the harness stops us or the hub goes away.
	t := time.NewTimer(*hold)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-p.Done():
	}
	st = p.Stats()
	r.Event = "final"
	r.PeerID = p.ID()
	r.ServerBytes, r.P2PBytes, r.CacheBytes = st.ServerBytes, st.P2PBytes, st.CacheBytes
	r.UploadedBytes, r.HashFailures, r.Stalls = st.UploadedBytes, st.HashFailures, st.Stalls
	r.FaultsSent = st.FaultsSent
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}
