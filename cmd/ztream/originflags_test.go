package main

import "testing"

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
