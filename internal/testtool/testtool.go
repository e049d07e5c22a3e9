// Package testtool finds the programs tests start (Debian packages that
// `make deps` installs).
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// Command returns the path of program name, from Debian package pkg. When
// it is missing the test is skipped, except under CI (env CI set), where it
// fails.
func Command(tb testing.TB, name, pkg string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s (Debian package %s) not found: run make deps: %v", name, pkg, err)
		}
		tb.Skipf("%s (Debian package %s) not found; make deps installs it: %v", name, pkg, err)
	}
	return p
}
