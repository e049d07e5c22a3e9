package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/ztream/ztream/boltstore"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"2GB": 2e9, "500MB": 5e8, "64KiB": 64 << 10, "1.5GiB": 3 << 29, "1048576": 1 << 20, " 20 gb ": 2e10} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "0", "-1GB", "GB", "1e30TB"} {
		if got, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", in, got)
		}
	}
}

// TestOriginClientFetchesFlag: a negative --origin-client-fetches is
// refused, naming the flag; 0 (no bound) is taken.
func TestOriginClientFetchesFlag(t *testing.T) {
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o := originFlags{url: "http://127.0.0.1:9/list.m3u", cache: "1GB", perClient: -1}
	if _, err := o.open(st, "", nil, nil, nil, slog.New(slog.DiscardHandler), nil); err == nil || !strings.Contains(err.Error(), "--origin-client-fetches") {
		t.Errorf("--origin-client-fetches -1: %v, want an error naming the flag", err)
	}
	o.perClient = 0
	if _, err := o.open(st, "", nil, nil, nil, slog.New(slog.DiscardHandler), nil); err != nil {
		t.Errorf("--origin-client-fetches 0: %v", err)
	}
}

// TestOriginCatalogFlag: the catalog file is beside the embedded store by
// default, none with MongoDB unless given, none for "off".
func TestOriginCatalogFlag(t *testing.T) {
	for _, tc := range []struct {
		flag, data, mongo, want string
	}{
		{"", "/var/ztream", "", "/var/ztream/origin-catalog.json"},
		{"", "/var/ztream", "mongodb://db/z", ""},
		{"/srv/cat.json", "/var/ztream", "mongodb://db/z", "/srv/cat.json"},
		{"off", "/var/ztream", "", ""},
	} {
		o := originFlags{catalog: tc.flag}
		if got := o.catalogFile(storeFlags{data: tc.data, mongo: tc.mongo}); got != tc.want {
			t.Errorf("--origin-catalog %q --data %q --mongo %q: %q, want %q", tc.flag, tc.data, tc.mongo, got, tc.want)
		}
	}
}
