package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// hubProc is one `ztream serve` process under measurement.
type hubProc struct {
	cmd *exec.Cmd
	url string // the hub itself: metrics, pprof
	// peerURL is where peers connect: the hub, or a spreadProxy in front of
	// it when serve cannot raise its per-address limit.
	peerURL string
	proxy   *spreadProxy
	client  *http.Client
	exited  chan struct{}
	logf    *os.File
}

// hubOptions say how to start a hub.
type hubOptions struct {
	bin     string // the ztream binary
	data    string // the --data directory
	udpPort int    // --udp-port: 0 = no mux, -1 = pick a free port
	logPath string // the hub's stderr goes here
	// perIPFlag: serve has --max-peers-per-ip (else peers go through a
	// spreadProxy).
	perIPFlag bool
	maxPeers  int // --max-peers; 0 = serve's default
	// extra are more serve arguments (--nats ...).
	extra []string
}

// startHub starts `ztream serve` on a free loopback port with pprof on and
// waits for /healthz.
func startHub(ctx context.Context, o hubOptions) (*hubProc, error) {
	addr, err := freeTCPAddr()
	if err != nil {
		return nil, err
	}
	udp := o.udpPort
	if udp < 0 {
		if udp, err = freeUDPPort(); err != nil {
			return nil, err
		}
	}
	logf, err := os.Create(o.logPath)
	if err != nil {
		return nil, fmt.Errorf("hub log: %w", err)
	}
	args := []string{"serve", "--addr", addr, "--data", o.data,
		"--udp-port", strconv.Itoa(udp), "--ice-ips", "127.0.0.1", "--pprof", "--log-level", "warn"}
	if o.perIPFlag {
		args = append(args, "--max-peers-per-ip", "100000")
	}
	if o.maxPeers > 0 {
		args = append(args, "--max-peers", strconv.Itoa(o.maxPeers))
	}
	args = append(args, o.extra...)
	cmd := exec.Command(o.bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start hub: %w", err)
	}
	h := &hubProc{
		cmd:    cmd,
		url:    "http://" + addr,
		client: &http.Client{Timeout: 60 * time.Second},
		exited: make(chan struct{}),
		logf:   logf,
	}
	go func() {
		_ = cmd.Wait()
		close(h.exited)
	}()
	h.peerURL = h.url
	if !o.perIPFlag {
		if h.proxy, err = startSpreadProxy(addr); err != nil {
			h.stop()
			return nil, err
		}
		h.peerURL = h.proxy.url()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := h.get(ctx, "/healthz", io.Discard); err == nil {
			return h, nil
		}
		select {
		case <-h.exited:
			h.logf.Close()
			return nil, fmt.Errorf("hub exited at start (%s): see %s", cmd.ProcessState, o.logPath)
		case <-ctx.Done():
			h.stop()
			return nil, fmt.Errorf("waiting for the hub: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("hub at %s not healthy after 60 s: see %s", h.url, o.logPath)
		}
	}
}

// pid is the hub's process id.
func (h *hubProc) pid() int { return h.cmd.Process.Pid }

// alive reports whether the hub process is still running.
func (h *hubProc) alive() bool {
	select {
	case <-h.exited:
		return false
	default:
		return true
	}
}

// stop ends the hub with SIGTERM (SIGKILL after 15 s) and waits for it.
func (h *hubProc) stop() {
	defer h.logf.Close()
	if h.proxy != nil {
		defer h.proxy.close()
	}
	if !h.alive() {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(15 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.exited
	}
}

// get fetches path from the hub into w (within 60 s); a non-200 answer is
// an error.
func (h *hubProc) get(ctx context.Context, path string, w io.Writer) error {
	return h.getWithin(ctx, h.client, path, w)
}

// getWithin is get with the given client (and its timeout).
func (h *hubProc) getWithin(ctx context.Context, c *http.Client, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url+path, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	// No gzip: keep the measurement's own cost in the hub small.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %s", path, resp.Status)
	}
	if _, err := io.Copy(w, io.LimitReader(resp.Body, 256<<20)); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// forceGC makes the hub collect garbage: the heap profile endpoint runs a
// GC first when asked with gc=1.
func (h *hubProc) forceGC(ctx context.Context) error {
	return h.get(ctx, "/debug/pprof/heap?gc=1", io.Discard)
}

// scrape reads /metrics.
func (h *hubProc) scrape(ctx context.Context) (metricSet, error) {
	var sb strings.Builder
	if err := h.get(ctx, "/metrics", &sb); err != nil {
		return nil, err
	}
	return parseMetrics(sb.String()), nil
}

// metricSet maps a series ("name" or `name{label="v"}`) to its value.
type metricSet map[string]float64

// parseMetrics reads the Prometheus text format, ignoring comments.
func parseMetrics(text string) metricSet {
	m := metricSet{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m
}

// Series the benchmark reads.
const (
	mConnected   = "ztream_connected_peers"
	mServerBytes = `ztream_delivered_bytes_total{source="server"}`
	mP2PBytes    = `ztream_delivered_bytes_total{source="p2p"}`
	mCacheBytes  = `ztream_delivered_bytes_total{source="cache"}`
	mHeapInuse   = "go_memstats_heap_inuse_bytes"
	mHeapAlloc   = "go_memstats_heap_alloc_bytes"
	mGoroutines  = "go_goroutines"
	mBuffered    = "ztream_datachannel_buffered_bytes"
	mStalls      = "ztream_playback_stalls_total"
)

// freeTCPAddr returns a loopback address with a port free right now.
func freeTCPAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free tcp port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// freeUDPPort returns a UDP port free right now on every address.
func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", ":0")
	if err != nil {
		return 0, fmt.Errorf("free udp port: %w", err)
	}
	defer c.Close()
	ua, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("free udp port: unexpected address %v", c.LocalAddr())
	}
	return ua.Port, nil
}

// copyDir copies the regular files of src into a new directory dst. The
// copies are written through an os.Root, so no name can escape dst.
func copyDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", dst, err)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	defer root.Close()
	ents, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		if err := root.WriteFile(e.Name(), b, 0o644); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
	}
	return nil
}
