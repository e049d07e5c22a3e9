package dashboardtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ztream/ztream/internal/testtool"
)

const (
	// testBudget bounds the whole Prometheus test.
	testBudget = 2 * time.Minute
)

// prometheusBinary finds the prometheus binary ($ZTREAM_PROMETHEUS, then
// PATH, then /usr/bin/prometheus). When it is missing the test is skipped,
// except under CI (env CI set), where it fails.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ZTREAM_PROMETHEUS"); p != "" {
		return p
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err == nil {
		return "/usr/bin/prometheus"
	}
	const msg = "the prometheus binary is not installed (Debian: apt-get install prometheus, or `make deps`; or set ZTREAM_PROMETHEUS)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI is set, so this is a failure")
	}
	t.Skip(msg + ": skipping the dashboard check against Prometheus")
	return ""
}

// promServer is a Prometheus process started by the test.
type promServer struct {
	base string // http://127.0.0.1:port
	hc   *http.Client
	log  *testtool.Buffer
}

// freePort returns a TCP port free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPrometheus runs Prometheus on 127.0.0.1 with its data in a temporary
// directory, scraping target (host:port) every second. The process is
// stopped when the test ends.
func startPrometheus(ctx context.Context, t *testing.T, bin, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ztream
    metrics_path: /metrics
    static_configs:
      - targets: [%q]
`, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatalf("writing the Prometheus config: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	log := &testtool.Buffer{Max: 1 << 20} // a bounded log
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Logf("prometheus exit: %v", err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Logf("prometheus ignored SIGINT for 10 s, killed: %v", <-exited)
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", log.String())
		}
	})
	p := &promServer{base: "http://" + addr, hc: &http.Client{Timeout: 5 * time.Second}, log: log}

	// Ready within 30 s, or the process died.
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err // let the cleanup see it
			t.Fatalf("prometheus exited early: %v\n%s", err, log.String())
		default:
		}
		if resp, err := p.hc.Get(p.base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("prometheus not ready after 30 s:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrapes returns how many successful scrapes of the ztream job Prometheus
// has stored so far.
func (p *promServer) scrapes(ctx context.Context, t *testing.T) int {
	t.Helper()
	samples, err := p.query(ctx, `sum_over_time(up{job="ztream"}[1h])`, time.Now())
	if err != nil {
		t.Fatalf("counting scrapes: %v", err)
	}
	if len(samples) == 0 {
		return 0
	}
	return int(samples[0].Value)
}

// waitForScrapes waits (at most 40 s) until Prometheus has stored n
// successful scrapes of the ztream job.
func (p *promServer) waitForScrapes(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		if p.scrapes(ctx, t) >= n {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("after 40 s Prometheus has %d successful scrapes, want %d", p.scrapes(ctx, t), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sample is one element of an instant query's result.
type sample struct {
	Metric map[string]string
	Value  float64
}

func (s sample) String() string { return fmt.Sprintf("%v=%g", s.Metric, s.Value) }

// query evaluates expr at instant at through the HTTP API and returns its
// samples (a scalar result is one sample without labels).
func (p *promServer) query(ctx context.Context, expr string, at time.Time) ([]sample, error) {
	form := url.Values{
		"query": {expr},
		"time":  {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/api/v1/query", bytes.NewBufferString(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("query request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("query %q: reading the answer: %w", expr, err)
	}
	var out struct {
		Status    string   `json:"status"`
		ErrorType string   `json:"errorType"`
		Error     string   `json:"error"`
		Warnings  []string `json:"warnings"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("query %q: HTTP %d, undecodable answer %.200q: %w", expr, resp.StatusCode, body, err)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("query %q: %s: %s", expr, out.ErrorType, out.Error)
	}
	if len(out.Warnings) > 0 {
		return nil, fmt.Errorf("query %q: warnings %v", expr, out.Warnings)
	}
	switch out.Data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(out.Data.Result, &vec); err != nil {
			return nil, fmt.Errorf("query %q: decoding the vector: %w", expr, err)
		}
		samples := make([]sample, 0, len(vec))
		for _, v := range vec {
			f, err := parseValue(v.Value)
			if err != nil {
				return nil, fmt.Errorf("query %q: %w", expr, err)
			}
			samples = append(samples, sample{Metric: v.Metric, Value: f})
		}
		return samples, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(out.Data.Result, &v); err != nil {
			return nil, fmt.Errorf("query %q: decoding the scalar: %w", expr, err)
		}
		f, err := parseValue(v)
		if err != nil {
			return nil, fmt.Errorf("query %q: %w", expr, err)
		}
		return []sample{{Value: f}}, nil
	default:
		return nil, fmt.Errorf("query %q: unexpected result type %q", expr, out.Data.ResultType)
	}
}

// parseValue decodes a [timestamp, "value"] pair.
func parseValue(v [2]any) (float64, error) {
	s, ok := v[1].(string)
	if !ok {
		return 0, errors.New("sample value is not a string")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value %q: %w", s, err)
	}
	return f, nil
}

// scalar evaluates an expression that must give exactly one sample.
func (p *promServer) scalar(ctx context.Context, t *testing.T, expr string, at time.Time) float64 {
	t.Helper()
	samples, err := p.query(ctx, expr, at)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if len(samples) != 1 {
		t.Fatalf("%q gave %d samples, want 1: %v", expr, len(samples), samples)
	}
	return samples[0].Value
}
