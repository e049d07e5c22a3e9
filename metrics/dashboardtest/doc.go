// Package dashboardtest checks the Grafana dashboard grafana/dashboards/ztream.json
// against a real Prometheus scraping a real Ztream HTTP handler. It holds
// only tests; see dashboard_test.go.
package dashboardtest
