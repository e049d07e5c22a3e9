package main

import (
	"strings"
	"testing"
)

func TestParseICEServers(t *testing.T) {
	got, err := parseICEServers([]string{"stun:stun.example.org:3478", "turn:alice:s3cret@turn.example.org:3478?transport=tcp"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].URLs[0] != "stun:stun.example.org:3478" || got[0].Username != "" {
		t.Fatalf("stun server: %+v", got)
	}
	if s := got[1]; s.URLs[0] != "turn:turn.example.org:3478?transport=tcp" || s.Username != "alice" || s.Credential != "s3cret" {
		t.Errorf("static TURN credentials: %+v", s)
	}
	if got, err := parseICEServers([]string{"turns:turn.example.org:5349"}, true); err != nil || got[0].Username != "" {
		t.Errorf("a TURN URL without credentials is fine with --turn-secret: %+v, %v", got, err)
	}
	for _, tc := range []struct{ url, want string }{
		{"turn:turn.example.org:3478", "needs credentials"},
		{"http://turn.example.org", "want stun:"},
		{"stun:user:pass@stun.example.org", "credentials only go with turn:"},
		{"turn:alice@turn.example.org", "USER:PASS@"},
		{"turn:alice:pw@", "--ice-servers"},
		{"stun:", "want stun:"},
	} {
		if _, err := parseICEServers([]string{tc.url}, false); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--ice-servers") {
			t.Errorf("%q: %v, want an error naming --ice-servers and %q", tc.url, err, tc.want)
		}
	}
}

// TestServeICEFlags: bad TURN and ICE policy settings stop serve at start,
// naming the flag.
func TestServeICEFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ice-servers", "turn:turn.example.org:3478"}, "--ice-servers"},
		{[]string{"--peer-ice-policy", "relay"}, "--peer-ice-policy relay needs a TURN server"},
		{[]string{"--peer-ice-policy", "sometimes"}, "--peer-ice-policy"},
		{[]string{"--ice-servers", "turn:turn.example.org:3478", "--turn-secret", "s", "--turn-ttl", "10s"}, "--turn-ttl"},
		{[]string{"--tcp-port", "70000"}, "--tcp-port"},
	} {
		args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--udp-port", "0"}, tc.args...)
		code, _, errOut := runCmd(t, args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want a failure mentioning %q", tc.args, code, errOut, tc.want)
		}
	}
}
