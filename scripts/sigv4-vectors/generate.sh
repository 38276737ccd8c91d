#!/usr/bin/env bash
# Regenerates the SigV4 test vectors of the operator routes: signs every request of
# requests.json with aws4fetch and @smithy/signature-v4 (pinned in package-lock.json) and with
# botocore's SigV4Auth (pinned in requirements-dev.txt), checks that the three libraries made the
# same headers, and writes the requests and every library's headers to OUT.json (which
# tests/tests/sigv4.rs checks against the aws-sigv4 crate).
# Usage: scripts/sigv4-vectors/generate.sh events/sigv4-vectors.json
set -euo pipefail
source "$(dirname "$0")/../lib/cross-library.sh" "$@"

.venv/bin/python - "$dir/requests.json" "$tmp/python.json" "$tmp/node.json" "$out" <<'PY'
import json, sys

inputs, py, node = (json.load(open(p, encoding="utf-8")) for p in sys.argv[1:4])
signatures = py["signatures"] + node["signatures"]
libraries = sorted({s["library"] for s in signatures})
if len(libraries) != 3:
    sys.exit(f"expected three libraries, got {libraries}; nothing written")

vectors = []
for request in inputs["requests"]:
    by_library = {s["library"]: s["headers"] for s in signatures if s["name"] == request["name"]}
    if sorted(by_library) != libraries:
        sys.exit(f"{request['name']}: signed by {sorted(by_library)} only; nothing written")
    distinct = {json.dumps(h, sort_keys=True) for h in by_library.values()}
    if len(distinct) != 1:
        for library, headers in sorted(by_library.items()):
            print(f"  {library}: {headers}", file=sys.stderr)
        sys.exit(f"{request['name']}: the libraries disagree; nothing written")
    headers = next(iter(by_library.values()))
    vectors.append({
        "name": request["name"],
        "about": request["about"],
        "request": {
            "method": request["method"],
            "url": request["url"],
            "headers": request["headers"],
            "body": request["body"],
        },
        "session_token": inputs["session_token"] if request["with_session_token"] else None,
        "signed": headers,
        "authorization_by_library": {library: h["authorization"] for library, h in sorted(by_library.items())},
    })

doc = {
    "about": "SigV4 signatures of operator-route requests (API Gateway AWS_IAM) made by aws4fetch, "
    "@smithy/signature-v4 and botocore's SigV4Auth from the same request, credentials and time; "
    "scripts/sigv4-vectors/generate.sh writes this file and fails unless the three agree, and "
    "tests/tests/sigv4.rs signs each request with the aws-sigv4 crate and compares. Test-only "
    "credentials. See docs/operator.md.",
    "normalized": [
        "aws4fetch: allHeaders: true, since it otherwise leaves content-type out of the signature "
        "(SignedHeaders=host;x-amz-date) while the others sign it",
        "@smithy/signature-v4: applyChecksum: false, since it otherwise adds and signs "
        "x-amz-content-sha256, which the others do not add for execute-api; and the host header "
        "passed in the request, as the AWS SDK's HttpRequest carries it",
        "botocore: the clock (botocore.auth.get_current_datetime) fixed to the time below",
        "every library: the same time, no header beyond content-type in the request; headers compared "
        "lower-cased: authorization, x-amz-date and (with a session token) x-amz-security-token",
    ],
    "generated_by": {**py["generated_by"], **node["generated_by"]},
    "credentials": inputs["credentials"],
    "service": inputs["service"],
    "region": inputs["region"],
    "time": inputs["time"],
    "vectors": vectors,
}
with open(sys.argv[4], "w", encoding="utf-8") as f:
    f.write(json.dumps(doc, indent=2) + "\n")
PY
echo "wrote $out"
