// The three clients against a real local stack (test.sh starts it and sets TOLLGATE_URL). Locally
// `x-tollgate-account` stands in for the JWT and `x-tollgate-operator` for the IAM principal;
// the clients pass them through `headers`.
import { test } from "node:test";
import assert from "node:assert/strict";
import createClient from "openapi-fetch";
import { keyClient, operatorClient, userClient, type components, type paths } from "@tollgate/client";

const baseUrl = process.env.TOLLGATE_URL ?? "";
if (!baseUrl) throw new Error("TOLLGATE_URL is not set: run clients/typescript/test.sh, which starts a local stack");

const account = "acct_ts1";
const run = `${process.pid}-${Date.now()}`;
const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "test-only-secret", sessionToken: "test-only-token" };
const region = "eu-west-1";

test("GET /plans (public) returns the catalogue", async () => {
  const tollgate = createClient<paths>({ baseUrl });
  const { data, error, response } = await tollgate.GET("/plans");
  assert.equal(response.status, 200);
  assert.equal(error, undefined);
  assert.ok(data);
  assert.deepEqual(
    data.tiers.map((tier) => tier.id),
    ["free", "pro", "team", "enterprise"],
  );
  assert.equal(data.metrics.api_calls, "call");
  const pro = data.tiers.find((tier) => tier.id === "pro");
  assert.deepEqual(pro?.prices.map((price) => price.lookup_key).sort(), ["pro_monthly", "pro_yearly"]);
});

test("userClient reads GET /subscription of the local identity", async () => {
  const user = userClient({ baseUrl, token: "ignored-locally", headers: { "x-tollgate-account": account } });
  const { data, error, response } = await user.GET("/subscription");
  assert.equal(response.status, 200, JSON.stringify(error));
  assert.ok(data);
  assert.equal(data.account_id, account);
  assert.equal(data.plan, "free");
  assert.deepEqual(data.access, { allowed: true, reason: "no_subscription" });
  assert.equal(data.status, null);
});

test("userClient creates an API key and keyClient reads GET /api/subscription with it", async () => {
  const user = userClient({ baseUrl, token: "ignored-locally", headers: { "x-tollgate-account": account } });
  const created = await user.POST("/api-keys", { body: { name: "ts", scopes: ["subscription:read", "usage:read"] } });
  assert.equal(created.response.status, 201, JSON.stringify(created.error));
  assert.ok(created.data);
  const secret: string = created.data.key;
  assert.match(secret, /^tg_(live|test)_/);
  assert.equal(created.data.name, "ts");
  assert.deepEqual([...created.data.scopes].sort(), ["subscription:read", "usage:read"]);

  const machine = keyClient({ baseUrl, apiKey: secret });
  const { data, error, response } = await machine.GET("/api/subscription");
  assert.equal(response.status, 200, JSON.stringify(error));
  assert.ok(data);
  assert.equal(data.account_id, account);
  assert.equal(data.plan, "free");

  // A key is no identity without being one: a made-up key is refused by the authorizer.
  const stranger = keyClient({ baseUrl, apiKey: "tg_test_not-a-real-key" });
  const refused = await stranger.GET("/api/subscription");
  assert.equal(refused.response.status, 403);
  assert.equal(refused.data, undefined);
  assert.deepEqual(refused.error, { message: "Forbidden" });
});

/** Runs `body` with the global fetch (which aws4fetch calls) recording each request it sends. */
async function recordingFetch<T>(body: (sent: Request[]) => Promise<T>): Promise<T> {
  const original = globalThis.fetch;
  const sent: Request[] = [];
  globalThis.fetch = (input, init) => {
    const request = new Request(input, init);
    sent.push(request.clone());
    return original(request);
  };
  try {
    return await body(sent);
  } finally {
    globalThis.fetch = original;
  }
}

test("operatorClient signs POST /operator/accounts/{account_id}/usage with SigV4", async () => {
  const operator = operatorClient({ baseUrl, region, credentials, headers: { "x-tollgate-operator": "ts-tests" } });
  const opsAccount = `acct_ts_ops_${run}`;
  const { data, error, response, sent } = await recordingFetch(async (sent) => ({
    ...(await operator.POST("/operator/accounts/{account_id}/usage", {
      params: { path: { account_id: opsAccount } },
      body: { metric: "api_calls", quantity: 1, idempotency_key: `ts-${run}` },
    })),
    sent,
  }));
  assert.equal(response.status, 200, JSON.stringify(error));
  assert.ok(data);
  assert.equal(data.metric, "api_calls");
  assert.equal(data.used, 1);
  assert.equal(data.limit, 100);

  assert.equal(sent.length, 1);
  const [request] = sent;
  assert.equal(request.method, "POST");
  assert.equal(request.url, `${baseUrl}/operator/accounts/${opsAccount}/usage`);
  const amzDate = request.headers.get("x-amz-date") ?? "";
  assert.match(amzDate, /^\d{8}T\d{6}Z$/);
  const authorization = request.headers.get("authorization") ?? "";
  const signature = authorization.match(
    /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/(\d{8})\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$/,
  );
  assert.ok(signature, `not a SigV4 Authorization header: ${authorization}`);
  assert.equal(signature[1], amzDate.slice(0, 8));
  const signed = signature[2].split(";");
  for (const name of ["content-type", "host", "x-amz-date", "x-amz-security-token", "x-tollgate-operator"]) {
    assert.ok(signed.includes(name), `${name} is not signed: ${signed.join(";")}`);
  }
  assert.equal(request.headers.get("x-amz-security-token"), credentials.sessionToken);
});

test("an error answer is typed: quantity 0 is 400 invalid_usage", async () => {
  const operator = operatorClient({ baseUrl, region, credentials, headers: { "x-tollgate-operator": "ts-tests" } });
  const { data, error, response } = await operator.POST("/operator/accounts/{account_id}/usage", {
    params: { path: { account_id: account } },
    body: { metric: "api_calls", quantity: 0, idempotency_key: `ts-zero-${run}` },
  });
  assert.equal(response.status, 400);
  assert.equal(data, undefined);
  // Tollgate's error body, or (on the codes API Gateway answers itself) its `{ message }`.
  assert.ok(error && "error" in error, JSON.stringify(error));
  const body: components["schemas"]["ErrorBody"] = error;
  assert.equal(body.error.code, "invalid_usage");
  assert.equal(typeof body.error.message, "string");
});

test("operator routes without the local operator header are refused as API Gateway does", async () => {
  const operator = operatorClient({ baseUrl, region, credentials });
  const { data, error, response } = await operator.POST("/operator/accounts/{account_id}/usage", {
    params: { path: { account_id: account } },
    body: { metric: "api_calls", quantity: 1, idempotency_key: `ts-anon-${run}` },
  });
  assert.equal(response.status, 403);
  assert.equal(data, undefined);
  assert.deepEqual(error, { message: "Forbidden" });
});
