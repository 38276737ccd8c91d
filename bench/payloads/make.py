"""Writes the benchmark's signed payloads and manifest.json (committed; rerun only to change them).

Four bodies are Stripe's fixtures under events/stripe/ byte for byte (pretty-printed, as Stripe
delivers them); the fifth is invoice.paid with more invoice lines, about 16 KB. Each is signed
at a fixed `t` with a public bench-only secret, so that Tollgate's criterion bench and the peer
scripts (bench/peers/) verify the same bytes under the same header.
Usage: python3 bench/payloads/make.py
"""
import copy
import hashlib
import hmac
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SECRET = "whsec_tollgate_bench_only"
T = 1795273200

fixtures = [
    ("customer.deleted", "customer.deleted.json"),
    ("checkout.session.completed", "checkout.session.completed.json"),
    ("invoice.paid", "invoice.paid.json"),
    ("customer.subscription.updated", "customer.subscription.updated.json"),
]
entries = []
for name, file in fixtures:
    body = (ROOT / "events/stripe" / file).read_bytes()
    entries.append((name, f"events/stripe/{file}", body))

event = json.loads((ROOT / "events/stripe/invoice.paid.json").read_text(encoding="utf-8"))
lines = event["data"]["object"]["lines"]
first = lines["data"][0]
for i in range(1, 9):
    line = copy.deepcopy(first)
    line["id"] = f"{first['id']}_{i}"
    lines["data"].append(line)
lines["total_count"] = len(lines["data"])
event["id"] = event["id"] + "_16k"
body = (json.dumps(event, indent=2, ensure_ascii=False) + "\n").encode()
(HERE / "invoice.paid-16k.json").write_bytes(body)
entries.append(("invoice.paid (9 lines)", "bench/payloads/invoice.paid-16k.json", body))

manifest = {
    "secret": SECRET,
    "timestamp": T,
    "note": "file paths are relative to the repository root",
    "payloads": [
        {
            "name": name,
            "file": file,
            "bytes": len(body),
            "header": f"t={T},v1="
            + hmac.new(SECRET.encode(), f"{T}.".encode() + body, hashlib.sha256).hexdigest(),
        }
        for name, file, body in entries
    ],
}
(HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
for p in manifest["payloads"]:
    print(f"{p['bytes']:>6}  {p['file']}")
