// Package natstest starts Debian's nats-server with JetStream on loopback
// for tests: one server, or a cluster of three, that a test can stop and
// start again on the same ports.
package natstest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ztream/ztream/internal/testtool"
)

// Server is one nats-server process.
type Server struct {
	tb   testing.TB
	bin  string
	args []string
	// URL is the client URL (nats://127.0.0.1:port).
	URL string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// bin returns the nats-server path (testtool.Command: skipped outside CI
// when missing).
func bin(tb testing.TB) string {
	tb.Helper()
	return testtool.Command(tb, "nats-server", "nats-server")
}

// freePort returns a TCP port free on 127.0.0.1 now.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start starts one JetStream server on a free loopback port; the test's
// cleanup stops it.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := start(tb)
	WaitJetStream(tb, s.URL)
	return s
}

// StartWithUser is Start with user and password authentication.
func StartWithUser(tb testing.TB, user, password string) *Server {
	tb.Helper()
	s := start(tb, "--user", user, "--pass", password)
	WaitJetStream(tb, s.URL, nats.UserInfo(user, password))
	return s
}

func start(tb testing.TB, args ...string) *Server {
	port := freePort(tb)
	s := &Server{tb: tb, bin: bin(tb), URL: fmt.Sprintf("nats://127.0.0.1:%d", port),
		args: append([]string{"-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", tb.TempDir(), "-n", fmt.Sprintf("n%d", port)}, args...)}
	s.Restart()
	tb.Cleanup(s.Stop)
	return s
}

// Cluster starts n JetStream servers routed into one NATS cluster; the
// test's cleanup stops them. It returns when JetStream has a leader.
func Cluster(tb testing.TB, n int) []*Server {
	tb.Helper()
	b := bin(tb)
	ports := make([]int, n)
	routes := make([]int, n)
	for i := range n {
		ports[i], routes[i] = freePort(tb), freePort(tb)
	}
	var all []string
	for _, r := range routes {
		all = append(all, fmt.Sprintf("nats://127.0.0.1:%d", r))
	}
	out := make([]*Server, n)
	for i := range n {
		s := &Server{tb: tb, bin: b, URL: fmt.Sprintf("nats://127.0.0.1:%d", ports[i]), args: []string{
			"-a", "127.0.0.1", "-p", fmt.Sprint(ports[i]), "-js", "-sd", tb.TempDir(), "-n", fmt.Sprintf("node%d", i),
			"--cluster_name", "ztream-test", "--cluster", fmt.Sprintf("nats://127.0.0.1:%d", routes[i]),
			"--routes", strings.Join(all, ","),
		}}
		s.Restart()
		tb.Cleanup(s.Stop)
		out[i] = s
	}
	urls := make([]string, n)
	for i, s := range out {
		urls[i] = s.URL
	}
	WaitJetStream(tb, strings.Join(urls, ","))
	return out
}

// URLs joins the client URLs of servers.
func URLs(servers []*Server) string {
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.URL
	}
	return strings.Join(urls, ",")
}

// Restart starts the server (again, on the same ports and store).
func (s *Server) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("nats-server: %v", err)
	}
	s.cmd = cmd
	addr := strings.TrimPrefix(s.URL, "nats://")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("nats-server %s did not listen within 10 s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL: a crash, not a shutdown).
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// WaitJetStream waits until JetStream answers at urls (a cluster elects
// its meta leader first), connecting with opts.
func WaitJetStream(tb testing.TB, urls string, opts ...nats.Option) {
	tb.Helper()
	nc, err := nats.Connect(urls, append([]nats.Option{nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("JetStream at %s not ready within 20 s: %v", urls, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
