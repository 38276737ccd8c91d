#!/usr/bin/env bash
# Runs a command with moto's server on 127.0.0.1:PORT: reuses one already listening there,
# otherwise starts one from .venv, single-threaded (scripts/moto_single.py: transactions are
# isolated as in DynamoDB), and stops it afterwards, whatever the command's outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
port=$1; shift
url="http://127.0.0.1:$port"
up() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
if ! up; then
  .venv/bin/python scripts/moto_single.py 127.0.0.1 "$port" > .venv/moto-test.log 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do up && break; sleep 0.2; done
  up || { echo "moto did not start on $url; see .venv/moto-test.log" >&2; exit 1; }
fi
AWS_ENDPOINT_URL="$url" MOTO_PORT="$port" "$@"
