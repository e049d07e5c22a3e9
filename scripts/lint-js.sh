#!/usr/bin/env bash
# The browser client's lint gate (`make lint-js`, run by CI through `make lint`):
# TypeScript's checker over the plain ES modules of web/js and their JSDoc
# types, as configured in web/jsconfig.json (checkJs, strict, noEmit).
# Nothing is built or emitted: the client is still served as written.
# TypeScript is the exact version pinned in web/package.json, installed into
# web/node_modules by `make deps` (npm ci in web/); this script installs nothing.
# Extra arguments go to tsc, e.g. `./scripts/lint-js.sh --extendedDiagnostics`.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '== lint-js: %s\n' "$*"; }

tsc=web/node_modules/.bin/tsc
if [ ! -x "$tsc" ]; then
  echo "lint-js: $tsc is missing: run \`make deps\` (npm ci in web/)" >&2
  step "FAILED: TypeScript not installed"
  exit 1
fi
want=$(node -p 'require("./web/package.json").devDependencies.typescript')
have=$("$tsc" --version)
have=${have#Version }
if [ "$have" != "$want" ]; then
  echo "lint-js: web/node_modules has TypeScript $have, web/package.json pins $want: run \`make deps\`" >&2
  step "FAILED: TypeScript version"
  exit 1
fi

modules=$(find web/js -name '*.js' | wc -l)
step "tsc $have -p web/jsconfig.json ($modules modules of web/js, no emit)"
if ! "$tsc" -p web/jsconfig.json "$@"; then
  step "FAILED: tsc (fix the JSDoc types or the code; see web/jsconfig.json)"
  exit 1
fi
step "ok"
