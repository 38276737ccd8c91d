// Signs every payload in payloads/ with stripe-node and writes the vectors as JSON.
//
// Usage: node scripts/signature-vectors/generate.mjs OUT.json
// generate.py does the same with stripe-python; generate.sh runs both and merges them.

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import Stripe from 'stripe';

// Keep these two in step with generate.py: generate.sh checks that both libraries agree.
const SECRETS = ['whsec_tollgate_vector_1', 'whsec_tollgate_vector_2'];
const TIMESTAMP = 1795273200; // 2026-11-21T15:00:00Z, fixed so the output is deterministic

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
// fatal: refuse bytes that are not UTF-8 instead of replacing them; ignoreBOM: keep a BOM as a
// character, so the string encodes back to exactly the bytes of the file.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

if (process.argv.length !== 3) {
  console.error('usage: generate.mjs OUT.json');
  process.exit(2);
}
const out = process.argv[2];

const library = `stripe-node ${Stripe.PACKAGE_VERSION}`;
const payloadDir = join(here, 'payloads');
const vectors = [];
for (const name of readdirSync(payloadDir).filter((n) => n.endsWith('.json')).sort()) {
  const path = join(payloadDir, name);
  const payload = utf8.decode(readFileSync(path));
  for (const secret of SECRETS) {
    const header = Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: TIMESTAMP });
    vectors.push({
      library,
      payload_file: relative(root, path).split(sep).join('/'),
      secret,
      timestamp: TIMESTAMP,
      header,
    });
  }
}
if (vectors.length === 0) {
  console.error(`no payloads found in ${payloadDir}`);
  process.exit(1);
}
const doc = { generated_by: { 'stripe-node': Stripe.PACKAGE_VERSION }, vectors };
writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
