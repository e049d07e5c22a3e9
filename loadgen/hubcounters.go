package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// hubCounters are the hub's own counts of a run's reports, read from its
// /metrics before and after the run.
type hubCounters struct {
	reportsAccepted, reportsRejected, seedersDropped, crossHubPairs float64
}

// hubsCounters reads the counters of every hub of servers that answers,
// by hub; it fails when none does.
func hubsCounters(ctx context.Context, client *http.Client, servers []string) (map[string]hubCounters, error) {
	out := make(map[string]hubCounters, len(servers))
	var first error
	for _, s := range servers {
		c, err := scrapeHub(ctx, client, s)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		out[s] = c
	}
	if len(out) == 0 {
		return nil, first
	}
	return out, nil
}

// hubsDelta returns what the hubs read in both before and after counted in
// between (a hub that died meanwhile is left out).
func hubsDelta(before, after map[string]hubCounters) HubReports {
	var r HubReports
	for s, a := range after {
		b, ok := before[s]
		if !ok {
			continue
		}
		r.ReportsAccepted += int64(a.reportsAccepted - b.reportsAccepted)
		r.ReportsRejected += int64(a.reportsRejected - b.reportsRejected)
		r.SeedersDropped += int64(a.seedersDropped - b.seedersDropped)
		r.CrossHubPairs += int64(a.crossHubPairs - b.crossHubPairs)
	}
	return r
}

// maxMetricsBytes bounds the /metrics page read.
const maxMetricsBytes = 8 << 20

// scrapeHub reads the report counters from the hub's /metrics page.
func scrapeHub(ctx context.Context, client *http.Client, base string) (hubCounters, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return hubCounters{}, fmt.Errorf("metrics request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return hubCounters{}, fmt.Errorf("fetching %s/metrics: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return hubCounters{}, fmt.Errorf("fetching %s/metrics: %s", base, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, maxMetricsBytes))
	if err != nil {
		return hubCounters{}, fmt.Errorf("parsing %s/metrics: %w", base, err)
	}
	var c hubCounters
	if f := fams["ztream_peer_reports_total"]; f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "outcome" {
					continue
				}
				switch l.GetValue() {
				case "accepted":
					c.reportsAccepted += m.GetCounter().GetValue()
				case "rejected":
					c.reportsRejected += m.GetCounter().GetValue()
				}
			}
		}
	}
	if f := fams["ztream_cross_hub_pairs_total"]; f != nil {
		for _, m := range f.GetMetric() {
			c.crossHubPairs += m.GetCounter().GetValue()
		}
	}
	if f := fams["ztream_seeders_dropped_total"]; f != nil {
		for _, m := range f.GetMetric() {
			c.seedersDropped += m.GetCounter().GetValue()
		}
	}
	return c, nil
}
