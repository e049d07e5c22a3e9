#!/usr/bin/env bash
# The Go lint gate (`make lint-go`, run by CI through `make lint`):
#   1. gofmt -l over every git-tracked .go file;
#   2. go vet ./...;
#   3. golangci-lint (version pinned in tools/go.mod, config in .golangci.yml),
#      whose gofmt formatter also covers .go files not yet tracked.
# Each step prints a "== lint-go:" line; the first failing step stops the gate.
# golangci-lint is built from the tools module with `go tool`, so a fresh
# machine needs nothing but Go and the module proxy: the first run builds it
# (a few minutes on 2 cores), later runs reuse Go's build cache.
# Extra arguments go to golangci-lint, e.g. `./scripts/lint-go.sh --fix`.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
# The tools module's go.mod: golangci-lint and its dependencies stay out of the product's go.mod.
TOOLS_MODFILE=tools/go.mod

step() { printf '== lint-go: %s\n' "$*"; }

step "gofmt -l (git-tracked .go files)"
files=()
while IFS= read -r -d '' f; do
  # Skip tracked files deleted in the work tree.
  if [ -f "$f" ]; then files+=("$f"); fi
done < <(git ls-files -z -- '*.go')
unformatted=""
if [ ${#files[@]} -gt 0 ]; then
  unformatted=$(gofmt -l "${files[@]}")
fi
if [ -n "$unformatted" ]; then
  echo "gofmt would change these files (run gofmt -w on them):" >&2
  printf '%s\n' "$unformatted" >&2
  step "FAILED: gofmt"
  exit 1
fi
step "gofmt ok (${#files[@]} files)"

step "go vet ./..."
if ! "$GO" vet ./...; then
  step "FAILED: go vet"
  exit 1
fi
step "go vet ok"

step "golangci-lint: building the pinned version from $TOOLS_MODFILE (minutes on a cold build cache)"
"$GO" tool -modfile="$TOOLS_MODFILE" golangci-lint version
step "golangci-lint run ./... (config .golangci.yml)"
if ! "$GO" tool -modfile="$TOOLS_MODFILE" golangci-lint run "$@" ./...; then
  step "FAILED: golangci-lint"
  exit 1
fi
step "golangci-lint ok"
step "all checks passed"
