"""Signs every request of requests.json with botocore's SigV4Auth and writes its headers as JSON.

Usage: .venv/bin/python scripts/sigv4-vectors/generate.py OUT.json
generate.mjs does the same with aws4fetch and @smithy/signature-v4; generate.sh runs both,
checks that all three agree and writes events/sigv4-vectors.json.
"""

import datetime
import json
import sys
from pathlib import Path
from unittest import mock

import botocore
import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HERE = Path(__file__).resolve().parent
ADDED = ["authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"]


def sign(request: dict, credentials: Credentials, service: str, region: str, now) -> dict:
    aws_request = AWSRequest(
        method=request["method"],
        url=request["url"],
        headers=dict(request["headers"]),
        data=request["body"].encode("utf-8"),
    )
    # SigV4Auth reads the clock itself (botocore.auth.get_current_datetime in the pinned
    # version); fix it so the output is deterministic. patch.object fails loudly if a newer
    # botocore renames it.
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=now):
        SigV4Auth(credentials, service, region).add_auth(aws_request)
    headers = {name.lower(): value for name, value in aws_request.headers.items()}
    return {name: headers[name] for name in ADDED if name in headers}


def main(out: str) -> None:
    doc = json.loads((HERE / "requests.json").read_text(encoding="utf-8"))
    now = datetime.datetime.fromisoformat(doc["time"].replace("Z", "+00:00"))
    signatures = []
    for request in doc["requests"]:
        credentials = Credentials(
            doc["credentials"]["access_key_id"],
            doc["credentials"]["secret_access_key"],
            doc["session_token"] if request["with_session_token"] else None,
        )
        signatures.append(
            {
                "name": request["name"],
                "library": f"botocore {botocore.__version__}",
                "headers": sign(request, credentials, doc["service"], doc["region"], now),
            }
        )
    result = {"generated_by": {"botocore": botocore.__version__}, "signatures": signatures}
    Path(out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: generate.py OUT.json")
    main(sys.argv[1])
