// Times stripe-node's webhooks.constructEvent on the signed payloads of
// bench/payloads/manifest.json; writes one JSON result (per-call medians and spread, in us).
// Usage: node bench/peers/node-bench.mjs OUT.json   (after `npm ci --prefix bench/peers`)
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Stripe from "stripe";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const manifest = JSON.parse(readFileSync(join(root, "bench/payloads/manifest.json"), "utf8"));
const stripe = new Stripe("sk_test_bench_only_never_used");
const version = JSON.parse(readFileSync(join(here, "node_modules/stripe/package.json"), "utf8")).version;
const SAMPLES = 30;
const BATCH_NS = 20_000_000n;

function measure(fn) {
  // Warm-up (JIT), then a batch size that takes about 20 ms, then SAMPLES batches.
  const warmEnd = process.hrtime.bigint() + 500_000_000n;
  while (process.hrtime.bigint() < warmEnd) fn();
  let n = 1;
  for (;;) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    if (process.hrtime.bigint() - start >= BATCH_NS) break;
    n *= 2;
  }
  const perCall = [];
  for (let s = 0; s < SAMPLES; s++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    perCall.push(Number(process.hrtime.bigint() - start) / n / 1000);
  }
  perCall.sort((a, b) => a - b);
  return { median_us: perCall[Math.floor(SAMPLES / 2)], min_us: perCall[0], max_us: perCall[SAMPLES - 1], calls_per_sample: n, samples: SAMPLES };
}

const results = [];
for (const p of manifest.payloads) {
  const body = readFileSync(join(root, p.file)); // a Buffer: the raw bytes, as a handler gets them
  // receivedAt (ms) = the signing time, so the default 300 s tolerance check runs and passes.
  const at = manifest.timestamp * 1000;
  const event = stripe.webhooks.constructEvent(body, p.header, manifest.secret, 300, undefined, at);
  if (event.type === undefined) throw new Error(`${p.name}: no event`);
  const r = measure(() => stripe.webhooks.constructEvent(body, p.header, manifest.secret, 300, undefined, at));
  results.push({ name: p.name, bytes: p.bytes, ...r });
  console.log(`stripe-node ${version} constructEvent ${p.name} ${p.bytes} B: median ${r.median_us.toFixed(2)} us`);
}
writeFileSync(process.argv[2], JSON.stringify({ library: `stripe-node ${version}`, runtime: `node ${process.version}`, call: "stripe.webhooks.constructEvent", results }, null, 2) + "\n");
