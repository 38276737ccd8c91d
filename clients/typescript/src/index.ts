// Typed clients for Tollgate's HTTP API, one per route set. Each is an openapi-fetch client
// over the `paths` that openapi-typescript generates from openapi.json at build time.
import createClient, { type Client } from "openapi-fetch";
import { AwsClient } from "aws4fetch";
import type { paths } from "./generated/schema.js";

export type { paths, components } from "./generated/schema.js";

/** An openapi-fetch client typed with Tollgate's routes. */
export type TollgateClient = Client<paths>;

export interface UserClientOptions {
  baseUrl: string;
  /** The user's JWT: `Authorization: Bearer <token>`. */
  token: string;
  /** Extra headers sent on every call (for example the local stack's development headers). */
  headers?: Record<string, string>;
}

export interface KeyClientOptions {
  baseUrl: string;
  /** An API key made with `POST /api-keys` (`tg_live_...` or `tg_test_...`). */
  apiKey: string;
  /** Extra headers sent on every call (for example the local stack's development headers). */
  headers?: Record<string, string>;
}

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface OperatorClientOptions {
  baseUrl: string;
  /** The region of the stack's HTTP API, e.g. `eu-west-1`. */
  region: string;
  /** The product backend's IAM credentials (in Lambda: its execution role's). */
  credentials: AwsCredentials;
  /** Extra headers sent on every call (for example the local stack's development headers). */
  headers?: Record<string, string>;
}

/** The JWT routes (the customer's own: every route not under `/api/` or `/operator/`). */
export function userClient({ baseUrl, token, headers }: UserClientOptions): TollgateClient {
  return createClient<paths>({ baseUrl, headers: { ...headers, Authorization: `Bearer ${token}` } });
}

/** The API key routes (`/api/...`). */
export function keyClient({ baseUrl, apiKey, headers }: KeyClientOptions): TollgateClient {
  return createClient<paths>({ baseUrl, headers: { ...headers, Authorization: `Bearer ${apiKey}` } });
}

/**
 * The operator routes (`/operator/...`): every request is signed with AWS SigV4 (service
 * `execute-api`) by aws4fetch. `allHeaders` signs `content-type` too; no retries, since a
 * Tollgate 429 is an answer (`quota_exceeded`, `rate_limited`), not a transient failure.
 */
export function operatorClient({ baseUrl, region, credentials, headers }: OperatorClientOptions): TollgateClient {
  const aws = new AwsClient({ ...credentials, service: "execute-api", region, retries: 0 });
  return createClient<paths>({
    baseUrl,
    headers,
    fetch: (request) => aws.fetch(request, { aws: { allHeaders: true } }),
  });
}
