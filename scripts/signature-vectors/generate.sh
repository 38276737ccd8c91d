#!/usr/bin/env bash
# Regenerates the Stripe-Signature test vectors: signs payloads/*.json with stripe-python and
# stripe-node (versions pinned in requirements-dev.txt and package-lock.json), checks that the
# two libraries produced the same headers, and writes both sets to OUT.json.
# Usage: scripts/signature-vectors/generate.sh events/signature-vectors.json
set -euo pipefail
source "$(dirname "$0")/../lib/cross-library.sh" "$@"

.venv/bin/python - "$tmp/python.json" "$tmp/node.json" "$out" <<'PY'
import json, sys

py, node = (json.load(open(p, encoding="utf-8")) for p in sys.argv[1:3])

def headers(doc):
    return {(v["payload_file"], v["secret"], v["timestamp"]): v["header"] for v in doc["vectors"]}

if headers(py) != headers(node):
    sys.exit("stripe-python and stripe-node disagree on the signature vectors; nothing written")
merged = {
    "generated_by": {**py["generated_by"], **node["generated_by"]},
    "vectors": py["vectors"] + node["vectors"],
}
with open(sys.argv[3], "w", encoding="utf-8") as f:
    f.write(json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
PY
echo "wrote $out"
