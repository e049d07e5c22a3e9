#!/usr/bin/env bash
# `make fuzz`: a short run of every fuzz target in the repository, each for
# FUZZTIME (default 30s; any `go test -fuzztime` value, e.g. 2m or 10000x).
#
# Targets are discovered, never listed: every `func FuzzXxx(f *testing.F)` in
# the test files `go list` reports for the packages (default ./...; pass
# package patterns as arguments to narrow it). `go test -fuzz` takes one
# target per invocation, so each runs alone with an anchored -fuzz '^FuzzXxx$'
# (two packages may both have a FuzzDecode).
#
# A failing input is written by Go to <package>/testdata/fuzz/FuzzXxx/: keep
# it (it becomes a seed that `go test` replays on every run) and fix the bug.
# The script runs every target even when one fails, prints a summary (the
# executions of each run) and exits non-zero if any target failed.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
if [ $# -eq 0 ]; then
  set -- ./...
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# "<import path> <FuzzName>" for every fuzz target, in package order.
listing=$("$GO" list -f '{{.ImportPath}} {{.Dir}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' "$@")
targets=()
while read -r pkg dir files; do
  [ -n "$files" ] || continue
  for f in $files; do
    while IFS= read -r name; do
      targets+=("$pkg $name")
    done < <(sed -n -E 's/^func (Fuzz[A-Za-z0-9_]*)\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\).*/\1/p' "$dir/$f")
  done
done <<<"$listing"

if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no fuzz target found in $*" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, $FUZZTIME each"

summary=()
failed=0
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  echo "== fuzz: $pkg $name"
  status=ok
  if ! "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1 | tee "$log"; then
    status=FAIL
    failed=$((failed + 1))
  fi
  # The last progress line holds the total executions of the run.
  execs=$(sed -n -E 's/.*execs: ([0-9]+).*/\1/p' "$log" | tail -n 1)
  summary+=("$(printf '%-4s %-40s %-18s %s execs' "$status" "$pkg" "$name" "${execs:-?}")")
done

echo "== fuzz: summary ($FUZZTIME per target)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -gt 0 ]; then
  echo "fuzz: $failed of ${#targets[@]} targets failed; failing inputs are in <package>/testdata/fuzz/<target>/" >&2
  exit 1
fi
