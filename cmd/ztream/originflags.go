package main

import (
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ztream/ztream/origin"
	"github.com/ztream/ztream/store"
	"github.com/ztream/ztream/transcode"
)

// originFlags put the hub in front of an HTTP origin (package origin).
type originFlags struct {
	url     string
	cache   string
	refresh time.Duration
	timeout time.Duration
	// perClient: tracks not cached one client may have fetched a minute
	// (0: no bound).
	perClient int
	// catalog: the catalog file ("" beside the embedded store, "off").
	catalog string
}

func (o *originFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.url, "origin", envOr("ZTREAM_ORIGIN", ""),
		"serve the audio files an HTTP(S) M3U/M3U8 playlist names: catalogued by their tags (Range requests), fetched on first play into the store, a cache; no demo tracks then (env ZTREAM_ORIGIN)")
	fs.StringVar(&o.cache, "origin-cache", envOr("ZTREAM_ORIGIN_CACHE", "2GB"),
		"audio bytes of origin tracks kept in the store; the least recently played go first (e.g. 500MB, 20GB) (env ZTREAM_ORIGIN_CACHE)")
	fs.DurationVar(&o.refresh, "origin-refresh", envDuration("ZTREAM_ORIGIN_REFRESH", origin.DefaultRefresh),
		"how often the origin's playlist is read again (env ZTREAM_ORIGIN_REFRESH)")
	fs.DurationVar(&o.timeout, "origin-timeout", envDuration("ZTREAM_ORIGIN_TIMEOUT", origin.DefaultFetchTimeout),
		"longest a track's fetch from the origin (and its transcode) may take (env ZTREAM_ORIGIN_TIMEOUT)")
	fs.IntVar(&o.perClient, "origin-client-fetches", envInt("ZTREAM_ORIGIN_CLIENT_FETCHES", origin.DefaultClientFetches),
		"tracks not cached one client address (an IPv6 /64) may have the hub fetch a minute, as many at once; past it such a play answers 429 until the count refills; 0 for no bound (env ZTREAM_ORIGIN_CLIENT_FETCHES)")
	fs.StringVar(&o.catalog, "origin-catalog", envOr("ZTREAM_ORIGIN_CATALOG", ""),
		"file keeping the origin's catalog across restarts, so that a restart reads only new files' tags (default: origin-catalog.json in --data; none with --mongo unless given; off: none) (env ZTREAM_ORIGIN_CATALOG)")
}

// catalogFile returns the catalog file for the store flags sf: the one
// given, none for "off", else one beside the embedded store.
func (o *originFlags) catalogFile(sf storeFlags) string {
	switch {
	case o.catalog == "off":
		return ""
	case o.catalog != "":
		return o.catalog
	case sf.mongo != "":
		return ""
	}
	return filepath.Join(sf.data, "origin-catalog.json")
}

// open returns the Origin over the cache store st, keeping its catalog in
// catalogFile ("" none).
func (o *originFlags) open(st store.Store, catalogFile string, tc *transcode.Transcoder, noTranscoder error, m origin.Metrics, log *slog.Logger, onChange func()) (*origin.Origin, error) {
	cache, err := parseBytes(o.cache)
	if err != nil {
		return nil, fmt.Errorf("--origin-cache: %w", err)
	}
	if o.perClient < 0 {
		return nil, fmt.Errorf("--origin-client-fetches %d: want 0 (no bound) or more", o.perClient)
	}
	perClient := o.perClient
	if perClient == 0 {
		perClient = -1 // origin.Config: negative is no bound
	}
	org, err := origin.New(origin.Config{Index: o.url, Store: st, Transcoder: tc, NoTranscoder: noTranscoder,
		CacheBytes: cache, Refresh: o.refresh, FetchTimeout: o.timeout, ClientFetches: perClient,
		CatalogFile: catalogFile, Logger: log, Metrics: m, OnChange: onChange})
	if err != nil {
		return nil, fmt.Errorf("--origin: %w", err)
	}
	return org, nil
}

// parseBytes reads a size such as "2GB", "500MB", "64KiB" or "1048576".
func parseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	units := []struct {
		suffix string
		scale  int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	scale := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, scale = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.scale
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f <= 0 || f*float64(scale) > 1<<62 {
		return 0, fmt.Errorf("size %q: want a positive size such as 2GB or 500MB", s)
	}
	return int64(f * float64(scale)), nil
}
