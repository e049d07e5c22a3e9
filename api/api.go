// Package api serves Ztream's HTTP catalog API: the track list, manifests and
// the chunk bytes (the HTTP fallback path for clients whose WebRTC fails).
package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/internal/clientip"
	"github.com/ztream/ztream/media"
	"github.com/ztream/ztream/store"
)

// Config holds the API's dependencies.
type Config struct {
	Store  store.Store
	Logger *slog.Logger
	// OnChunkServed, when set, is called with the size of every chunk served
	// over HTTP (those bytes count as server bytes).
	OnChunkServed func(bytes int)
	// PeerConfig, when set, is served as JSON at GET /config: the peer
	// algorithm's constants (peer.DefaultAlgorithm), so that browsers run
	// the numbers the Go peer runs (PROTOCOL.md §8).
	PeerConfig any
	// ClientIP finds a request's client address, which names the requester
	// of the store calls made for it (store.WithRequester: a store that
	// fetches on a read bounds each client's share).
	ClientIP clientip.Resolver
}

// API is the HTTP catalog API.
type API struct {
	cfg Config
}

// New returns the API; mount its Routes under /api.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg}
}

// Routes returns the API's router:
//
//	GET /tracks                   → [{id, title, artist, album, duration_ms}]
//	GET /tracks/{id}              → the track's manifest
//	GET /tracks/{id}/chunks/{seq} → the chunk's bytes (audio/mpeg)
//	GET /tracks/{id}/cover        → the track's cover art (404 without)
//	GET /config                   → the peer algorithm's constants
func (a *API) Routes() http.Handler {
	r := chi.NewRouter()
	r.Use(a.requester)
	r.Get("/config", a.peerConfig)
	r.Get("/tracks", a.listTracks)
	r.Get("/tracks/{id}", a.manifest)
	r.Get("/tracks/{id}/chunks/{seq}", a.chunk)
	r.Get("/tracks/{id}/cover", a.cover)
	r.Get("/tracks/{id}/stream", a.stream)
	r.Head("/tracks/{id}/stream", a.stream)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, r.Method+" not allowed on "+r.URL.Path)
	})
	return r
}

func (a *API) peerConfig(w http.ResponseWriter, _ *http.Request) {
	if a.cfg.PeerConfig == nil {
		writeError(w, http.StatusNotFound, "no peer configuration on this server")
		return
	}
	writeJSON(w, http.StatusOK, a.cfg.PeerConfig)
}

func (a *API) listTracks(w http.ResponseWriter, r *http.Request) {
	tracks, err := a.cfg.Store.ListTracks(r.Context())
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	if tracks == nil {
		tracks = []media.Summary{}
	}
	writeJSON(w, http.StatusOK, tracks)
}

// trackManifest reads the manifest of the {id} URL parameter, answering
// the error itself (400, 404, 503) when it cannot.
func (a *API) trackManifest(w http.ResponseWriter, r *http.Request) (*media.Manifest, bool) {
	id, ok := trackID(w, r)
	if !ok {
		return nil, false
	}
	m, err := a.cfg.Store.Manifest(r.Context(), id)
	if err != nil {
		a.storeError(w, r, err)
		return nil, false
	}
	return m, true
}

func (a *API) manifest(w http.ResponseWriter, r *http.Request) {
	m, ok := a.trackManifest(w, r)
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSON(w, http.StatusOK, m)
}

func (a *API) chunk(w http.ResponseWriter, r *http.Request) {
	id, ok := trackID(w, r)
	if !ok {
		return
	}
	seq, err := strconv.Atoi(chi.URLParam(r, "seq"))
	if err != nil || seq < 0 {
		writeError(w, http.StatusBadRequest, "malformed chunk number "+strconv.Quote(chi.URLParam(r, "seq")))
		return
	}
	m, err := a.cfg.Store.Manifest(r.Context(), id)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	if seq >= len(m.Chunks) {
		writeError(w, http.StatusNotFound, "track "+id+" has no chunk "+strconv.Itoa(seq))
		return
	}
	info := m.Chunks[seq]
	etag := `"` + info.SHA256 + `"`
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	it, err := a.cfg.Store.ReadChunks(r.Context(), id, seq, seq+1)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	defer it.Close()
	if !it.Next() {
		err := it.Err()
		if err == nil {
			err = store.ErrNotFound
		}
		a.storeError(w, r, err)
		return
	}
	data := it.Chunk().Data
	h := w.Header()
	h.Set("Content-Type", media.MIMEType)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", etag)
	w.WriteHeader(http.StatusOK)
	n, _ := w.Write(data)
	if a.cfg.OnChunkServed != nil {
		a.cfg.OnChunkServed(n)
	}
}

// cover serves a track's cover art with its content type and its SHA-256
// as ETag. Asked as ?v=<that SHA-256> (the catalog's cover field) it is
// cached for a year: a re-ingested file with another picture gets another
// URL; without v, for an hour.
func (a *API) cover(w http.ResponseWriter, r *http.Request) {
	id, ok := trackID(w, r)
	if !ok {
		return
	}
	// The catalog entry, not the manifest: an origin's track is not
	// fetched for its cover (store.Cataloger).
	s, err := store.SummaryOf(r.Context(), a.cfg.Store, id)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	if s.Cover == "" {
		writeError(w, http.StatusNotFound, "track "+s.ID+" has no cover art")
		return
	}
	etag := `"` + s.Cover + `"`
	h := w.Header()
	if r.URL.Query().Get("v") == s.Cover {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=3600")
	}
	h.Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	mime, data, err := a.cfg.Store.Cover(r.Context(), s.Cover)
	if err != nil {
		h.Del("ETag")
		h.Set("Cache-Control", "no-store") // a refusal (429, 502) is not the picture
		a.storeError(w, r, err)
		return
	}
	h.Set("Content-Type", mime)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// requester names the request's client in its context (store.WithRequester).
func (a *API) requester(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := store.WithRequester(r.Context(), clientip.Key(a.cfg.ClientIP.Addr(r)))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// trackID extracts and validates the {id} URL parameter, answering 400 when
// it is malformed.
func trackID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := chi.URLParam(r, "id")
	if !chunkproto.ValidTrackID(id) {
		writeError(w, http.StatusBadRequest, "malformed track id "+strconv.Quote(id)+": want 32 lowercase hex digits")
		return "", false
	}
	return id, true
}

// storeError maps a store error to an HTTP status.
func (a *API) storeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound) && errors.Is(err, store.ErrUpstream):
		// Gone from the origin, or changed there (package origin): why.
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found: "+chi.URLParam(r, "id"))
	case errors.Is(err, store.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
	case errors.Is(err, store.ErrLimited):
		var ra interface{ RetryAfter() time.Duration }
		if errors.As(err, &ra) {
			w.Header().Set("Retry-After", strconv.Itoa(int((ra.RetryAfter()+time.Second-1)/time.Second)))
		}
		writeError(w, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, store.ErrUpstream):
		// The origin failed for this track (package origin): the error
		// says how, and the server is not at fault.
		a.cfg.Logger.Warn("origin fetch failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusBadGateway, err.Error())
	default:
		a.cfg.Logger.Error("store request failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, "the track store is unavailable, try again")
	}
}

// errorBody is the JSON shape of every API error.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}
