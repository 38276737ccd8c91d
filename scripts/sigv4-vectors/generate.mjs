// Signs every request of requests.json with aws4fetch and with @smithy/signature-v4 and writes
// each library's headers as JSON.
//
// Usage: node scripts/sigv4-vectors/generate.mjs OUT.json
// generate.py does the same with botocore; generate.sh runs both, checks that all three agree
// and writes events/sigv4-vectors.json.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { AwsV4Signer } from 'aws4fetch';

if (process.argv.length !== 3) {
  console.error('usage: generate.mjs OUT.json');
  process.exit(2);
}
const out = process.argv[2];

const here = dirname(fileURLToPath(import.meta.url));
const input = JSON.parse(readFileSync(join(here, 'requests.json'), 'utf-8'));
// The installed versions (package.json is not among aws4fetch's exports, so read the file).
const version = (name) =>
  JSON.parse(readFileSync(join(here, 'node_modules', name, 'package.json'), 'utf-8')).version;

const time = new Date(input.time);
// 20261201T120000Z, the form of x-amz-date.
const amzDate = time.toISOString().replace(/[:-]|\.\d{3}/g, '');

// The headers a library added, lower-cased, with the Authorization header.
function signedHeaders(headers, names) {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const result = {};
  for (const name of names) {
    if (lower[name] !== undefined) result[name] = lower[name];
  }
  return result;
}
const ADDED = ['authorization', 'x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256'];

async function withAws4fetch(request, credentials) {
  const signer = new AwsV4Signer({
    method: request.method,
    url: request.url,
    headers: request.headers,
    body: request.body,
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    sessionToken: credentials.sessionToken,
    service: input.service,
    region: input.region,
    datetime: amzDate,
    // Without it aws4fetch leaves content-type (and content-length, user-agent, ...) out of the
    // signature; the other libraries sign it.
    allHeaders: true,
  });
  const signed = await signer.sign();
  return signedHeaders(Object.fromEntries(signed.headers.entries()), ADDED);
}

async function withSmithy(request, credentials) {
  const url = new URL(request.url);
  const signer = new SignatureV4({
    credentials,
    region: input.region,
    service: input.service,
    sha256: Sha256,
    // Otherwise it adds (and signs) x-amz-content-sha256, which execute-api does not need and
    // botocore's SigV4Auth, aws4fetch and aws-sigv4 do not add: the headers would differ.
    applyChecksum: false,
  });
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: url.protocol,
      hostname: url.hostname,
      path: url.pathname,
      query: {},
      // The HttpRequest the SDK signs carries host; a bare request must name it.
      headers: { host: url.host, ...request.headers },
      body: request.body,
    },
    { signingDate: time },
  );
  return signedHeaders(signed.headers, ADDED);
}

const generatedBy = {
  aws4fetch: version('aws4fetch'),
  '@smithy/signature-v4': version('@smithy/signature-v4'),
  '@aws-crypto/sha256-js': version('@aws-crypto/sha256-js'),
};
const signatures = [];
for (const request of input.requests) {
  const credentials = {
    accessKeyId: input.credentials.access_key_id,
    secretAccessKey: input.credentials.secret_access_key,
    ...(request.with_session_token ? { sessionToken: input.session_token } : {}),
  };
  signatures.push({
    name: request.name,
    library: `aws4fetch ${generatedBy.aws4fetch}`,
    headers: await withAws4fetch(request, credentials),
  });
  signatures.push({
    name: request.name,
    library: `@smithy/signature-v4 ${generatedBy['@smithy/signature-v4']}`,
    headers: await withSmithy(request, credentials),
  });
}
writeFileSync(out, JSON.stringify({ generated_by: generatedBy, signatures }, null, 2) + '\n');
