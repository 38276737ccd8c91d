"""Signs every payload in payloads/ with stripe-python and writes the vectors as JSON.

Usage: .venv/bin/python scripts/signature-vectors/generate.py OUT.json
generate.mjs does the same with stripe-node; generate.sh runs both and merges them.
"""

import json
import sys
from pathlib import Path

import stripe

# Keep these two in step with generate.mjs: generate.sh checks that both libraries agree.
SECRETS = ["whsec_tollgate_vector_1", "whsec_tollgate_vector_2"]
TIMESTAMP = 1795273200  # 2026-11-21T15:00:00Z, fixed so the output is deterministic

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def main(out: str) -> None:
    library = f"stripe-python {stripe.VERSION}"
    vectors = []
    for path in sorted((HERE / "payloads").glob("*.json")):
        # The signature covers raw bytes; a strict decode keeps them exactly (the library
        # encodes the str back to UTF-8).
        payload = path.read_bytes().decode("utf-8")
        for secret in SECRETS:
            header = stripe.WebhookSignature.generate_signature_header(
                payload, secret, timestamp=TIMESTAMP
            )
            vectors.append(
                {
                    "library": library,
                    "payload_file": path.relative_to(ROOT).as_posix(),
                    "secret": secret,
                    "timestamp": TIMESTAMP,
                    "header": header,
                }
            )
    if not vectors:
        sys.exit(f"no payloads found in {HERE / 'payloads'}")
    doc = {"generated_by": {"stripe-python": stripe.VERSION}, "vectors": vectors}
    Path(out).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: generate.py OUT.json")
    main(sys.argv[1])
