#!/usr/bin/env bash
# Builds the example billing page into examples/billing-page/dist/ (index.html, app.js,
# style.css): first @tollgate/client (clients/typescript, whose build generates its types from
# openapi.json), then this page (typecheck, then bundle). Installs only when node_modules is
# missing or older than package-lock.json. Quiet unless a step fails; safe to run again.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
client="$(cd "$here/../../clients/typescript" && pwd)"

# Runs a command with its output kept back, and shown only if it fails.
quiet() {
  local log status=0
  log="$(mktemp)"
  "$@" >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    echo "billing-page: failed in $PWD: $*" >&2
    cat "$log" >&2
  fi
  rm -f "$log"
  return "$status"
}

# npm ci when node_modules is missing or older than the lockfile (npm writes
# node_modules/.package-lock.json at each install).
install() {
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    quiet npm ci --no-audit --no-fund
  fi
}

cd "$client"
install
quiet npm run build

cd "$here"
install
quiet npm run typecheck
quiet npm run build
