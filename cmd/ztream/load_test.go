package main

import (
	"strings"
	"testing"
)

// TestLoadFaultFlags: bad values of the fault flags are refused before any
// peer starts.
func TestLoadFaultFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--corrupt-mode", "evil"}, "corrupt-mode"},
		{[]string{"--corrupt-mode", "none"}, "corrupt-mode"},
		{[]string{"--churn", "1.5"}, "churn"},
		{[]string{"--peers", "2", "--corrupt-peers", "3"}, "corrupt peers"},
	} {
		args := append([]string{"load", "--server", "http://127.0.0.1:1"}, tc.args...)
		code, _, errOut := runCmd(t, args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want a failure mentioning %q", tc.args, code, errOut, tc.want)
		}
	}
}
