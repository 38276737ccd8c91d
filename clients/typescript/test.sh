#!/usr/bin/env bash
# Builds @tollgate/client (types generated from openapi.json) and runs its tests with node's test
# runner against a local stack that it starts (`tollgate-dev up`, with its own moto) and stops.
# Exits non-zero on any failure. Ports: TOLLGATE_TEST_PORT (3310) and TOLLGATE_TEST_MOTO_PORT (4610).
# It builds tollgate-dev first (cargo build -q -p tollgate-dev, incremental, into $CARGO_TARGET_DIR or
# target/); TOLLGATE_DEV=<binary> runs that binary instead, without building.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${TOLLGATE_TEST_PORT:-3310}
moto_port=${TOLLGATE_TEST_MOTO_PORT:-4610}
url="http://127.0.0.1:$port"

# npm ci once per change of package-lock.json (it empties node_modules, stamp included).
cd "$here"
stamp="node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
npm run -s build
npm run -s build:test

cd "$root"
scripts/venv.sh
. scripts/local-stack.sh
start_local_stack "$port" "$moto_port"

cd "$here"
TOLLGATE_URL="$url" npm run -s test
