// Compile-time checks: wrong names and values in a request body are type errors. Not run, only
// compiled (`tsc --noEmit -p test/types`, by test/types.test.ts): each `@ts-expect-error` line
// fails the test when its next line compiles. Every wrong call has a right twin just above it, so
// that an error elsewhere on the line (a path, a method) cannot satisfy the directive.
import { operatorClient, userClient } from "@tollgate/client";

const user = userClient({ baseUrl: "http://127.0.0.1:3000", token: "jwt" });
const operator = operatorClient({
  baseUrl: "http://127.0.0.1:3000",
  region: "eu-west-1",
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
});
const path = { path: { account_id: "acct_42" } };

export async function wrongNames(): Promise<void> {
  await user.POST("/checkout", { body: { plan: "pro", interval: "month" } });
  // @ts-expect-error plan: "platinum" is no tier of plans.toml
  await user.POST("/checkout", { body: { plan: "platinum", interval: "month" } });

  await operator.POST("/operator/accounts/{account_id}/usage", { params: path, body: { metric: "api_calls", quantity: 1, idempotency_key: "k" } });
  // @ts-expect-error metric: "api_callz" is no metric of plans.toml
  await operator.POST("/operator/accounts/{account_id}/usage", { params: path, body: { metric: "api_callz", quantity: 1, idempotency_key: "k" } });

  await user.POST("/api-keys", { body: { name: "ci", scopes: ["usage:read"] } });
  // @ts-expect-error scope "usage:write" does not exist (usage is written on the operator routes)
  await user.POST("/api-keys", { body: { name: "ci", scopes: ["usage:write"] } });

  await user.POST("/credits/checkout", { body: { pack: "credits_1000" } });
  // @ts-expect-error pack: "credits_7" is no credit pack of plans.toml
  await user.POST("/credits/checkout", { body: { pack: "credits_7" } });
}
