"""Times stripe-python's Webhook.construct_event on the signed payloads of
bench/payloads/manifest.json; writes one JSON result (per-call medians and spread, in us).
Usage: .venv/bin/python bench/peers/python-bench.py OUT.json   (stripe from requirements-dev.txt)
"""
import json
import pathlib
import platform
import sys
import time

import stripe

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
manifest = json.loads((ROOT / "bench/payloads/manifest.json").read_text(encoding="utf-8"))
SAMPLES = 30
BATCH_NS = 20_000_000
# The payloads are signed at a fixed past time: a tolerance this wide keeps stripe-python's
# timestamp comparison running (and passing) without a clock of its own.
TOLERANCE = 10**10


def measure(fn):
    warm_end = time.perf_counter_ns() + 500_000_000
    while time.perf_counter_ns() < warm_end:
        fn()
    n = 1
    while True:
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        if time.perf_counter_ns() - start >= BATCH_NS:
            break
        n *= 2
    per_call = []
    for _ in range(SAMPLES):
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        per_call.append((time.perf_counter_ns() - start) / n / 1000)
    per_call.sort()
    return {"median_us": per_call[SAMPLES // 2], "min_us": per_call[0], "max_us": per_call[-1],
            "calls_per_sample": n, "samples": SAMPLES}


results = []
for p in manifest["payloads"]:
    body = (ROOT / p["file"]).read_bytes()  # the raw bytes, as a handler gets them
    header, secret = p["header"], manifest["secret"]
    event = stripe.Webhook.construct_event(body, header, secret, tolerance=TOLERANCE)
    assert event.type, p["name"]
    r = measure(lambda: stripe.Webhook.construct_event(body, header, secret, tolerance=TOLERANCE))
    results.append({"name": p["name"], "bytes": p["bytes"], **r})
    print(f"stripe-python {stripe.VERSION} construct_event {p['name']} {p['bytes']} B: median {r['median_us']:.2f} us")

pathlib.Path(sys.argv[1]).write_text(json.dumps({
    "library": f"stripe-python {stripe.VERSION}",
    "runtime": f"python {platform.python_version()}",
    "call": "stripe.Webhook.construct_event",
    "results": results,
}, indent=2) + "\n", encoding="utf-8")
