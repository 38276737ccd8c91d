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
if [ -n "${TOLLGATE_DEV:-}" ]; then TOLLGATE_DEV=$(realpath "$TOLLGATE_DEV"); fi

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
if [ -z "${TOLLGATE_DEV:-}" ]; then
  cargo build -q -p tollgate-dev
  TOLLGATE_DEV="${CARGO_TARGET_DIR:-target}/debug/tollgate-dev"
fi
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$port" "$moto_port"; do
  if listening "$p"; then
    echo "port $p is in use: set TOLLGATE_TEST_PORT / TOLLGATE_TEST_MOTO_PORT to free ones" >&2
    exit 1
  fi
done

# The stack in its own process group, so that stopping it stops moto (its child) too.
log=$(mktemp)
setsid "$TOLLGATE_DEV" up --port "$port" --moto-port "$moto_port" >"$log" 2>&1 &
stack=$!
stop() {
  kill -TERM -- "-$stack" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 -- "-$stack" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$stack" 2>/dev/null || true
  wait "$stack" 2>/dev/null || true
  rm -f "$log"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$(date +%s)
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/plans" || true)" = 200 ]; do
  if ! kill -0 "$stack" 2>/dev/null; then
    echo "the local stack exited before serving $url/plans:" >&2
    cat "$log" >&2
    exit 1
  fi
  if [ $(($(date +%s) - start)) -ge 90 ]; then
    echo "the local stack did not serve $url/plans within 90 s:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "local stack up on $url after $(($(date +%s) - start)) s"

cd "$here"
TOLLGATE_URL="$url" npm run -s test
