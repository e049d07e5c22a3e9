#!/bin/sh
# Runs the browser end-to-end tests of the web client (part of `make test`).
# Installs nothing: Debian's Chromium (/usr/bin/chromium, or $CHROMIUM_PATH),
# firefox-esr with libavcodec59, WebKitWebDriver (webkit2gtk-driver) with
# xvfb and GStreamer's plugins, and the npm packages of web/package-lock.json
# (playwright-core, puppeteer-core) come from `make deps`
# (scripts/install-deps.sh); when web/node_modules is missing or does not
# match the lock file, this fails and says to run `make deps`.
# Builds ztream and the Go reference peer helper (web/test/gopeer) once and
# runs web/test/e2e/*.test.mjs, one file at a time. The Firefox and WebKit
# tests are skipped when their browser is missing, except in CI where CI=true
# makes it a failure. Screenshots go to web/test/artifacts/.
set -eu
cd "$(dirname "$0")/.."
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "run-e2e: ${CHROMIUM_PATH:-/usr/bin/chromium} not found: run make deps" >&2
  exit 1
fi
if ! problem=$(node ../scripts/check-web-deps.mjs . 2>&1); then
  echo "run-e2e: ${problem}" >&2
  echo "run-e2e: web/node_modules is missing or stale: run make deps" >&2
  exit 1
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
