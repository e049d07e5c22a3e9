package main

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestServeMongoUnreachable: `ztream serve --mongo` against a port where
// nothing listens fails within seconds, with exit code 1 and a message that
// names the problem (and not the password).
func TestServeMongoUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mongoAddr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, _, stderr := runCmd(t, "serve", "--addr", freeAddr(t), "--udp-port", "0", "--no-demo",
		"--mongo", "mongodb://ztream:s3cr3t@"+mongoAddr+"/ztream")
	elapsed := time.Since(start)
	if code != 1 {
		t.Fatalf("serve exited %d, want 1\n%s", code, stderr)
	}
	if want := "cannot reach MongoDB at " + mongoAddr; !strings.Contains(stderr, want) {
		t.Fatalf("stderr does not say %q:\n%s", want, stderr)
	}
	if strings.Contains(stderr, "s3cr3t") {
		t.Fatalf("stderr leaks the password:\n%s", stderr)
	}
	if elapsed > 30*time.Second {
		t.Fatalf("serve took %v to give up", elapsed)
	}
	t.Logf("gave up after %v", elapsed.Round(time.Millisecond))
}
