package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ztream/ztream/boltstore"
	"github.com/ztream/ztream/metrics"
)

// TestOpsElsewhere: /metrics and /debug/pprof are on the public handler by
// default, and only on the operator's handler with OpsElsewhere.
func TestOpsElsewhere(t *testing.T) {
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	get := func(h http.Handler, path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	cfg := Config{Store: st, Metrics: metrics.New(), Profiling: true}
	public := NewHandler(cfg)
	for _, p := range []string{"/metrics", "/debug/pprof/", "/healthz"} {
		if code := get(public, p); code != http.StatusOK {
			t.Errorf("default: GET %s = %d, want 200", p, code)
		}
	}
	cfg.OpsElsewhere = true
	public, ops := NewHandler(cfg), NewOpsHandler(cfg)
	for _, p := range []string{"/metrics", "/debug/pprof/"} {
		if code := get(public, p); code != http.StatusNotFound {
			t.Errorf("OpsElsewhere: public GET %s = %d, want 404", p, code)
		}
		if code := get(ops, p); code != http.StatusOK {
			t.Errorf("OpsElsewhere: operator GET %s = %d, want 200", p, code)
		}
	}
	if code := get(public, "/healthz"); code != http.StatusOK {
		t.Errorf("OpsElsewhere: public /healthz = %d, want 200 (load balancers probe it)", code)
	}
}
