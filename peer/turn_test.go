package peer

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/internal/testtool"
	"github.com/ztream/ztream/signaling"
)

// startCoturn starts Debian's coturn on loopback with the use-auth-secret
// scheme and returns its turn: URL. Outside CI a missing turnserver skips
// the test (make deps installs it); in CI it fails.
func startCoturn(t *testing.T, secret string) string {
	t.Helper()
	bin := testtool.Command(t, "turnserver", "coturn")
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	relayLo := 20000 + port%20000
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
		fmt.Sprintf("--listening-port=%d", port), fmt.Sprintf("--min-port=%d", relayLo), fmt.Sprintf("--max-port=%d", relayLo+200),
		"--use-auth-secret", "--static-auth-secret="+secret, "--realm=ztream.test", "--allow-loopback-peers",
		"--no-tls", "--no-dtls", "--no-cli", "--no-tcp-relay", "--log-file=stdout", "--simple-log")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "Total General servers") {
				once = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("coturn did not start within 10 s")
	}
	return fmt.Sprintf("turn:127.0.0.1:%d?transport=udp", port)
}

// TestTURNRelayOnly: with --turn-secret the hub hands each peer its own
// TURN credentials, and with the relay policy two peers share a track
// through a real coturn, every p2p byte relayed. With credentials coturn
// refuses (another secret), the relay-only leecher gets the track from the
// hub, whole and without a stall.
func TestTURNRelayOnly(t *testing.T) {
	const secret = "ztream-test-secret"
	turnURL := startCoturn(t, secret)
	for _, tc := range []struct {
		name      string
		hubSecret string
		relayed   bool
	}{
		{"relayed", secret, true},
		{"refused by the relay", "another-secret", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnvWith(t, 1, 40, func(c *hub.Config) {
				c.ICEServers = []webrtc.ICEServer{{URLs: []string{turnURL}}}
				c.TURNSecret = tc.hubSecret
				c.PeerICETransportPolicy = signaling.ICETransportPolicyRelay
			})
			m := env.tracks[0]
			a := env.peer(func(c *Config) { c.Speed = 10 })
			checkComplete(t, a, play(t, a, m.ID), m)
			b := env.peer(func(c *Config) { c.Speed = 5 })
			res := play(t, b, m.ID)
			checkComplete(t, b, res, m)
			if res.Stalls != 0 {
				t.Errorf("stalls: %d", res.Stalls)
			}
			if !tc.relayed {
				if res.P2PBytes != 0 || res.ServerBytes < m.Size {
					t.Errorf("no relay: p2p %d, server %d; want the whole track (%d) from the hub", res.P2PBytes, res.ServerBytes, m.Size)
				}
				return
			}
			if res.P2PBytes == 0 || res.RelayBytes != res.P2PBytes {
				t.Errorf("p2p %d bytes, relayed %d: want every p2p byte through the relay", res.P2PBytes, res.RelayBytes)
			}
		})
	}
}
