package clientip

import (
	"net/http/httptest"
	"testing"
)

func TestAddr(t *testing.T) {
	r, err := Parse("127.0.0.1, 10.0.0.0/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote, xff, xri string
		trust                  Resolver
		want                   string
	}{
		{"no proxy trusted: headers ignored", "203.0.113.9:5000", "198.51.100.1", "", Resolver{}, "203.0.113.9:5000"},
		{"an untrusted peer cannot forge", "203.0.113.9:5000", "198.51.100.1", "198.51.100.2", r, "203.0.113.9:5000"},
		{"trusted proxy: the client it saw", "127.0.0.1:40000", "198.51.100.1", "", r, "198.51.100.1"},
		{"two trusted hops: the right-most untrusted", "10.1.2.3:40000", "192.0.2.66, 198.51.100.1, 10.9.9.9", "", r, "198.51.100.1"},
		{"a trusted proxy that sent no header: itself", "[::1]:40000", "", "", r, "[::1]:40000"},
		{"X-Real-IP when no X-Forwarded-For", "127.0.0.1:40000", "", "198.51.100.7", r, "198.51.100.7"},
		{"garbage from the proxy: the proxy's address", "127.0.0.1:40000", "not-an-ip", "", r, "127.0.0.1:40000"},
		{"all hops trusted: the proxy's address", "127.0.0.1:40000", "10.0.0.1", "", r, "127.0.0.1:40000"},
		{"IPv6 client", "127.0.0.1:40000", "2001:db8::7", "", r, "2001:db8::7"},
	} {
		req := httptest.NewRequest("GET", "/ws", nil)
		req.RemoteAddr = tc.remote
		if tc.xff != "" {
			req.Header.Add("X-Forwarded-For", tc.xff)
		}
		if tc.xri != "" {
			req.Header.Set("X-Real-IP", tc.xri)
		}
		if got := tc.trust.Addr(req); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	req := httptest.NewRequest("GET", "/ws", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Add("X-Forwarded-For", "198.51.100.1")
	req.Header.Add("X-Forwarded-For", "10.0.0.2")
	if got := r.Addr(req); got != "198.51.100.1" {
		t.Errorf("two X-Forwarded-For lines: got %q, want 198.51.100.1", got)
	}
	if _, err := Parse("10.0.0.0/8,bogus"); err == nil {
		t.Error(`Parse("bogus") succeeded`)
	}
}

// TestKey: IPv6 counts per /64, IPv4 per address, whatever the port, and a
// v4-mapped address is its IPv4 address.
func TestKey(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"[2001:db8:1:2:3:4:5:6]:443", "[2001:db8:1:2:ffff::1]:80"},
		{"10.0.0.1:1", "10.0.0.1:2"},
		{"[::ffff:10.0.0.1]:1", "10.0.0.1"},
		{"2001:db8:1:2::9", "[2001:db8:1:2::8]:1"},
	} {
		if Key(tc.a) != Key(tc.b) {
			t.Errorf("Key(%s) = %s, Key(%s) = %s: want one key", tc.a, Key(tc.a), tc.b, Key(tc.b))
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"10.0.0.1:1", "10.0.0.2:1"},
		{"[2001:db8:1:2::1]:1", "[2001:db8:1:3::1]:1"},
	} {
		if Key(tc.a) == Key(tc.b) {
			t.Errorf("Key(%s) = Key(%s) = %s: want two keys", tc.a, tc.b, Key(tc.a))
		}
	}
	if got := Key("[2001:db8:1:2:3:4:5:6]:443"); got != "2001:db8:1:2::/64" {
		t.Errorf("Key of an IPv6 address = %q, want 2001:db8:1:2::/64", got)
	}
}
