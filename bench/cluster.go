package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ztream/ztream/loadgen"
)

// clusterHubs is how many hubs the cluster rows start.
const clusterHubs = 3

// clusterResult is one load run over several hubs joined through NATS.
type clusterResult struct {
	Label string
	Args  []string // the load command's arguments
	Rep   loadgen.Report
	Err   string
	// Killed is the hub killed (SIGKILL) mid-run, at KilledAt after the
	// load started; Forgotten how long until the other hubs' /healthz no
	// longer listed it (0: not measured).
	Killed    string
	KilledAt  time.Duration
	Forgotten time.Duration
	// HubCPU is each hub's CPU seconds over the run.
	HubCPU []float64
	Wall   float64
}

// runCluster starts a NATS JetStream server and clusterHubs hubs joined
// through it, and runs `ztream load` over all of them twice: undisturbed,
// and with one hub killed half-way.
func runCluster(ctx context.Context, e *env) ([]clusterResult, error) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		return nil, fmt.Errorf("nats-server not found: install it with `make deps` (or leave out the cluster part with -only): %w", err)
	}
	var out []clusterResult
	if v, err := exec.CommandContext(ctx, bin, "--version").Output(); err == nil {
		e.natsVersion = strings.TrimSpace(string(v))
	}
	for _, kill := range []bool{false, true} {
		label := fmt.Sprintf("cluster-%d", clusterHubs)
		if kill {
			label += "-kill"
		}
		if _, err := e.waitCalm(ctx, label); err != nil {
			return out, err
		}
		res, err := e.clusterRow(ctx, bin, label, kill)
		if err != nil {
			return out, fmt.Errorf("%s: %w", label, err)
		}
		out = append(out, res)
	}
	return out, nil
}

func (e *env) clusterRow(ctx context.Context, natsBin, label string, kill bool) (clusterResult, error) {
	res := clusterResult{Label: label}
	addr, err := freeTCPAddr()
	if err != nil {
		return res, err
	}
	_, port, _ := net.SplitHostPort(addr)
	natsURL := "nats://" + addr
	natsLog, err := os.Create(filepath.Join(e.work, label+".nats.log"))
	if err != nil {
		return res, err
	}
	defer natsLog.Close()
	nats := exec.Command(natsBin, "-a", "127.0.0.1", "-p", port, "-js", "-sd", filepath.Join(e.work, label+".nats"))
	nats.Stdout, nats.Stderr = natsLog, natsLog
	if err := nats.Start(); err != nil {
		return res, fmt.Errorf("start nats-server: %w", err)
	}
	defer func() {
		_ = nats.Process.Kill()
		_ = nats.Wait()
	}()
	hubs := make([]*hubProc, clusterHubs)
	defer func() {
		for _, h := range hubs {
			if h != nil {
				h.stop()
			}
		}
	}()
	for i := range hubs {
		name := fmt.Sprintf("%s-hub%d", label, i+1)
		data, err := e.freshData(name, e.template)
		if err != nil {
			return res, err
		}
		o := e.hubOptions(data, name)
		o.extra = []string{"--nats", natsURL, "--hub-id", fmt.Sprintf("hub%d", i+1)}
		if hubs[i], err = startHub(ctx, o); err != nil {
			return res, err
		}
	}
	// Every hub sees the others before the load starts.
	deadline := time.Now().Add(30 * time.Second)
	for _, h := range hubs {
		for len(h.clusterHubs(ctx)) != clusterHubs-1 {
			if time.Now().After(deadline) {
				return res, fmt.Errorf("the hubs did not find each other within 30 s")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	urls := make([]string, len(hubs))
	for i, h := range hubs {
		urls[i] = h.peerURL
	}
	peers := 60
	res.Args = []string{"load", "--server", strings.Join(urls, ","), "--peers", strconv.Itoa(peers),
		"--duration", e.duration.String(), "--speed", strconv.FormatFloat(e.speed, 'g', -1, 64), "--json"}
	var stdout bytes.Buffer
	errLog, err := os.Create(filepath.Join(e.work, label+".load.log"))
	if err != nil {
		return res, err
	}
	defer errLog.Close()
	cmd := exec.CommandContext(ctx, e.bin, res.Args...)
	cmd.Stdout, cmd.Stderr = &stdout, errLog
	cpu0 := make([]float64, len(hubs))
	for i, h := range hubs {
		if cpu0[i], err = e.proc.cpuSeconds(h.pid()); err != nil {
			return res, err
		}
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start load: %w", err)
	}
	e.logf("%s: %s", label, strings.Join(cmd.Args, " "))
	victim := 1
	if kill {
		select {
		case <-time.After(e.duration / 2):
		case <-ctx.Done():
			return res, ctx.Err()
		}
		res.Killed = fmt.Sprintf("hub%d", victim+1)
		res.KilledAt = time.Since(t0)
		_ = hubs[victim].cmd.Process.Signal(syscall.SIGKILL)
		<-hubs[victim].exited
		// How long until the survivors forget it (their /healthz).
		for time.Since(t0)-res.KilledAt < 30*time.Second {
			gone := true
			for i, h := range hubs {
				if i != victim && slices.Contains(h.clusterHubs(ctx), res.Killed) {
					gone = false
				}
			}
			if gone {
				res.Forgotten = time.Since(t0) - res.KilledAt
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	werr := cmd.Wait()
	res.Wall = time.Since(t0).Seconds()
	for i, h := range hubs {
		cpu := -1.0
		if !kill || i != victim {
			if c, err := e.proc.cpuSeconds(h.pid()); err == nil {
				cpu = c - cpu0[i]
			}
		}
		res.HubCPU = append(res.HubCPU, cpu)
	}
	if werr != nil {
		res.Err = fmt.Sprintf("%v: %s", werr, logTail(errLog.Name(), 5))
		return res, nil
	}
	// The report is the last line of stdout (after the table).
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res.Rep); err != nil {
		res.Err = fmt.Sprintf("report: %v", err)
	}
	return res, nil
}

// clusterHubs returns the other hubs this hub's /healthz lists (nil when it
// cannot be read).
func (h *hubProc) clusterHubs(ctx context.Context) []string {
	var b bytes.Buffer
	if err := h.get(ctx, "/healthz", &b); err != nil {
		return nil
	}
	var health struct {
		Hub struct {
			Hubs []string `json:"hubs"`
		} `json:"hub"`
	}
	if json.Unmarshal(b.Bytes(), &health) != nil {
		return nil
	}
	return health.Hub.Hubs
}

// writeCluster writes the cluster rows.
func (r *report) writeCluster(w io.Writer) {
	if len(r.Cluster) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Several hubs through NATS\n\n")
	fmt.Fprintf(w, "%d `ztream serve --nats` processes and one Debian `nats-server -js` (%s), all on this machine's loopback; "+
		"60 peers spread round-robin over the hubs with `ztream load --server URL1,URL2,URL3`, the demo library at %gx for %s. "+
		"In the second row one hub is killed (SIGKILL) half-way: its peers fail over to the next hub in their list.\n\n",
		clusterHubs, r.NATSVersion, r.Options.speed, r.Options.duration)
	fmt.Fprintf(w, "| row | offload (ceiling) | stalls | start p50 / p99 ms | lookup p50 / p99 ms | cross-hub pairs | failovers | killed hub forgotten after | hub CPU s |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Cluster {
		if c.Err != "" {
			fmt.Fprintf(w, "| %s | failed: %s |||||||\n", c.Label, strings.ReplaceAll(c.Err, "\n", " "))
			continue
		}
		forgot := "–"
		if c.Killed != "" {
			forgot = fmt.Sprintf("%s killed at %.0f s: %.1f s", c.Killed, c.KilledAt.Seconds(), c.Forgotten.Seconds())
		}
		var cpu []string
		for _, v := range c.HubCPU {
			if v < 0 {
				cpu = append(cpu, "killed")
			} else {
				cpu = append(cpu, fmt.Sprintf("%.1f", v))
			}
		}
		fmt.Fprintf(w, "| %s | %.3f (%.3f) | %d | %.1f / %.1f | %.1f / %.1f | %d | %d | %s | %s |\n",
			c.Label, c.Rep.OffloadRatio, c.Rep.OffloadCeiling, c.Rep.Stalls,
			c.Rep.StartupMS.P50, c.Rep.StartupMS.P99, c.Rep.LookupMS.P50, c.Rep.LookupMS.P99,
			c.Rep.CrossHubPairs, c.Rep.HubFailovers, forgot, strings.Join(cpu, " / "))
	}
	fmt.Fprintf(w, "\nLookup times are the peers' (lookup sent to lookup_result received): with a seeder on another hub they include "+
		"the ask relayed to its hub and back, and the pairing request. Cross-hub pairs are counted by the hubs alive at the end "+
		"(the killed hub's count is lost with it).\n\n")
}
