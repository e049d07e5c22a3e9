// Package server assembles Ztream's HTTP surface: the web client, the catalog
// API, the WebSocket signaling endpoint, /metrics and /healthz (the last two
// also on an operator listener of their own: NewOpsHandler).
package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/ztream/ztream/api"
	"github.com/ztream/ztream/internal/clientip"
	"github.com/ztream/ztream/metrics"
	"github.com/ztream/ztream/store"
)

// Config holds what the HTTP surface serves.
type Config struct {
	Store   store.Store
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Signaling serves the WebSocket control connection at /ws (optional).
	Signaling http.Handler
	// Web serves the browser client at / (optional).
	Web http.Handler
	// PeerConfig is served at /api/config (see api.Config.PeerConfig).
	PeerConfig any
	// ClientIP finds a request's client address (api.Config.ClientIP).
	ClientIP clientip.Resolver
	// Profiling mounts Go's pprof handlers at /debug/pprof (off by default:
	// profiles reveal internals and cost CPU).
	Profiling bool
	// OpsElsewhere leaves /metrics and /debug/pprof out of NewHandler:
	// NewOpsHandler serves them on a listener of their own.
	OpsElsewhere bool
	// Hub, when set, says who this hub is in /healthz (field "hub": its id
	// and, in a cluster, its view of the cluster).
	Hub func() any
}

// NewHandler returns the router of the whole HTTP surface.
func NewHandler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	apiCfg := api.Config{Store: cfg.Store, Logger: cfg.Logger, PeerConfig: cfg.PeerConfig, ClientIP: cfg.ClientIP}
	if cfg.Metrics != nil {
		apiCfg.OnChunkServed = cfg.Metrics.ServerBytes
	}
	if !cfg.OpsElsewhere {
		mountOps(r, cfg)
	}
	r.Mount("/api", api.New(apiCfg).Routes())
	r.Get("/healthz", health(cfg.Store, cfg.Hub))
	if cfg.Signaling != nil {
		// The WebSocket route stays outside any compression or timeout middleware.
		r.Handle("/ws", cfg.Signaling)
	}
	if cfg.Web != nil {
		r.Handle("/*", cfg.Web)
	}
	return r
}

// NewOpsHandler returns the operator's surface alone: /metrics,
// /debug/pprof (with cfg.Profiling) and /healthz, for a listener that is not
// public (cfg.OpsElsewhere).
func NewOpsHandler(cfg Config) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	mountOps(r, cfg)
	r.Get("/healthz", health(cfg.Store, cfg.Hub))
	return r
}

// mountOps mounts /metrics and, with cfg.Profiling, /debug/pprof on r.
func mountOps(r chi.Router, cfg Config) {
	if cfg.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", cfg.Metrics.Handler())
	}
	if cfg.Profiling {
		r.Mount("/debug", middleware.Profiler())
	}
}

// health answers 200 when the store responds, 503 otherwise.
func health(st store.Store, hub func() any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		body := map[string]any{"status": "ok"}
		if hub != nil {
			body["hub"] = hub()
		}
		if err := st.Ping(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			body["status"], body["error"] = "unavailable", err.Error()
		}
		_ = json.NewEncoder(w).Encode(body)
	}
}
