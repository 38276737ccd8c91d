"""The meter pass at scale: the section of bench/REPORT.md made from `scale.json` (bench/scale).
Usage alone: python3 bench/scale_report.py scale.json (prints the section), or
python3 bench/scale_report.py --deletion deletion.json (section 4e), --renewals renewals.json (4f)."""
import json
import sys


def section(data):
    lines = ["## 4d. The meter pass at 100,000 and 1,000,000 accounts", ""]
    if not data:
        return lines + ["Not run (`scale.json` is missing: the `scale` phase of `bench/run.sh` did not finish).", ""]
    c = data[0]["config"]
    lines += [
        "Command: `cargo run -q -p tollgate-scale -- OUT/scale.json` (`bench/scale`): the real meter pass "
        "(`app::meters::report`, as the sync runs it) over the in-memory store behind a model of DynamoDB and a model "
        "of Stripe's meter endpoints, on virtual time (tokio's paused clock), so the figures do not depend on this "
        "machine. Usage in one window; 5% of the accounts pay (a live subscription with a metered price), the rest are "
        "Free. A run every "
        f"{c['run_every_seconds'] // 60} minutes with a {c['budget_seconds']} s budget (the sync's timeout less its margin), "
        f"{c['meter_pacing_ms']} ms between meter events (`METER_PACING`), 128 counters at once.",
        "",
        f"Model: DynamoDB {c['dynamo_latency_ms']} ms a request (AWS: \"consistent single-digit millisecond performance\", "
        "https://aws.amazon.com/dynamodb/); capacity units by DynamoDB's sizing rules (a strongly consistent read up to "
        "4 KB is 1 unit, a write up to 1 KB is 1 unit, a `Query` of the keys-only `due` index half a unit per 4 KB). "
        "Stripe: no published latency, so 300 ms and 1 s a call (assumptions); "
        f"{c['meter_events_per_second']:,} meter events a second (\"up to 1,000 events per second in livemode\", "
        "https://docs.stripe.com/api/billing/meter-event/create) and "
        f"{c['other_calls_per_second']} other calls a second (live mode's general limit, https://docs.stripe.com/rate-limits), "
        "a call over either answered 429.",
        "",
        "| accounts (paying) | Stripe latency | runs until every paying account's units are in Stripe (target 2) | "
        "per run: seconds, counters visited, meter events, DynamoDB requests, read / write units, 429s, lag (s) |",
        "|---|---|---|---|",
    ]
    for r in data:
        c = r["config"]
        runs = "; ".join(
            f"run {x['run']}: {x['seconds']:.0f} s, {x['visited']:,} visited, {x['sent']:,} events, "
            f"{sum(x['requests'].values()):,} requests ({', '.join(f'{k} {v:,}' for k, v in x['requests'].items())}), "
            f"{x['read_units']:,.0f} / {x['write_units']:,.0f} units, {x['rate_limited']} 429s, lag {x['lag_seconds']}"
            for x in r["runs"])
        until = r["runs_until_reported"] if r["runs_until_reported"] is not None else f"not within {len(r['runs'])}"
        lines.append(f"| {c['accounts']:,} ({c['paying']:,}) | {c['stripe_latency_ms']} ms | {until} | {runs} |")
    lines += [
        "",
        "Free accounts cost nothing: their counters are never due, so the pass never reads them. Each paying "
        "account costs 2 reads (the counter, the profile), 2 writes (the report recorded, then confirmed) and one "
        "meter event; a position write per page of 500. Settlement after a window ends (one meter event summary per "
        "counter, paced 25 times slower than meter events: 20 a second, under test mode's general limit) is not "
        "simulated: at that pace 5,000 windows take about 250 s of calls and 50,000 about 2,500 s (about 9 runs); "
        "settlement only detects drift, nothing is billed from it.",
        "",
    ]
    return lines




def deletion_section(data):
    """Section 4e, from `deletion.json` (bench/scale's `deletion` binary)."""
    lines = ["## 4e. Deleting an account with a 1,000,000-entry ledger", ""]
    if not data:
        return lines + ["Not run (`deletion.json` is missing: the `scale` phase of `bench/run.sh` did not finish).", ""]
    c = data[0]["config"]
    lines += [
        "Command: `cargo run -q -p tollgate-scale --bin deletion -- OUT/deletion.json` (`bench/scale`): the real "
        "deletion's pages (`app::retire::purge`, as `DELETE /account` runs them after the retirement) over the "
        "in-memory store behind the DynamoDB model, on virtual time. The account has "
        f"{c['ledger_entries']:,} ledger entries and {c['invoices']:,} invoices, all stamped before the deletion; each "
        f"request works for its budget (`ACCOUNT_DELETION_BUDGET_MS`, {c['budget_ms'] // 1000} s) and the next goes on. "
        "Model: a page of 1,000 items is one keys-only `Query` (1 MB of items read per page of the result, 4 KB a "
        "consistent read unit) and 40 `BatchWriteItem`s of 25 deletions, 4 at once (one latency per 4); a deletion of "
        "an item under 1 KB is one write unit. DynamoDB at 5 ms a request (AWS: \"consistent single-digit millisecond "
        "performance\", https://aws.amazon.com/dynamodb/) and at 20 ms (a slow day).",
        "",
        "| DynamoDB latency | `DELETE /account` requests until `complete: true` | seconds deleting | DynamoDB requests | "
        "read / write units |",
        "|---|---|---|---|---|",
    ]
    for r in data:
        requests = ", ".join(f"{k} {v:,}" for k, v in r["dynamo_requests"].items())
        lines.append(
            f"| {r['config']['dynamo_latency_ms']} ms | {r['requests']} | {r['seconds']:.0f} | {requests} | "
            f"{r['read_units']:,.0f} / {r['write_units']:,.0f} |")
    lines += [
        "",
        "Nothing of the account is readable from the first answer on (every read forgets what the deletion stamps "
        "cover); the requests only free the storage. At on-demand prices ($0.625 per million write units, us-east-1) "
        "the deletion's writes cost about $0.63.",
        "",
    ]
    return lines


def renewals_section(data):
    """Section 4f, from `renewals.json` (bench/scale's `renewals` binary)."""
    lines = ["## 4f. A renewal burst: 50,000 subscriptions in one hour through the worker", ""]
    if not data:
        return lines + ["Not run (`renewals.json` is missing: the `scale` phase of `bench/run.sh` did not finish).", ""]
    c = data[0]["config"]
    lines += [
        "Command: `cargo run -q -p tollgate-scale --bin renewals -- OUT/renewals.json` (`bench/scale`): "
        f"{c['renewals']:,} subscriptions renewing evenly over {c['over_seconds'] // 60} minutes, each delivering four "
        "events (`invoice.finalized`, `invoice.paid`, `invoice.payment_succeeded`, `customer.subscription.updated`) "
        "together, applied by the worker's real path (`app::events::process`, batches of 10, one Stripe read of a "
        "customer's subscriptions per customer per batch) by as many workers at once as `WorkerMaxConcurrency` allows "
        "(2, the default, and 5, the most), on virtual time. Model: Stripe "
        f"{c['stripe_latency_ms']} ms a read (an assumption: Stripe publishes no latency); each record's DynamoDB "
        f"requests {c['store_ms_per_record']} ms (about 4 requests of 5 ms).",
        "",
        "| workers | drained after (s) | longest wait in the queue (s) | events (failed) | accounts projected | "
        "Stripe reads | Stripe reads a second: peak / mean (test mode allows 25, live 100) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in data:
        lines.append(
            f"| {r['config']['workers']} | {r['drained_seconds']:,.0f} | {r['oldest_wait_seconds']:,.0f} | "
            f"{r['events']:,} ({r['failed']}) | {r['projected']:,} | {r['stripe_calls']:,} | "
            f"{r['peak_stripe_calls_per_second']} / {r['mean_stripe_calls_per_second']:.1f} |")
    lines += [
        "",
        "At the default of 2 workers the queue outgrows the worker: events wait up to two hours and "
        "`EventsQueueAgeAlarm` (15 minutes) fires; at 5 the burst drains about 13 minutes after its last renewal, "
        "the longest wait stays under the alarm, and Stripe sees at most 15 reads a second. A product expecting "
        "such bursts sets `WorkerMaxConcurrency` to 5 ([configuration](../docs/configuration.md)).",
        "",
    ]
    return lines


if __name__ == "__main__":
    # python3 bench/scale_report.py scale.json, or --deletion deletion.json
    sections = {"--deletion": deletion_section, "--renewals": renewals_section}
    make, path = (sections[sys.argv[1]], sys.argv[2]) if sys.argv[1] in sections else (section, sys.argv[1])
    with open(path, encoding="utf-8") as f:
        print("\n".join(make(json.load(f))))
