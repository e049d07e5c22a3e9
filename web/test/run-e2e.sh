#!/bin/sh
# Runs the browser end-to-end tests of the web client: installs the npm
# packages from web/package-lock.json when missing or stale (playwright-core
# and puppeteer-core; no browser is downloaded), builds ztream and the Go
# reference peer helper (web/test/gopeer) once, and runs
# web/test/e2e/*.test.mjs against Debian's Chromium (/usr/bin/chromium, or
# $CHROMIUM_PATH) and firefox-esr (skipped when missing, except in CI
# where CI=true makes it a failure). Screenshots go to web/test/artifacts/.
set -eu
cd "$(dirname "$0")/.."
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "run-e2e: ${CHROMIUM_PATH:-/usr/bin/chromium} not found (apt-get install -y chromium)" >&2
  exit 1
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/puppeteer-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bindir=$(mktemp -d)
trap 'rm -rf "$bindir"' EXIT INT TERM
if [ -z "${ZTREAM_BIN:-}" ]; then
  (cd .. && go build -o "$bindir/ztream" ./cmd/ztream)
  ZTREAM_BIN="$bindir/ztream"
  export ZTREAM_BIN
fi
if [ -z "${ZTREAM_GOPEER_BIN:-}" ]; then
  (cd .. && go build -o "$bindir/gopeer" ./web/test/gopeer)
  ZTREAM_GOPEER_BIN="$bindir/gopeer"
  export ZTREAM_GOPEER_BIN
fi
node --test --test-concurrency=1 test/e2e/
