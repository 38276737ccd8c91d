#!/usr/bin/env bash
# Installs stripe-node (npm, pinned in package-lock.json) and stripe-python (pip, the project's
# .venv from requirements-dev.txt) from their registries and times their webhook check on the
# signed payloads of bench/payloads/manifest.json. Writes OUT_DIR/node.json and OUT_DIR/python.json.
# Usage: bench/peers/run.sh OUT_DIR
set -euo pipefail
out=$(realpath -m "${1:?usage: $0 OUT_DIR}")
cd "$(dirname "$0")/../.."
mkdir -p "$out"
scripts/venv.sh
npm ci --prefix bench/peers --no-audit --no-fund --loglevel=error
node bench/peers/node-bench.mjs "$out/node.json"
.venv/bin/python bench/peers/python-bench.py "$out/python.json"
