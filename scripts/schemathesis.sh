#!/usr/bin/env bash
# `make schemathesis`: Schemathesis (.venv, pinned in requirements-dev.txt) against a local stack
# it starts and stops, from openapi.json, with the configuration and hooks of tests/schemathesis/.
# Arguments go to `schemathesis run` (the Makefile gives the seed, examples and excluded checks).
# Ports: TOLLGATE_ST_PORT (3320) and TOLLGATE_ST_MOTO_PORT (4620). TOLLGATE_DEV=<binary> runs that
# binary instead of building tollgate-dev. Exits non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${TOLLGATE_ST_PORT:-3320}
moto_port=${TOLLGATE_ST_MOTO_PORT:-4620}
url="http://127.0.0.1:$port"
cd "$root"
scripts/venv.sh

# A webhook secret of this run's own: the stack verifies with it, the hooks sign with it.
export STRIPE_WEBHOOK_SECRETS="whsec_schemathesis_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
. scripts/local-stack.sh
start_local_stack "$port" "$moto_port"

export TOLLGATE_ST_ACCOUNT=acct_schemathesis TOLLGATE_ST_ORIGIN="$url"
export TOLLGATE_ST_WEBHOOK_SECRET="$STRIPE_WEBHOOK_SECRETS"
# The key routes' key, of an account the run never deletes.
TOLLGATE_ST_API_KEY=$(curl -sf -X POST "$url/api-keys" -H 'x-tollgate-account: acct_schemathesis-keys' \
  -H 'content-type: application/json' -d '{"name": "schemathesis", "scopes": ["usage:read", "subscription:read"]}' |
  .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["key"])')
export TOLLGATE_ST_API_KEY
# Credits to spend for the consumption route (tests/schemathesis/schemathesis.toml).
curl -sf -o /dev/null -X POST "$url/operator/accounts/acct_schemathesis-credits/credits/grants" \
  -H 'x-tollgate-operator: schemathesis' -H 'content-type: application/json' \
  -d '{"credits": 10000000, "reason": "schemathesis", "idempotency_key": "schemathesis"}'

cd tests/schemathesis
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Reports and the fuzzer's cache stay out of the repository (.gitignore: .schemathesis/).
"$root/.venv/bin/schemathesis" --config-file schemathesis.toml run "$root/openapi.json" --url "$url" \
  --report-dir "$root/target/schemathesis" "$@"
