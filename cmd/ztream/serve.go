package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ztream/ztream/demo"
	"github.com/ztream/ztream/hub"
	"github.com/ztream/ztream/ingest"
	"github.com/ztream/ztream/internal/clientip"
	"github.com/ztream/ztream/metrics"
	"github.com/ztream/ztream/metrics/hubmetrics"
	"github.com/ztream/ztream/musicdir"
	"github.com/ztream/ztream/origin"
	"github.com/ztream/ztream/peer"
	"github.com/ztream/ztream/server"
	"github.com/ztream/ztream/signaling"
	"github.com/ztream/ztream/store"
	"github.com/ztream/ztream/web"
)

// serveConfig is everything `ztream serve` is told.
type serveConfig struct {
	addr string
	tls  tlsFlags
	// metricsAddr, when set, serves /metrics and /debug/pprof there
	// instead of on addr.
	metricsAddr string
	store       storeFlags
	noDemo      bool
	// music is the folder to follow (--music), "" for none.
	music     string
	transcode transcodeFlags
	origin    originFlags
	logLevel  string
	shutdown  time.Duration
	pprof     bool
	hub       hubFlags
	cluster   clusterFlags
}

// hubFlags configure the hub's WebRTC side.
type hubFlags struct {
	udpPort      int
	tcpPort      int
	publicIPs    string
	origins      string
	maxPeers     int
	maxPerIP     int
	uploadCap    int
	iceLoopback  bool
	iceIPs       string
	iceServerURL string
	trusted      string
	turnSecret   string
	turnTTL      time.Duration
	peerPolicy   string
	iceLite      bool
}

func (h *hubFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&h.udpPort, "udp-port", envInt("ZTREAM_UDP_PORT", 8443),
		"the one UDP port all hub PeerConnections share; 0 = an ephemeral port per connection (env ZTREAM_UDP_PORT)")
	fs.IntVar(&h.tcpPort, "tcp-port", envInt("ZTREAM_TCP_PORT", 0),
		"also accept ICE over TCP on this port, for listeners whose network blocks UDP; 0 = off (env ZTREAM_TCP_PORT)")
	fs.StringVar(&h.publicIPs, "public-ip", envOr("ZTREAM_PUBLIC_IP", ""),
		"comma-separated public IPs announced instead of the host's (1:1 NAT, containers) (env ZTREAM_PUBLIC_IP)")
	fs.StringVar(&h.origins, "allowed-origins", envOr("ZTREAM_ALLOWED_ORIGINS", ""),
		"comma-separated Origin host patterns allowed on /ws besides the same origin, e.g. 'app.example.com,*.example.org' (env ZTREAM_ALLOWED_ORIGINS)")
	fs.IntVar(&h.maxPeers, "max-peers", envInt("ZTREAM_MAX_PEERS", 1000), "most peers connected at once (env ZTREAM_MAX_PEERS)")
	fs.IntVar(&h.maxPerIP, "max-peers-per-ip", envInt("ZTREAM_MAX_PEERS_PER_IP", 32),
		"most WebSockets open at once from one client address (IPv6: per /64); raise it behind a reverse proxy, -1 = no limit (env ZTREAM_MAX_PEERS_PER_IP)")
	fs.StringVar(&h.trusted, "trusted-proxies", envOr("ZTREAM_TRUSTED_PROXIES", ""),
		"comma-separated IPs or CIDR prefixes of reverse proxies whose X-Forwarded-For / X-Real-IP name the client (per-address limits); from anyone else those headers are ignored (env ZTREAM_TRUSTED_PROXIES)")
	fs.IntVar(&h.uploadCap, "upload-cap", envInt("ZTREAM_UPLOAD_CAP", 4), "default number of leechers a peer serves at once (env ZTREAM_UPLOAD_CAP)")
	fs.BoolVar(&h.iceLoopback, "ice-loopback", envOr("ZTREAM_ICE_LOOPBACK", "") != "",
		"offer loopback ICE candidates (only for tests and single-machine demos) (env ZTREAM_ICE_LOOPBACK=1)")
	fs.StringVar(&h.iceIPs, "ice-ips", envOr("ZTREAM_ICE_IPS", ""),
		"comma-separated local IPs the hub offers ICE candidates on (default: every address of the host); each address costs every connected peer a candidate (env ZTREAM_ICE_IPS)")
	fs.StringVar(&h.iceServerURL, "ice-servers", envOr("ZTREAM_ICE_SERVERS", ""),
		"comma-separated STUN/TURN URLs handed to peers for peer-to-peer connections, e.g. stun:stun.example.org:3478,turn:turn.example.org:3478; "+
			"a TURN URL takes static credentials as turn:USER:PASS@host:port, or gets per-peer ones from --turn-secret (env ZTREAM_ICE_SERVERS)")
	fs.StringVar(&h.turnSecret, "turn-secret", envOr("ZTREAM_TURN_SECRET", ""),
		"secret shared with the TURN servers of --ice-servers (coturn use-auth-secret / static-auth-secret): each peer gets time-limited credentials (env ZTREAM_TURN_SECRET)")
	fs.DurationVar(&h.turnTTL, "turn-ttl", envDuration("ZTREAM_TURN_TTL", 12*time.Hour), "lifetime of the TURN credentials of --turn-secret; renewed at half of it (env ZTREAM_TURN_TTL)")
	fs.BoolVar(&h.iceLite, "ice-lite", envOr("ZTREAM_ICE_LITE", "") == "1",
		"make the hub an ICE-lite agent: it answers peers' ICE checks without sending any (faster setup with Chromium; lost offload under heavy load in tests) (env ZTREAM_ICE_LITE=1)")
	fs.StringVar(&h.peerPolicy, "peer-ice-policy", envOr("ZTREAM_PEER_ICE_POLICY", "all"),
		"all, or relay: every peer-to-peer connection goes through a TURN relay, so listeners never learn each other's addresses (env ZTREAM_PEER_ICE_POLICY)")
}

// config turns the flags into a hub configuration.
func (h *hubFlags) config(logger *slog.Logger) (hub.Config, error) {
	cfg := hub.DefaultConfig()
	cfg.UDPPort = h.udpPort
	if h.tcpPort < 0 || h.tcpPort > 65535 {
		return hub.Config{}, fmt.Errorf("--tcp-port %d: want 0 (off) or a port", h.tcpPort)
	}
	cfg.TCPPort = h.tcpPort
	cfg.PublicIPs = splitList(h.publicIPs)
	cfg.OriginPatterns = splitList(h.origins)
	cfg.MaxPeers = h.maxPeers
	cfg.MaxPeersPerIP = h.maxPerIP
	cfg.UploadCap = h.uploadCap
	trusted, err := clientip.Parse(h.trusted)
	if err != nil {
		return hub.Config{}, fmt.Errorf("--trusted-proxies: %w", err)
	}
	cfg.ClientIP = trusted
	cfg.IncludeLoopback = h.iceLoopback
	cfg.ICELite = h.iceLite
	if ips := splitList(h.iceIPs); len(ips) > 0 {
		allowed := make([]net.IP, 0, len(ips))
		for _, s := range ips {
			ip := net.ParseIP(s)
			if ip == nil {
				return hub.Config{}, fmt.Errorf("--ice-ips: %q is not an IP address", s)
			}
			allowed = append(allowed, ip)
		}
		cfg.IPFilter = func(ip net.IP) bool { return slices.ContainsFunc(allowed, ip.Equal) }
		if slices.ContainsFunc(allowed, net.IP.IsLoopback) {
			cfg.IncludeLoopback = true
		}
	}
	servers, err := parseICEServers(splitList(h.iceServerURL), h.turnSecret != "")
	if err != nil {
		return hub.Config{}, err
	}
	cfg.ICEServers = servers
	cfg.TURNSecret = h.turnSecret
	if h.turnSecret != "" && h.turnTTL < time.Minute {
		return hub.Config{}, fmt.Errorf("--turn-ttl %s: want at least 1m", h.turnTTL)
	}
	cfg.TURNCredentialTTL = h.turnTTL
	switch h.peerPolicy {
	case "all", "":
	case signaling.ICETransportPolicyRelay:
		if !slices.ContainsFunc(servers, func(s webrtc.ICEServer) bool { return slices.ContainsFunc(s.URLs, hub.IsTURNURL) }) {
			return hub.Config{}, errors.New("--peer-ice-policy relay needs a TURN server in --ice-servers")
		}
		cfg.PeerICETransportPolicy = signaling.ICETransportPolicyRelay
	default:
		return hub.Config{}, fmt.Errorf("--peer-ice-policy %q: want all or relay", h.peerPolicy)
	}
	cfg.Logger = logger
	return cfg, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg serveConfig
	fs.StringVar(&cfg.addr, "addr", envOr("ZTREAM_ADDR", ":8080"), "HTTP listen address (HTTPS with --tls-cert) (env ZTREAM_ADDR)")
	fs.StringVar(&cfg.tls.cert, "tls-cert", envOr("ZTREAM_TLS_CERT", ""),
		"PEM certificate (chain) file: serve HTTPS and WSS on --addr; renewed files are picked up within 30 s (env ZTREAM_TLS_CERT)")
	fs.StringVar(&cfg.tls.key, "tls-key", envOr("ZTREAM_TLS_KEY", ""), "PEM private key file of --tls-cert (env ZTREAM_TLS_KEY)")
	fs.StringVar(&cfg.tls.redirectHTTP, "redirect-http", envOr("ZTREAM_REDIRECT_HTTP", ""),
		"with TLS, also listen for plain HTTP on this address (e.g. :80) and redirect every request to HTTPS (env ZTREAM_REDIRECT_HTTP)")
	fs.StringVar(&cfg.metricsAddr, "metrics-addr", envOr("ZTREAM_METRICS_ADDR", ""),
		"serve /metrics (and /debug/pprof with --pprof) on this address only, e.g. 127.0.0.1:9090, instead of on --addr (env ZTREAM_METRICS_ADDR)")
	cfg.store.register(fs)
	fs.BoolVar(&cfg.noDemo, "no-demo", envOr("ZTREAM_NO_DEMO", "") != "", "do not ingest the bundled demo tracks into an empty library (env ZTREAM_NO_DEMO=1)")
	fs.StringVar(&cfg.music, "music", envOr("ZTREAM_MUSIC_DIR", ""),
		"follow this music folder: its audio files (MP3; FLAC, M4A, Ogg, Opus and WAV with ffmpeg) are ingested at start and whenever one is added, replaced or removed; no demo tracks then (env ZTREAM_MUSIC_DIR)")
	cfg.transcode.register(fs)
	cfg.origin.register(fs)
	fs.StringVar(&cfg.logLevel, "log-level", envOr("ZTREAM_LOG_LEVEL", "info"), "debug, info, warn or error (env ZTREAM_LOG_LEVEL)")
	fs.DurationVar(&cfg.shutdown, "shutdown-timeout", 10*time.Second, "how long a graceful shutdown may take")
	fs.BoolVar(&cfg.pprof, "pprof", envOr("ZTREAM_PPROF", "") != "", "serve Go profiles at /debug/pprof (env ZTREAM_PPROF=1)")
	cfg.hub.register(fs)
	cfg.cluster.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ztream serve: unexpected arguments %v\n", fs.Args())
		return errUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	hubID, err := cfg.cluster.id(cfg.addr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("hub_id", hubID)
	hcfg, err := cfg.hub.config(logger)
	if err != nil {
		return err
	}
	cl, err := cfg.cluster.open(hubID, logger)
	if err != nil {
		return err
	}
	if err := cfg.tls.check(); err != nil {
		return err
	}
	tc, missing, err := cfg.transcode.open()
	if err != nil {
		return err
	}

	st, desc, err := cfg.store.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	logger.Info("track store open", "store", desc)
	if cfg.music == "" && cfg.origin.url == "" && !cfg.noDemo {
		if err := ingestDemoIfEmpty(ctx, st, logger); err != nil {
			return err
		}
	}

	met := metrics.New()
	library := store.Store(st)
	var h *hub.Hub
	var org *origin.Origin
	if cfg.origin.url != "" {
		// The origin's catalog is the library; st is its cache.
		org, err = cfg.origin.open(st, cfg.origin.catalogFile(cfg.store), tc, missing, met.Origin(), logger, func() { h.CatalogChanged() })
		if err != nil {
			return err
		}
		library = org
	}
	timed := met.InstrumentStore(library)
	hcfg.Metrics = hubmetrics.New(met, metrics.Limits{})
	hcfg.Cluster = cl
	h, err = hub.New(hcfg, timed)
	if err != nil {
		return fmt.Errorf("starting the hub: %w", err)
	}
	defer h.Close()
	if tc != nil && (cfg.music != "" || org != nil) {
		logger.Info("transcoding FLAC, M4A, Ogg, Opus and WAV", "ffmpeg", tc.FFmpeg(), "bitrate_kbps", tc.Bitrate())
	}
	if org != nil {
		defer runBackground(ctx, logger, "origin", org.Run)() // stopped before the hub and the store close
		logger.Info("serving the origin", "index", org.Status().Index, "cache_bytes", cfg.origin.cache)
	}
	if cfg.music != "" {
		// Pages hear of every change the folder brings (catalog message).
		folder, err := musicdir.New(musicdir.Config{Dir: cfg.music, Store: st, Logger: logger, OnChange: h.CatalogChanged,
			Transcoder: tc, NoTranscoder: missing})
		if err != nil {
			return err
		}
		defer runBackground(ctx, logger, "music folder", folder.Run)() // stopped before the hub and the store close
		logger.Info("following the music folder", "dir", folder.Status().Dir)
	}
	health := func() any { return map[string]any{"hub_id": hubID} }
	if cl != nil {
		health = func() any { return cl.State() }
	}
	hubmetrics.WatchCluster(met, hubID, cl)
	logger.Info("hub ready", "udp_port", hcfg.UDPPort, "tcp_port", hcfg.TCPPort, "max_peers", hcfg.MaxPeers, "nats", cfg.cluster.urls)
	scfg := server.Config{
		Store:        timed,
		Metrics:      met,
		Logger:       logger,
		Signaling:    h,
		Web:          web.Handler(),
		Profiling:    cfg.pprof,
		PeerConfig:   peer.DefaultAlgorithm(),
		ClientIP:     hcfg.ClientIP,
		OpsElsewhere: cfg.metricsAddr != "",
		Hub:          health,
	}
	servers, err := listenAll(cfg, scfg, logger)
	if err != nil {
		return err
	}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.serve() }()
	}
	select {
	case err := <-errc:
		for _, s := range servers {
			_ = s.srv.Close()
		}
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", cfg.shutdown)
	// The hub first: it refuses new peers and chunk requests, lets the
	// ranges in flight finish within the deadline, then closes its
	// WebSockets with 1001 "going away". Then in-flight HTTP requests end.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdown)
	defer cancel()
	if err := h.Shutdown(sctx); err != nil {
		logger.Warn("hub shutdown", "err", err)
	}
	for _, s := range servers {
		if err := s.srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	return nil
}

// runBackground runs run on its own goroutine until the returned stop is
// called, which cancels it and waits for it to return; an error is logged as
// "<what> not followed".
func runBackground(ctx context.Context, logger *slog.Logger, what string, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := run(ctx); err != nil {
			logger.Error(what+" not followed", "err", err)
		}
	}()
	return func() { cancel(); <-done }
}

// listener is one HTTP server of `ztream serve` with its socket.
type listener struct {
	name string // for errors: "http", "https", "--redirect-http", "--metrics-addr"
	srv  *http.Server
	ln   net.Listener
	tls  bool
}

// serve runs the server until it is closed or shut down.
func (l listener) serve() error {
	var err error
	if l.tls {
		err = l.srv.ServeTLS(l.ln, "", "")
	} else {
		err = l.srv.Serve(l.ln)
	}
	return fmt.Errorf("%s server: %w", l.name, err)
}

// listenAll opens every listener `ztream serve` needs (the main one, HTTPS
// with TLS; the HTTP redirect; the metrics one) and logs their URLs. On
// error none is left open.
func listenAll(cfg serveConfig, scfg server.Config, logger *slog.Logger) (out []listener, err error) {
	defer func() {
		if err != nil {
			for _, l := range out {
				_ = l.ln.Close()
			}
			out = nil
		}
	}()
	open := func(name, addr string, h http.Handler) (listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if name == "http" || name == "https" {
				return listener{}, fmt.Errorf("listening on %s: %w", addr, err)
			}
			return listener{}, fmt.Errorf("%s: listening on %s: %w", name, addr, err)
		}
		l := listener{name: name, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln: ln}
		out = append(out, l)
		return l, nil
	}
	if !cfg.tls.enabled() {
		l, err := open("http", cfg.addr, server.NewHandler(scfg))
		if err != nil {
			return nil, err
		}
		logger.Info("serving", "url", "http://"+displayAddr(l.ln.Addr()))
	} else {
		certs, err := newCertReloader(cfg.tls.cert, cfg.tls.key, func(err error) {
			logger.Warn("renewed TLS certificate not loaded; keeping the previous one", "err", err)
		})
		if err != nil {
			return nil, err
		}
		l, err := open("https", cfg.addr, server.NewHandler(scfg))
		if err != nil {
			return nil, err
		}
		out[len(out)-1].tls = true
		l.srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.getCertificate}
		// HTTP/1.1 only: the signaling WebSocket upgrades an HTTP/1.1 request.
		l.srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		logger.Info("serving", "url", "https://"+displayAddr(l.ln.Addr()))
		if cfg.tls.redirectHTTP != "" {
			_, port, _ := net.SplitHostPort(l.ln.Addr().String())
			r, err := open("--redirect-http", cfg.tls.redirectHTTP, redirectToHTTPS(port))
			if err != nil {
				return nil, err
			}
			logger.Info("redirecting plain HTTP to HTTPS", "addr", r.ln.Addr().String())
		}
	}
	if cfg.metricsAddr != "" {
		m, err := open("--metrics-addr", cfg.metricsAddr, server.NewOpsHandler(scfg))
		if err != nil {
			return nil, err
		}
		logger.Info("serving metrics", "url", "http://"+displayAddr(m.ln.Addr())+"/metrics", "pprof", scfg.Profiling)
	}
	return out, nil
}

// displayAddr turns a listen address into one a browser can open.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// ingestDemoIfEmpty puts the bundled demo tracks into an empty library.
func ingestDemoIfEmpty(ctx context.Context, st store.Store, logger *slog.Logger) error {
	tracks, err := st.ListTracks(ctx)
	if err != nil {
		return fmt.Errorf("listing the library: %w", err)
	}
	if len(tracks) > 0 {
		logger.Info("library ready", "tracks", len(tracks))
		return nil
	}
	fsys := demo.Tracks()
	var names []string
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.EqualFold(path.Ext(p), ".mp3") {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("listing the demo tracks: %w", err)
	}
	logger.Info("library is empty: ingesting the demo tracks", "files", len(names))
	sum, err := ingest.Run(ctx, st, ingest.FSSources(fsys, names), nil)
	if err != nil {
		return err
	}
	for _, r := range sum.Results {
		if r.Err != nil {
			return fmt.Errorf("ingesting demo track: %w", r.Err)
		}
	}
	logger.Info("demo tracks ingested", "tracks", sum.Stored, "took", sum.Elapsed.Round(time.Millisecond))
	return nil
}
