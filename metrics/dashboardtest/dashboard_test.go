package dashboardtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// dashboardPath is the dashboard under test, relative to this package.
var dashboardPath = filepath.Join("..", "..", "grafana", "dashboards", "ztream.json")

// provisioningDir holds Grafana's provisioning files.
var provisioningDir = filepath.Join("..", "..", "grafana", "provisioning")

// dashboard is the part of a Grafana dashboard JSON model the tests read.
type dashboard struct {
	ID         *int            `json:"id"`
	UID        string          `json:"uid"`
	Title      string          `json:"title"`
	Inputs     json.RawMessage `json:"__inputs"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // of a collapsed row
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *datasource `json:"datasource"`
}

// exprTarget is one query of the dashboard, named for messages.
type exprTarget struct {
	Panel, RefID, Expr string
}

func (e exprTarget) String() string { return fmt.Sprintf("panel %q target %s", e.Panel, e.RefID) }

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatalf("reading the dashboard: %v", err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("parsing %s: %v", dashboardPath, err)
	}
	return d
}

// allPanels flattens rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// targets returns every query of every panel.
func (d dashboard) targets() []exprTarget {
	var out []exprTarget
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			out = append(out, exprTarget{Panel: p.Title, RefID: tg.RefID, Expr: tg.Expr})
		}
	}
	return out
}

// substitute replaces Grafana's variables in expr as Grafana would for a
// dashboard whose range is rng and whose $__rate_interval is rate; it
// reports whether no unknown variable is left.
func substitute(expr, rate, rng string) (string, bool) {
	expr = strings.NewReplacer(
		"${__rate_interval}", rate, "$__rate_interval", rate,
		"${__interval}", "2s", "$__interval", "2s",
		"${__range}", rng, "$__range", rng,
	).Replace(expr)
	return expr, !strings.Contains(expr, "$")
}

// offloadExpr is the headline query, as specified (whitespace aside), with
// its division-by-zero guard.
const offloadExpr = `sum(rate(ztream_delivered_bytes_total{source="p2p"}[$__rate_interval])) / (sum(rate(ztream_delivered_bytes_total{source=~"p2p|server"}[$__rate_interval])) > 0)`

var spaces = regexp.MustCompile(`\s+`)

func normalize(s string) string { return strings.TrimSpace(spaces.ReplaceAllString(s, " ")) }

// TestDashboardModel checks the dashboard's structure: what Grafana's file
// provisioning needs and the conventions of the project (stable uid, the
// datasource as a variable everywhere, the offload ratio as the headline).
func TestDashboardModel(t *testing.T) {
	d := loadDashboard(t)
	if d.UID != "ztream-overview" {
		t.Errorf("uid = %q, want the stable %q", d.UID, "ztream-overview")
	}
	if d.ID != nil {
		t.Errorf("id = %d, want null (provisioned dashboards get their id from Grafana)", *d.ID)
	}
	if len(d.Inputs) > 0 {
		t.Errorf("__inputs present: provisioning does not resolve them")
	}
	var dsVar bool
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = true
		}
	}
	if !dsVar {
		t.Errorf("no template variable datasource of type datasource/prometheus")
	}

	ids := map[int]string{}
	var headline *panel
	for _, p := range allPanels(d.Panels) {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if headline == nil {
			headline = &p
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q: datasource %+v, want prometheus ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q target %s: datasource %+v, want ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: missing or duplicate refId %q", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q target %s: empty expr", p.Title, tg.RefID)
			}
			if _, ok := substitute(tg.Expr, "1m", "1h"); !ok {
				t.Errorf("panel %q target %s: unknown variable in %q", p.Title, tg.RefID, tg.Expr)
			}
		}
	}
	if headline == nil || headline.Type != "stat" || len(headline.Targets) != 1 ||
		normalize(headline.Targets[0].Expr) != normalize(offloadExpr) {
		t.Errorf("the first panel is not the offload stat with expr %q", offloadExpr)
	}
}

// TestProvisioningFiles checks that the provisioning files point where the
// README says: the dashboards directory and the datasource, both through
// environment variables Grafana expands.
func TestProvisioningFiles(t *testing.T) {
	for file, wants := range map[string][]string{
		"datasources/ztream.yaml": {"apiVersion: 1", "type: prometheus", "uid: ztream-prometheus", "url: $ZTREAM_PROMETHEUS_URL"},
		"dashboards/ztream.yaml":  {"apiVersion: 1", "type: file", "path: $ZTREAM_GRAFANA_DASHBOARDS"},
	} {
		data, err := os.ReadFile(filepath.Join(provisioningDir, file))
		if err != nil {
			t.Errorf("reading provisioning file: %v", err)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(string(data), w) {
				t.Errorf("%s lacks %q", file, w)
			}
		}
		if strings.Contains(string(data), "\t") {
			t.Errorf("%s contains a tab: YAML forbids tabs for indentation", file)
		}
	}
}

// TestDashboardAgainstPrometheus runs every query of the dashboard on a real
// Prometheus that scraped a real Ztream handler under traffic: a load run of
// Go peers through the hub, then synthetic traffic that touches every metric.
func TestDashboardAgainstPrometheus(t *testing.T) {
	bin := prometheusBinary(t)
	for _, mode := range []trafficMode{loadRunTraffic, syntheticTraffic} {
		t.Run(mode.name, func(t *testing.T) { checkDashboard(t, bin, mode) })
	}
}

func checkDashboard(t *testing.T, bin string, mode trafficMode) {
	ctx, cancel := context.WithTimeout(context.Background(), testBudget)
	defer cancel()
	env := startZtream(t, mode)
	prom := startPrometheus(ctx, t, bin, env.addr)
	start := time.Now()
	// A baseline before the traffic, the traffic, then the final state.
	prom.waitForScrapes(ctx, t, 2)
	if err := mode.run(ctx, t, env); err != nil {
		t.Fatalf("traffic: %v", err)
	}
	prom.waitForScrapes(ctx, t, prom.scrapes(ctx, t)+2)

	// Windows spanning the whole test, so rates see all the traffic; every
	// query is evaluated at one instant so that they agree with each other.
	at := time.Now().Truncate(time.Millisecond)
	rate := fmt.Sprintf("%ds", int(at.Sub(start).Seconds())+5)
	d := loadDashboard(t)
	for _, tg := range d.targets() {
		expr, ok := substitute(tg.Expr, rate, rate)
		if !ok {
			t.Errorf("%s: unknown variable in %q", tg, tg.Expr)
			continue
		}
		samples, err := prom.query(ctx, expr, at)
		if err != nil {
			t.Errorf("%s: %v", tg, err)
			continue
		}
		t.Logf("%s: %v", tg, samples)
		if len(samples) == 0 {
			// Only a ratio guarded against a zero denominator may be empty.
			if !strings.Contains(expr, "> 0)") {
				t.Errorf("%s: %q returned no series (wrong metric name or label?)", tg, expr)
			}
			continue
		}
		for _, s := range samples {
			// histogram_quantile is NaN over a window without observations;
			// anything else NaN or infinite is a division by zero.
			if (math.IsNaN(s.Value) || math.IsInf(s.Value, 0)) && !strings.Contains(expr, "histogram_quantile") {
				t.Errorf("%s: %q = %v %v", tg, expr, s.Metric, s.Value)
			}
		}
	}

	// The headline: a real ratio in [0, 1] that matches its definition.
	offload, _ := substitute(offloadExpr, rate, rate)
	ratio := prom.scalar(ctx, t, offload, at)
	p2p := prom.scalar(ctx, t, `sum(rate(ztream_delivered_bytes_total{source="p2p"}[`+rate+`]))`, at)
	server := prom.scalar(ctx, t, `sum(rate(ztream_delivered_bytes_total{source="server"}[`+rate+`]))`, at)
	t.Logf("offload ratio %.4f (p2p %.0f B/s, server %.0f B/s over %s)", ratio, p2p, server, rate)
	if !(ratio >= 0 && ratio <= 1) {
		t.Errorf("offload ratio = %v, want a number in [0, 1]", ratio)
	}
	if p2p <= 0 || server <= 0 {
		t.Errorf("p2p rate %v and server rate %v: want both > 0 after the traffic", p2p, server)
	} else if want := p2p / (p2p + server); math.Abs(ratio-want) > 1e-9*want {
		t.Errorf("offload ratio = %v, want p2p/(p2p+server) = %v", ratio, want)
	}
	// The hub counts what it sends; peers cannot have received more.
	if rep := env.load; rep != nil {
		sent := prom.scalar(ctx, t, `sum(ztream_delivered_bytes_total{source="server"})`, at)
		if sent < float64(rep.ServerBytes) {
			t.Errorf("the hub counted %v server bytes, but the peers received %d", sent, rep.ServerBytes)
		}
	}
	// Where nothing is delivered (the cache source, when no peer reported
	// cache bytes), the guarded ratio gives no data rather than NaN.
	guarded := strings.NewReplacer(`source="p2p"`, `source="cache"`, `source=~"p2p|server"`, `source="cache"`).Replace(offload)
	if cache := prom.scalar(ctx, t, `sum(rate(ztream_delivered_bytes_total{source="cache"}[`+rate+`]))`, at); cache != 0 {
		t.Logf("cache rate %v: guard check skipped", cache)
	} else if empty, err := prom.query(ctx, guarded, at); err != nil || len(empty) != 0 {
		t.Errorf("%q = %v, %v; want no series", guarded, empty, err)
	}
}
