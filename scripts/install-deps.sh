#!/usr/bin/env bash
# Installs what the test suite needs and is missing: Debian's Chromium (browser
# end-to-end tests), Firefox ESR, Prometheus (dashboard test), lame and sox
# (fixture and demo generators), and the npm packages of the web tests.
# Idempotent: a machine that has everything installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The Firefox end-to-end test (fMP4 path) is required in CI (CI=true): it fails there without firefox-esr.
command -v firefox-esr >/dev/null 2>&1 || need+=(firefox-esr)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v lame >/dev/null 2>&1 || need+=(lame)
command -v sox >/dev/null 2>&1 || need+=(sox)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "install-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The web tests' npm packages (playwright-core, puppeteer-core) live in web/;
# no browser is downloaded (Debian's chromium and firefox-esr are used).
# web/test/run-e2e.sh applies the same check, so either may install them.
if [ -f web/package-lock.json ] && { [ ! -d web/node_modules/playwright-core ] || [ ! -d web/node_modules/puppeteer-core ] ||
  [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; }; then
  echo "install-deps: npm ci in web/" >&2
  (cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
